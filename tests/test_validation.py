"""Bad input raises ValidationError naming the field, and nothing is written."""

from __future__ import annotations

import math

import pytest
import statemeter as sm


def test_hierarchy():
    for cls in (
        sm.ValidationError,
        sm.RulesetError,
        sm.ContractError,
        sm.LedgerError,
        sm.IntegrityError,
    ):
        assert issubclass(cls, sm.StatemeterError)
    assert issubclass(sm.ValidationError, ValueError)
    assert not issubclass(sm.LedgerError, ValueError)


CALL = dict(provider="openai", model="gpt-5", api="chat.completions")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(CALL, input_tokens=-1), "input_tokens"),
        (dict(CALL, output_tokens="many"), "output_tokens"),
        (dict(CALL, input_tokens=True), "input_tokens"),
        (dict(CALL, input_tokens=2**70), "input_tokens"),
        (dict(CALL, input_tokens=10, cached_tokens=11), "cached_tokens"),
        (dict(CALL, provider=5), "provider"),
        (dict(CALL, model=""), "model"),
        (dict(CALL, request=["previous_response_id"]), "request"),
        (dict(CALL, request={"x": object()}), "request.x"),
        (dict(CALL, request={1: "a"}), "request"),
        (dict(CALL, attrs={"big": "x" * 70_000}), "attrs"),
        (dict(CALL, attrs={"n": math.nan}), "attrs.n"),
        (dict(CALL, status="fine"), "status"),
        (dict(CALL, duration_ns=-5), "duration_ns"),
        (dict(CALL, ts=-1), "ts"),
        (dict(CALL, id=""), "id"),
    ],
)
def test_model_call_rejects(kwargs, field):
    meter = sm.Meter()
    with meter.session("bot") as s, pytest.raises(sm.ValidationError) as info:
        s.model_call(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(field)
    # Only the session boundaries were written.
    assert [e.kind for e in meter.ledger.events()] == ["session_start", "session_end"]


def test_deep_nesting_rejected():
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    s = sm.Meter().session("bot")
    with pytest.raises(sm.ValidationError, match="nested deeper"):
        s.model_call(**CALL, attrs={"d": deep})


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.state_op("write", store="m", holder="server"), "holder"),
        (lambda s: s.state_op("upsert", store="m", holder="client"), "op"),
        (lambda s: s.state_op("read", store="m", holder="client", scope="planet"), "scope"),
        (lambda s: s.state_op("read", store="m", holder="client", bytes=-1), "bytes"),
        (lambda s: s.tool_call("t", effect="delete"), "effect"),
        (lambda s: s.tool_call(None), "tool"),
    ],
)
def test_other_kinds_reject(call, field):
    meter = sm.Meter()
    s = meter.session("bot")
    with pytest.raises(sm.ValidationError) as info:
        call(s)
    assert info.value.field == field
    assert len(meter.ledger) == 0


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"kind": "model_cal"}, "kind"),
        ({"provider": "openai"}, "kind"),
        ({"kind": "tool_call", "tool": "x", "provider": "openai"}, "provider"),
        (
            {
                "kind": "model_call",
                "provider": "openai",
                "model": "m",
                "api": "a",
                "input_tokens": -3,
            },
            "input_tokens",
        ),
        (
            {
                "kind": "model_call",
                "provider": "openai",
                "model": "m",
                "api": "a",
                "request": "store=true",
            },
            "request",
        ),
    ],
)
def test_record_mapping_rejects(mapping, field):
    meter = sm.Meter()
    with pytest.raises(sm.ValidationError) as info:
        meter.record(mapping)
    assert info.value.field == field
    assert len(meter.ledger) == 0


def test_bad_durability_and_closed_meter():
    with pytest.raises(sm.ValidationError):
        sm.Meter(durability="eventually")
    meter = sm.Meter()
    meter.close()
    with pytest.raises(sm.LedgerError):
        meter.record({"kind": "tool_call", "tool": "x"})
