"""Contract and PriceTable from Python: parsing, validation errors, the shipped examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import statemeter as sm

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_shipped_contracts_parse():
    c = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml")
    assert c.id == "model-access-2025"
    (clause,) = c.clauses
    assert clause["text"] == "Stateless API calls to the provider's models are hosted on Azure."
    assert clause["required_venues"] == ["azure"]
    assert clause["effective_from"] == "2025-10-28T00:00:00Z"
    assert clause["interpretations"] == {
        "session-level": {
            "level": "session",
            "tags": ["stateless"],
            "description": clause["interpretations"]["session-level"]["description"],
            "ruleset": None,
        },
        "call-level": {
            "level": "call",
            "tags": ["stateless"],
            "description": clause["interpretations"]["call-level"]["description"],
            "ruleset": None,
        },
        "all-calls": {
            "level": "call",
            "tags": ["stateless", "stateful"],
            "description": clause["interpretations"]["all-calls"]["description"],
            "ruleset": None,
        },
    }
    assert c.slots == [
        ("session-level", "stateless-on-azure"),
        ("call-level", "stateless-on-azure"),
        ("all-calls", "stateless-on-azure"),
    ]
    a = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2026-amended.toml")
    first, second = a.clauses
    assert first["effective_until"] == second["effective_from"] == "2026-04-27T00:00:00Z"
    assert second["required_venues"] == ["azure", "aws"]
    assert len(a.slots) == 3
    assert "model-access-2026-amended" in repr(a)


def test_amended_contract_straddling_the_change():
    # The same stateless call off Azure, at AWS, the day before and the day of the amendment.
    meter = sm.Meter()
    for day in ("2026-04-26T23:59:59.999999999Z", "2026-04-27T00:00:00Z"):
        meter.record(
            {
                "kind": "model_call",
                "provider": "openai",
                "model": "gpt-5",
                "api": "chat.completions",
                "venue": "aws",
                "ts": _ns(day),
            }
        )
    c = sm.Contract.load(EXAMPLES / "contracts" / "model-access-2026-amended.toml")
    r = meter.ledger.report(c, by="day")
    call = [x for x in r.to_pylist() if x["interpretation"] == "call-level"]
    assert [(x["day"], x["covered_events"], x["violating_events"]) for x in call] == [
        ("2026-04-26", 1, 1),
        ("2026-04-27", 1, 0),
    ]
    # The 2025 contract (no amendment) judges both as violations.
    r = meter.ledger.report(sm.Contract.load(EXAMPLES / "contracts" / "model-access-2025.toml"))
    assert all(x["violating_events"] == 2 for x in r.to_pylist())


def _ns(rfc3339: str) -> int:
    import datetime as dt

    whole, _, frac = rfc3339.rstrip("Z").partition(".")
    base = int(dt.datetime.fromisoformat(whole).replace(tzinfo=dt.UTC).timestamp())
    return base * 10**9 + int((frac or "0").ljust(9, "0"))


def test_illustrative_prices_are_labelled_and_dated():
    p = sm.PriceTable.load(EXAMPLES / "prices" / "illustrative.toml")
    assert p.currency == "USD" and p.as_of == "2026-01-15"
    assert "illustrative" in p.title.lower() and "not a quote" in p.title.lower()
    text = (EXAMPLES / "prices" / "illustrative.toml").read_text()
    assert text.startswith("# ILLUSTRATIVE PRICES")
    kinds = {e["kind"] for e in p.entries}
    assert kinds == {"price", "runtime_price", "storage_price"}
    first = p.entries[0]
    assert (first["input_per_mtok"], first["cached_input_per_mtok"]) == ("1.25", "0.125")


BASE = """id = "c"
[[clause]]
id = "k"
providers = ["openai"]
required_venues = ["azure"]
effective_from = "2026-01-01"
effective_until = "2026-02-01"
[clause.interpretations.x]
level = "call"
tags = ["stateless"]
"""


@pytest.mark.parametrize(
    "edit,needles",
    [
        (('level = "call"', 'level = "turn"'), ("`level`", '"turn"', "line 9")),
        (('tags = ["stateless"]', 'tags = ["stateles"]'), ("unknown tag", "line 10")),
        (('tags = ["stateless"]', "tags = []"), ("`tags` must not be empty", "line 10")),
        (('providers = ["openai"]', "providers = []"), ("`providers` must not be empty", "line 4")),
        (
            ('effective_until = "2026-02-01"', 'effective_until = "2025-12-01"'),
            ("must be after `effective_from`", "line 7"),
        ),
        (
            ('effective_from = "2026-01-01"', 'effective_from = "01/01/2026"'),
            ("`effective_from`", "line 6"),
        ),
        (("required_venues", "required_venue"), ("unknown key `required_venue`", "line 5")),
        (('id = "k"\n', ""), ("`id` is required",)),
    ],
)
def test_contract_errors_name_the_line_and_field(edit, needles):
    with pytest.raises(sm.ContractError) as info:
        sm.Contract.from_toml(BASE.replace(*edit))
    for n in needles:
        assert n in str(info.value), str(info.value)


def test_overlapping_versions_are_rejected():
    amended = BASE + BASE.split("\n", 1)[1].replace("2026-01-01", "2026-01-15").replace(
        "2026-02-01", "2026-03-01"
    )
    with pytest.raises(sm.ContractError, match=r"overlaps the version at line 2.*\(line 11\)"):
        sm.Contract.from_toml(amended)
    ok = BASE + BASE.split("\n", 1)[1].replace("2026-01-01", "2026-02-01").replace(
        '2026-02-01"\n[clause', '2026-03-01"\n[clause'
    )
    assert len(sm.Contract.from_toml(ok).clauses) == 2


def test_contract_load_names_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(BASE.replace('level = "call"', "level = 3"))
    with pytest.raises(sm.ContractError, match=r"c\.toml: contract: .*`level` must be a string"):
        sm.Contract.load(path)
    with pytest.raises(sm.ContractError, match="cannot read"):
        sm.Contract.load(tmp_path / "missing.toml")
    assert issubclass(sm.ContractError, sm.StatemeterError)


PRICES = """currency = "EUR"
[[price]]
provider = "openai"
model = "gpt-5"
input_per_mtok = "0.0005"
output_per_mtok = "0.0015"
"""


def test_price_errors_name_the_line_and_field():
    for edit, needles in [
        (('"0.0005"', "0.0005"), ("floats are not exact", "line 5")),
        (('"0.0005"', '"-1"'), ("negative", "line 5")),
        (('"0.0005"', '"1e-3"'), ("not a decimal amount", "line 5")),
        (('model = "gpt-5"\n', ""), ("`model` is required", "line 2")),
        (('currency = "EUR"', 'currency = "euro"'), ("ISO 4217", "line 1")),
        (("output_per_mtok", "out_per_mtok"), ("unknown key `out_per_mtok`", "line 6")),
    ]:
        with pytest.raises(sm.ContractError) as info:
            sm.PriceTable.from_toml(PRICES.replace(*edit))
        for n in needles:
            assert n in str(info.value), str(info.value)


def test_price_cost_is_exact_and_rounds_once_half_even():
    p = sm.PriceTable.from_toml(PRICES)
    call = {"kind": "model_call", "provider": "openai", "model": "gpt-5", "api": "x"}
    # 1 input token = 0.5 nanos -> 0; 1 output = 1.5 -> 2; 3 inputs = 1.5 -> 2; 5 = 2.5 -> 2.
    assert p.cost({**call, "input_tokens": 1}) == 0
    assert p.cost({**call, "output_tokens": 1}) == 2
    assert p.cost({**call, "input_tokens": 3}) == 2
    assert p.cost({**call, "input_tokens": 5}) == 2
    assert p.cost({**call, "input_tokens": 1, "output_tokens": 1}) == 2  # 0.5 + 1.5, once
    assert p.cost({**call, "model": "gpt-4o", "input_tokens": 1}) is None
    # Cached tokens default to the input price when no cached price is given.
    assert p.cost({**call, "input_tokens": 4, "cached_tokens": 4}) == 2
    big = 10**18
    assert p.cost({**call, "input_tokens": big}) == big // 2  # 0.5 nanos per token, exactly
    with pytest.raises(sm.ValidationError, match="kind"):
        p.cost({"kind": "tool_call", "tool": "t"})
    with pytest.raises(sm.ValidationError, match="cached_tokens"):
        p.cost({**call, "input_tokens": 1, "cached_tokens": 2})
