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
    ("attrs", "field", "why"),
    [
        ({"a": {"b": [1, object()]}}, "attrs.a.b[1]", "a object is not JSON-able"),
        ({"a": ({"n": float("nan")},)}, "attrs.a[0].n", "NaN is not a finite number"),
        ({"a": {"b": {1: "x"}}}, "attrs.a.b", "mapping keys must be strings"),
        ({"a": [2**70]}, "attrs.a[0]", "integer out of the 64-bit range"),
    ],
)
def test_an_invalid_nested_value_names_its_place(attrs, field, why):
    s = sm.Meter().session("bot")
    with pytest.raises(sm.ValidationError) as info:
        s.model_call(**CALL, attrs=attrs)
    assert info.value.field == field
    assert why in str(info.value)
    with pytest.raises(sm.ValidationError) as info:
        sm.Meter().record({"kind": "tool_call", "tool": "t", "attrs": attrs})
    assert info.value.field == "event." + field


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


BIG = 2**63  # one past the signed 64-bit range every count is stored, summed and exported in


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cached_tokens"])
def test_counts_past_the_int64_range_are_rejected_by_every_record_method(field):
    meter = sm.Meter()
    s = meter.session("bot")
    call = {**CALL, "input_tokens": BIG - 1, field: BIG}
    with pytest.raises(sm.ValidationError) as info:
        s.model_call(**call)
    assert info.value.field == field and "range" in str(info.value)
    for record in (meter.record, s.record):
        with pytest.raises(sm.ValidationError) as info:
            record({"kind": "model_call", **call})
        assert info.value.field == field
    with pytest.raises(sm.ValidationError) as info:
        s.state_op("write", store="m", holder="client", bytes=BIG)
    assert info.value.field == "bytes"
    # The largest int64 is accepted, and stays exact in Arrow.
    s.model_call(**dict(CALL, input_tokens=BIG - 1, output_tokens=BIG - 1))
    assert meter.ledger.events()[-1].input_tokens == BIG - 1
    assert len(meter.ledger) == 1  # that call only


def test_counts_past_the_int64_range_are_rejected_from_otlp_and_capture():
    import json
    from pathlib import Path

    from statemeter import _core
    from statemeter.integrations.otel import import_otlp_json

    doc = (Path(__file__).parent / "data" / "otlp" / "genai-current.json").read_text()
    meter = sm.Meter()
    # As an int attribute, and as a string one (instrumentations send both).
    for value in (f'"intValue": "{BIG}"', f'"stringValue": "{BIG}"'):
        huge = doc.replace('"intValue": "1200"', value, 1)
        assert huge != doc
        with pytest.raises(sm.ValidationError) as info:
            import_otlp_json(json.loads(huge), meter)
        assert info.value.field.endswith("gen_ai.usage.input_tokens")
        assert "range" in str(info.value)
    assert len(meter.ledger) == 0
    # A provider response whose counts add up past 64 bits (Anthropic: input + cache reads)
    # must not wrap around to a small count: the event is refused, naming the field.
    body = json.dumps(
        {
            "type": "message",
            "usage": {"input_tokens": BIG, "cache_read_input_tokens": BIG, "output_tokens": 1},
        }
    ).encode()
    usage = _core._read_usage(body, "application/json")
    with pytest.raises(sm.ValidationError) as info:
        meter.record({"kind": "model_call", **CALL, "input_tokens": usage["input_tokens"]})
    assert info.value.field == "input_tokens"


def _head(seq):
    return sm.Head(seq, "00" * 32)


def _table_index(i):
    meter = sm.Meter()
    meter.record({"kind": "tool_call", "tool": "x"})
    return meter.ledger.events()[i]


def _sessions_index(i):
    meter = sm.Meter()
    meter.record({"kind": "tool_call", "tool": "x", "session_id": "s"})
    return meter.ledger.sessions()[i]


