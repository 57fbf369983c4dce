"""The real-world request corpus: raw HTTP requests that public SDK test suites recorded, each with
a label (shared/testdata/realworld/README.md). Every row is classified with `sm.classify_request`
under `Ruleset.default()` and `Ruleset.strict()` and compared field by field with its label: a
label `null` is not checked, a list means "any of these" (for `state_kinds`, a list of lists is a
choice of kind sets). Each field's accuracy must reach its threshold below; every field's
accuracy and misses are reported (`pytest -s` prints the table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import statemeter as sm

#: Minimum share of checked rows that must agree with the label, per field.
THRESHOLDS: dict[str, float] = {
    "kind": 1.0,
    "provider": 1.0,
    "venue": 1.0,
    "api": 1.0,
    "consumes_state": 1.0,
    "creates_state": 0.998,
    "tag_default": 1.0,
    "tag_strict": 0.998,
    "state_kinds": 0.998,
}

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "realworld" / "corpus.jsonl"

pytestmark = pytest.mark.skipif(
    not CORPUS.exists(), reason=f"the real-world request corpus is not on this machine at {CORPUS}"
)


def agrees(field: str, expected: Any, got: Any) -> bool:
    """Whether `got` satisfies the label's `expected` (null: unchecked; a list: any of)."""
    if expected is None:
        return True
    if field == "state_kinds":
        if got is None:
            return False
        got = sorted(got)
        if expected and all(isinstance(x, list) for x in expected):
            return any(sorted(x) == got for x in expected)
        return sorted(expected) == got
    if isinstance(expected, list):
        return got in expected
    return bool(got == expected)


def classify(row: dict[str, Any]) -> dict[str, Any]:
    args = (row["method"], row["url"], row["headers"], row["body"])
    event, default = sm.classify_request(*args, ruleset=sm.Ruleset.default())
    _, strict = sm.classify_request(*args, ruleset=sm.Ruleset.strict())
    kinds = getattr(default, "state_kinds", None)
    return {
        "kind": event.get("kind"),
        "provider": event.get("provider"),
        "venue": event.get("venue"),
        "api": event.get("api"),
        "consumes_state": default.consumes_state,
        "creates_state": default.creates_state,
        "tag_default": default.tag,
        "tag_strict": strict.tag,
        "state_kinds": list(kinds) if kinds is not None else None,
    }


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[int, int, list[str]]]:
    """Per field: (agreeing rows, checked rows, a line per miss)."""
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    assert rows, f"{CORPUS} has no rows"
    out: dict[str, tuple[int, int, list[str]]] = {f: (0, 0, []) for f in THRESHOLDS}
    for i, row in enumerate(rows):
        got = classify(row)
        for field in THRESHOLDS:
            expected = row["label"].get(field)
            if expected is None:
                continue
            ok, checked, misses = out[field]
            if agrees(field, expected, got[field]):
                out[field] = (ok + 1, checked + 1, misses)
            else:
                misses.append(
                    f"row {i}: {row['method']} {row['url'][:100]}: {field} = "
                    f"{got[field]!r}, label {expected!r}"
                )
                out[field] = (ok, checked + 1, misses)
    lines = [f"{'field':15s} {'right':>7s} / checked  accuracy  threshold"]
    for field, (ok, checked, _) in out.items():
        share = ok / checked if checked else 1.0
        lines.append(f"{field:15s} {ok:7d} / {checked:<7d}  {share:8.1%}  {THRESHOLDS[field]:9.1%}")
    print("\nreal-world corpus, " + str(len(rows)) + " rows\n" + "\n".join(lines))
    return out


@pytest.mark.parametrize("field", list(THRESHOLDS))
def test_field_accuracy(results: dict[str, tuple[int, int, list[str]]], field: str) -> None:
    ok, checked, misses = results[field]
    share = ok / checked if checked else 1.0
    assert share >= THRESHOLDS[field], (
        f"{field}: {ok}/{checked} ({share:.1%}) agree with the labels, below "
        f"{THRESHOLDS[field]:.0%}; misses:\n" + "\n".join(misses[:40])
    )


def test_agrees() -> None:
    assert agrees("provider", None, "x")
    assert agrees("provider", ["groq", "unknown"], "unknown")
    assert not agrees("provider", "openai", "groq")
    assert agrees("state_kinds", ["content", "conversation"], ["conversation", "content"])
    assert agrees("state_kinds", [["conversation"], ["runtime"]], ["runtime"])
    assert agrees("state_kinds", [[], ["memory"]], [])
    assert agrees("state_kinds", [], [])
    assert not agrees("state_kinds", [], ["content"])
    assert not agrees("state_kinds", ["content"], None)
