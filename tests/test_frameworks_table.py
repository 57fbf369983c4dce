"""The compatibility table of docs/integrations.md is tests/frameworks/compat.json rendered: the
framework tests (make test-frameworks) check each row against a real run, this test keeps the
docs equal to the rows."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPAT = ROOT / "tests" / "frameworks" / "compat.json"
DOCS = ROOT / "docs" / "integrations.md"
START, END = "<!-- compat-table: start -->", "<!-- compat-table: end -->"
FIELDS = ("provider", "model", "tokens", "session", "agent", "venue", "tool_kind", "tag")


def cell(r: dict, field: str) -> str:
    value = r[field]
    if not r.get("records", True):
        return "**none**" if field == "tokens" else "—"
    if field == "tokens":
        return "yes" if value else "**none**"
    if field == "session":
        return "trace (one per turn)" if value == "trace" else f"`{value}`"
    if value is None:
        return "—"
    return f"`{value}`"


def render(rows: list[dict]) -> str:
    head = "| framework | tracing | API called (recorded) | " + " | ".join(FIELDS) + " |"
    lines = [head, "|" + "---|" * (3 + len(FIELDS))]
    for r in rows:
        api = f"`{r['api']}`"
        if r.get("api_recorded", r["api"]) != r["api"]:
            api += f" (`{r['api_recorded']}`)"
        if not r.get("records", True):
            api += " **nothing recorded**"
        cells = [r["framework"], r["plugin"], api, *(cell(r, f) for f in FIELDS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_docs_table_is_compat_json():
    rows = json.loads(COMPAT.read_text())["rows"]
    text = DOCS.read_text()
    assert START in text and END in text
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == render(rows), "docs/integrations.md should read:\n" + render(rows)


def test_every_row_names_a_group_with_tests():
    rows = json.loads(COMPAT.read_text())["rows"]
    keys = [(r["framework"], r["plugin"], r["api"]) for r in rows]
    assert len(set(keys)) == len(keys)
    for r in rows:
        group = COMPAT.parent / r["group"]
        assert (group / "requirements.txt").is_file(), r
        assert list(group.glob("test_*.py")), r