def _export(tmp, **options):
    pytest.importorskip("pyarrow")
    meter = sm.Meter()
    meter.record({"kind": "tool_call", "tool": "x"})
    return meter.ledger.export_parquet(tmp / "ds", **options)


def _export_to_file(tmp):
    (tmp / "f").write_text("x")
    pytest.importorskip("pyarrow")
    meter = sm.Meter()
    meter.record({"kind": "tool_call", "tool": "x"})
    return meter.ledger.export_parquet(tmp / "f")


CONTRACT_TOML = (
    'id="c"\n[[clause]]\nid="k"\nproviders=["openai"]\nrequired_venues=["azure"]\n'
    '[clause.interpretations.x]\nlevel="call"\ntags=["stateless"]\n'
)


def _report_since(since):
    return sm.Meter().ledger.report(sm.Contract.from_toml(CONTRACT_TOML), since=since)


def _otlp_time(t):
    from statemeter.integrations.otel import import_otlp_json

    span = {
        "traceId": "0" * 31 + "1",
        "spanId": "0" * 15 + "1",
        "name": "x",
        "startTimeUnixNano": t,
        "endTimeUnixNano": "1",
    }
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    return import_otlp_json(doc, sm.Meter())


# Each public entry point given a bad value: (call, exception class, field or None, words the
# message must contain).
SWEEP = [
    ("Head(-1)", lambda tmp: _head(-1), sm.ValidationError, "seq", ">= 0"),
    ("Head(2**64)", lambda tmp: _head(2**64), sm.ValidationError, "seq", "range"),
    (
        "Meter(capacity=-1)",
        lambda tmp: sm.Meter(capacity=-1),
        sm.ValidationError,
        "capacity",
        ">= 0",
    ),
    (
        "Meter(capacity=2**70)",
        lambda tmp: sm.Meter(capacity=2**70),
        sm.ValidationError,
        "capacity",
        "range",
    ),
    (
        "record(seq=...)",
        lambda tmp: sm.Meter().record({"kind": "tool_call", "tool": "x", "seq": 5}),
        sm.ValidationError,
        "seq",
        "assigned by the ledger",
    ),
    (
        "export compression",
        lambda tmp: _export(tmp, compression="nope"),
        sm.ValidationError,
        "compression",
        "nope",
    ),
    ("export into a file", _export_to_file, sm.ValidationError, "dest", "is a file"),
    (
        "report since 2300",
        lambda tmp: _report_since("2300-01-01"),
        sm.ValidationError,
        "since",
        "out of range",
    ),
    (
        "report since 1600",
        lambda tmp: _report_since("1600-01-01T00:00:00Z"),
        sm.ValidationError,
        "since",
        "out of range",
    ),
    ("Meter(directory)", lambda tmp: sm.Meter(tmp), sm.LedgerError, None, "is a directory"),
    (
        "Ledger.open(directory)",
        lambda tmp: sm.Ledger.open(tmp),
        sm.LedgerError,
        None,
        "is a directory",
    ),
    (
        "OTLP time past int64",
        lambda tmp: _otlp_time("99999999999999999999"),
        sm.ValidationError,
        "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano",
        "out of the signed 64-bit",
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "cls", "field", "words"), SWEEP, ids=[s[0] for s in SWEEP]
)
def test_every_entry_point_raises_a_statemeter_error_saying_what_is_wrong(
    tmp_path, name, call, cls, field, words
):
    with pytest.raises(sm.StatemeterError) as info:
        call(tmp_path)
    assert type(info.value) is cls, f"{name}: {type(info.value).__name__}: {info.value}"
    if field is not None:
        assert info.value.field == field
    assert words in str(info.value)


@pytest.mark.parametrize("index", [2**70, -(2**70), 2**63, -(2**63) - 1])
def test_huge_table_indices_are_index_errors_not_overflow(tmp_path, index):
    # The sequence protocol's error for an index out of range, however large.
    for get in (_table_index, _sessions_index):
        with pytest.raises(IndexError, match="out of range"):
            get(index)
