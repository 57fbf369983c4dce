from __future__ import annotations

import logging

import statemeter as sm
from statemeter._guard import shielded


def test_shielded_counts_and_logs_once(caplog):
    meter = sm.Meter()
    with caplog.at_level(logging.WARNING, logger="statemeter"):
        for _ in range(3):
            with shielded(meter, "unit"):
                raise RuntimeError("inside statemeter")
    assert meter.stats()["integration_errors"] == {"unit": 3}
    assert sum("unit integration failed" in r.message for r in caplog.records) == 1


def test_shielded_survives_a_closed_meter():
    meter = sm.Meter()
    meter.close()
    with shielded(meter, "closed"):
        meter.record({"kind": "tool_call", "tool": "x"})  # raises LedgerError inside
    assert meter.stats()["integration_errors"] == {"closed": 1}
