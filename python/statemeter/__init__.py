"""statemeter: meter what AI agents do, tag every event stateless or stateful with evidence,
and keep it in a tamper-evident, hash-chained ledger.

    import statemeter as sm
    meter = sm.Meter("audit.db")
    with meter.session(agent="support-bot", venue="azure") as s:
        s.model_call(provider="openai", model="gpt-5", api="responses",
                     request={"previous_response_id": "resp_1"})
    meter.flush()
    meter.ledger.events(tag="stateful")
"""

from __future__ import annotations

import atexit as _atexit

from statemeter import _core
from statemeter._core import (
    Checkpoint,
    Classification,
    ConsistencyProof,
    Contract,
    ContractError,
    Event,
    EventTable,
    Evidence,
    EvidenceResult,
    Head,
    InclusionProof,
    IntegrityError,
    Ledger,
    LedgerError,
    Meter,
    PriceTable,
    Ruleset,
    RulesetError,
    Session,
    SessionTable,
    SigningKey,
    StatemeterError,
    ToolSpan,
    ValidationError,
    Verification,
    VerifyingKey,
    __version__,
    classify,
    classify_request,
    venue_for_host,
)
from statemeter.batch import classify_batch
from statemeter.evidence import verify_evidence
from statemeter.money import format_cents, format_money
from statemeter.report import Report, Scenario

__all__ = [
    "Checkpoint",
    "Classification",
    "ConsistencyProof",
    "Contract",
    "ContractError",
    "Event",
    "EventTable",
    "Evidence",
    "EvidenceResult",
    "Head",
    "InclusionProof",
    "IntegrityError",
    "Ledger",
    "LedgerError",
    "Meter",
    "PriceTable",
    "Report",
    "Ruleset",
    "RulesetError",
    "Scenario",
    "Session",
    "SessionTable",
    "SigningKey",
    "StatemeterError",
    "ToolSpan",
    "ValidationError",
    "Verification",
    "VerifyingKey",
    "__version__",
    "classify",
    "classify_batch",
    "classify_request",
    "format_cents",
    "format_money",
    "venue_for_host",
    "verify_evidence",
]


#: Submodules imported on first attribute access (``sm.simulate.fleet(...)``), so that
#: ``import statemeter`` stays light: they pull in optional dependencies when used.
_LAZY = ("display", "frames", "parquet", "plot", "simulate", "spark")


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"statemeter.{name}")
    raise AttributeError(f"module 'statemeter' has no attribute {name!r}")


def _flush_at_exit() -> None:
    import logging

    for problem in _core._flush_all():
        logging.getLogger("statemeter").error("could not flush at exit: %s", problem)


_atexit.register(_flush_at_exit)
