"""HTML for Jupyter: the ``_repr_html_`` of ``Event``, ``EventTable``, ``SessionTable``,
``Report`` and ``Verification`` all come from here (presentation lives in one place).

Every value is escaped with :func:`html.escape`; tables show at most :data:`MAX_ROWS` rows
(the first ones and the last few) and strings at most :data:`MAX_TEXT` characters, so a
million-event table renders as fast as a ten-event one. Nothing here needs an optional
dependency.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from statemeter import units
from statemeter.errors import invalid

__all__ = [
    "MAX_ROWS",
    "MAX_TEXT",
    "REPORT_MAX_ROWS",
    "caption",
    "event_html",
    "event_table_html",
    "report_html",
    "report_page",
    "scenario_html",
    "sessions_html",
    "verification_html",
]

#: Most rows an HTML table shows.
MAX_ROWS = 20
#: Most rows a report, costs or scenario table shows (every column; the rest are counted).
REPORT_MAX_ROWS = 60
#: Longest string shown in a cell before it is cut (the full text stays in the cell's title).
MAX_TEXT = 80

_STYLE = (
    "<style>"
    ".sm-t{border-collapse:collapse;font-size:12px;margin:4px 0}"
    ".sm-t th,.sm-t td{border:1px solid #ddd;padding:2px 6px;text-align:left;"
    "vertical-align:top}"
    ".sm-t th{background:#f4f4f4}"
    ".sm-t td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".sm-null{color:#999}"
    ".sm-stateless{background:#e3f1e3;color:#1d5b1d;padding:0 4px;border-radius:3px}"
    ".sm-stateful{background:#fbe3d6;color:#8a3a0f;padding:0 4px;border-radius:3px}"
    ".sm-kind{background:#e6ecf7;color:#1f3b73;padding:0 4px;border-radius:3px}"
    ".sm-ok{color:#1d5b1d;font-weight:bold}.sm-bad{color:#b00020;font-weight:bold}"
    ".sm-cap{font-weight:bold;margin:4px 0}"
    ".sm-t td{max-width:30em;overflow-wrap:anywhere}"
    ".sm-about{font-size:12px;max-width:60em}.sm-about dt{font-weight:bold;margin-top:4px}"
    ".sm-about dd{margin:0 0 2px 16px}"
    ".sm-drill summary{cursor:pointer;font-size:12px;margin:2px 0}"
    "</style>"
)

_NANOS = 1_000_000_000
#: What an image of :func:`report_page` must be: a PNG data URI, base64 characters only.
_PNG_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]*={0,2}")


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    """Escaped text, cut to ``limit`` characters (the full text in a title attribute)."""
    if len(text) <= limit:
        return _esc(text)
    return f'<span title="{_esc(text)}">{_esc(text[: limit - 1])}…</span>'


def _ts(ns: int | None) -> str:
    if ns is None:
        return '<span class="sm-null">—</span>'
    t = _dt.datetime.fromtimestamp(ns / _NANOS, tz=_dt.UTC)
    return f'<span title="{ns} ns">{t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}Z</span>'


def _tag(tag: str | None) -> str:
    if tag in ("stateless", "stateful"):
        return f'<span class="sm-{tag}">{tag}</span>'
    return '<span class="sm-null">—</span>'


def _kinds(kinds: list[str] | None) -> str:
    """State kinds as badges (``—`` when there are none)."""
    if not kinds:
        return '<span class="sm-null">—</span>'
    return " ".join(f'<span class="sm-kind">{_esc(k)}</span>' for k in kinds)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return '<td><span class="sm-null">—</span></td>'
    if name in ("tag", "session_tag"):
        return f"<td>{_tag(value)}</td>"
    if name in ("state", "state_kinds"):
        return f"<td>{_kinds([value] if isinstance(value, str) else value)}</td>"
    if name in ("ts", "start", "end", "last_ts"):
        return f"<td>{_ts(value)}</td>"
    if isinstance(value, bool):
        return f"<td>{value}</td>"
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, dict | list):
        return f"<td><code>{_cut(json.dumps(value, ensure_ascii=False))}</code></td>"
    return f"<td>{_cut(str(value))}</td>"


def _human_cell(name: str, value: Any, kind: str = "", currency: str | None = None) -> str:
    """A cell of a result or sessions table as a person reads it (:mod:`statemeter.units`):
    money to the cent (the exact amount in the title), durations in human units, session
    ids shortened (the full id in the title), the venue of a row without one labelled."""
    text = units.human(name, value, kind=kind, currency=currency)
    if value is None:
        if name == "venue":
            return f'<td class="sm-null">{_esc(text)}</td>'
        return '<td><span class="sm-null">—</span></td>'
    if units.is_money(name):
        return f'<td class="n" title="{_esc(units.exact_money(value, currency))}">{_esc(text)}</td>'
    if name == "duration_ns":
        return f'<td class="n" title="{value:,} ns">{_esc(text)}</td>'
    if name in units.ID_COLUMNS:
        ids = str(value).split()
        spans = " ".join(f'<span title="{_esc(i)}">{_esc(units.short_id(i))}</span>' for i in ids)
        return f"<td><code>{spans}</code></td>"
    return _cell(name, value)


def _table(
    columns: list[str],
    rows: list[dict[str, Any]],
    skipped: int = 0,
    at: int = 0,
    human: bool = False,
) -> str:
    """An HTML table of ``rows``; ``skipped`` rows elided after the first ``at``; ``human``:
    cells and headings as :mod:`statemeter.units` shows them."""
    head = "".join(f"<th>{_esc(units.header(c, None) if human else c)}</th>" for c in columns)
    cell = _human_cell if human else _cell
    body = []
    for i, r in enumerate(rows):
        if skipped and i == at:
            body.append(
                f'<tr><td colspan="{len(columns)}" class="sm-null">… {skipped:,} more rows …'
                "</td></tr>"
            )
        body.append("<tr>" + "".join(cell(c, r.get(c)) for c in columns) + "</tr>")
    return (
        f'<table class="sm-t"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _sample(n: int, get: Any) -> tuple[list[Any], int, int]:
    """The rows to show out of ``n``: the first ones and the last few."""
    if n <= MAX_ROWS:
        return [get(i) for i in range(n)], 0, 0
    tail = 5
    head = MAX_ROWS - tail
    rows = [get(i) for i in range(head)] + [get(i) for i in range(n - tail, n)]
    return rows, n - MAX_ROWS, head


# -- events ---------------------------------------------------------------------------------

_EVENT_COLUMNS = [
    "seq",
    "ts",
    "kind",
    "agent",
    "venue",
    "what",
    "state_kinds",
    "state_holder",
    "tag",
    "session_tag",
]


def _what(d: dict[str, Any]) -> str:
    kind = d.get("kind")
    if kind == "model_call":
        keys = ", ".join(sorted(d.get("request") or {}))
        req = f" [{keys}]" if keys else ""
        return f"{d.get('provider')}/{d.get('model')} {d.get('api')}{req}"
    if kind == "tool_call":
        err = " (error)" if d.get("status") == "error" else ""
        return f"tool {d.get('tool')} ({d.get('tool_kind')}, {d.get('effect')}){err}"
    if kind == "state_op":
        return f"{d.get('op')} {d.get('store')} ({d.get('holder')}, {d.get('scope')})"
    runtime = f" runtime={d.get('runtime')}" if d.get("runtime") else ""
    status = f" status={d.get('status')}" if d.get("status") else ""
    return f"{d.get('agent') or ''}{runtime}{status}".strip()


def _evidence_table(evidence: list[Any]) -> str:
    rows = [
        {
            "rule": e.rule,
            "tag": e.tag,
            "state": e.state,
            "signal": e.signal or "—",
            "explain": e.explain,
        }
        for e in evidence
    ]
    return _table(["rule", "tag", "state", "signal", "explain"], rows)


def event_html(event: Any) -> str:
    """One event: its fields (absent ones omitted), the kinds of state it concerns, its tags
    and the evidence for them (each rule with the kind of state it names)."""
    d = event.to_dict()
    d.pop("evidence", None)
    fields = [
        (k, v)
        for k, v in d.items()
        if v is not None and k not in ("tag", "session_tag") and not (k == "attrs" and not v)
    ]
    rows = "".join(f"<tr><th>{_esc(k)}</th>{_cell(k, v)}</tr>" for k, v in fields)
    seq = event.seq if event.seq is not None else "pending"
    session = f" · session level {_tag(event.session_tag)}" if event.session_tag is not None else ""
    return (
        f"{_STYLE}<div><div class='sm-cap'>Event #{_esc(seq)} {_esc(event.kind)} · call level "
        f"{_tag(event.tag)}{session}</div>"
        f'<table class="sm-t"><tbody>{rows}</tbody></table>'
        f"<div class='sm-cap'>Evidence</div>{_evidence_table(event.evidence)}</div>"
    )


def _counts_table(counts: list[tuple[str, str, str, int]]) -> str:
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for kind, tag, session_tag, n in counts:
        by_kind[kind][f"call {tag}"] += n
        by_kind[kind][f"session {session_tag}"] += n
    cols = ["call stateless", "call stateful", "session stateless", "session stateful"]
    rows = [{"kind": k, **{c: v.get(c, 0) for c in cols}} for k, v in sorted(by_kind.items())]
    return _table(["kind", *cols], rows)


def event_table_html(table: Any) -> str:
    """An ``EventTable``: counts by kind and tag (call and session level), then the first
    and last rows."""
    n = len(table)
    counts = table._counts()
    stateful = sum(c[3] for c in counts if c[1] == "stateful")
    rows, skipped, at = _sample(n, lambda i: table[i].to_dict())
    for r in rows:
        r["what"] = _what(r)
    return (
        f"{_STYLE}<div><div class='sm-cap'>EventTable: {n:,} events · {n - stateful:,} "
        f"stateless, {stateful:,} stateful (call level)</div>{_counts_table(counts)}"
        f"{_table(_EVENT_COLUMNS, rows, skipped, at)}</div>"
    )


# -- sessions -------------------------------------------------------------------------------

_SESSION_COLUMNS = [
    "session_id",
    "agent",
    "tenant",
    "venue",
    "runtime",
    "start",
    "duration_ns",
    "status",
    "model_calls",
    "tool_calls",
    "state_ops",
    "input_tokens",
    "output_tokens",
    "stateful_events",
    "inner_model_calls",
    "session_tag",
]


def sessions_html(sessions: Any) -> str:
    """A ``SessionTable``: sessions by tag and runtime, then the first and last rows."""
    n = len(sessions)
    rows_all = sessions.to_pylist() if n <= 50_000 else None
    summary = ""
    if rows_all is not None:
        groups: dict[tuple[str, str], int] = defaultdict(int)
        for r in rows_all:
            groups[(r["runtime"] or "in-process", r["session_tag"])] += 1
        summary = _table(
            ["runtime", "session_tag", "sessions"],
            [
                {"runtime": k[0], "session_tag": k[1], "sessions": v}
                for k, v in sorted(groups.items())
            ],
        )
        rows, skipped, at = _sample(n, lambda i: rows_all[i])
    else:
        rows, skipped, at = _sample(n, lambda i: sessions[i])
    stateful = sum(1 for r in rows_all or [] if r["session_tag"] == "stateful")
    tags = f" · {n - stateful:,} stateless, {stateful:,} stateful" if rows_all is not None else ""
    return (
        f"{_STYLE}<div><div class='sm-cap'>SessionTable: {n:,} sessions{tags}</div>{summary}"
        f"{_table(_SESSION_COLUMNS, rows, skipped, at, human=True)}</div>"
    )


# -- verification ---------------------------------------------------------------------------


def verification_html(v: Any) -> str:
    """A ``Verification``: intact or broken, with the first bad seq and the problem."""
    head = f"{v.head.seq}:{v.head.hash}"
    if v.ok:
        verdict = "<span class='sm-ok'>✔ intact</span>"
        detail = ""
    else:
        verdict = "<span class='sm-bad'>✘ broken</span>"
        detail = (
            f"<tr><th>first bad seq</th><td>{_esc(v.first_bad_seq)}</td></tr>"
            f"<tr><th>problem</th><td>{_cut(v.problem or '', 400)}</td></tr>"
        )
    return (
        f"{_STYLE}<div><div class='sm-cap'>Verification: {verdict}</div>"
        f'<table class="sm-t"><tbody><tr><th>events checked</th><td class="n">{v.events:,}'
        f"</td></tr><tr><th>head</th><td><code>{_esc(head)}</code></td></tr>{detail}"
        "</tbody></table></div>"
    )


# -- reports --------------------------------------------------------------------------------


def caption(report: Any) -> str:
    """A ``Report``'s one-line caption: its kind, then what it was computed from
    (``report, contract=..., currency=..., since=...``), then the ruleset each interpretation
    that names one reads the calls under (``ruleset[call-level-strict]=strict``)."""
    meta = {k: v for k, v in report.meta.items() if v is not None}
    parts = [report.kind] + [f"{k}={v}" for k, v in meta.items()]
    parts += [f"ruleset[{i}]={r}" for i, r in report.rulesets.items() if r is not None]
    return ", ".join(parts)


def _report_rows(report: Any, limit: int = REPORT_MAX_ROWS) -> str:
    """Every row of a result table (at most :data:`REPORT_MAX_ROWS`) as a person reads it:
    money headed in the currency and shown to the cent (the exact amount and the integer
    nanos in the cell's title), counts with thousands separators, session ids shortened."""
    columns = report.columns
    rows = report.rows()
    cur = report.currency
    kind = report.kind
    head = "".join(f"<th>{_esc(units.header(c, cur))}</th>" for c in columns)
    body = []
    for r in rows[:limit]:
        cells = "".join(_human_cell(name, v, kind, cur) for name, v in zip(columns, r, strict=True))
        body.append(f"<tr>{cells}</tr>")
    if len(rows) > limit:
        body.append(
            f'<tr><td colspan="{len(columns)}" class="sm-null">… {len(rows) - limit:,} more rows '
            "(to_pandas() or to_pylist() for all)</td></tr>"
        )
    return (
        f'<table class="sm-t"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _share(covered: int | None, violating: int | None) -> str:
    """Violating calls as a share of covered ones (``—`` when none is covered)."""
    if not covered or violating is None:
        return "—"
    return f"{violating / covered:.1%}"


def _side_by_side(report: Any) -> str:
    """Interpretations as columns: per clause (and group), covered and violating calls, the
    violating share and the violating cost under each interpretation."""
    rows = report.to_pylist()
    interps: list[str] = []
    keyed: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["interpretation"] not in interps:
            interps.append(r["interpretation"])
        key = (r["clause"], *(r[b] for b in report.by))
        keyed.setdefault(key, {})[r["interpretation"]] = r
    cur = report.currency
    priced = any(r.get("covered_cost_nanos") is not None for r in rows)
    metrics = [("covered_events", "covered"), ("violating_events", "violating"), ("share", "share")]
    if priced:
        metrics.append(("violating_cost_nanos", units.header("violating_cost_nanos", cur)))
    top = "".join(f"<th rowspan=2>{_esc(c)}</th>" for c in ["clause", *report.by])
    rulesets = report.rulesets

    def head(i: str) -> str:
        r = rulesets.get(i)
        note = "" if r is None else f"<br><span class='sm-null'>ruleset: {_esc(r)}</span>"
        return f'<th colspan="{len(metrics)}">{_esc(i)}{note}</th>'

    top += "".join(head(i) for i in interps)
    sub = "".join(f"<th>{_esc(m[1])}</th>" for _ in interps for m in metrics)
    body = []
    limit = REPORT_MAX_ROWS
    for key, per in list(keyed.items())[:limit]:
        cells = "".join(
            _human_cell(name, k, report.kind, cur)
            for name, k in zip(["clause", *report.by], key, strict=True)
        )
        for i in interps:
            r = per.get(i, {})
            for col, _ in metrics:
                v = r.get(col)
                if col == "share":
                    share = _share(r.get("covered_events"), r.get("violating_events"))
                    cells += f'<td class="n">{share}</td>'
                elif col == "violating_events" and v is not None and v > 0:
                    cells += f'<td class="n sm-bad">{v:,}</td>'
                else:
                    cells += _human_cell(col, v, report.kind, cur)
        body.append(f"<tr>{cells}</tr>")
    if len(keyed) > limit:
        body.append(
            f'<tr><td colspan="{len(key) + len(interps) * len(metrics)}" class="sm-null">… '
            f"{len(keyed) - limit:,} more clauses/groups</td></tr>"
        )
    return (
        f'<table class="sm-t"><thead><tr>{top}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


#: What the figures of a compliance report mean, in words.
DEFINITIONS = (
    (
        "covered",
        "model calls the clause applies to under the interpretation: the call's provider is "
        "one of the clause's providers, the clause (the version in force at the call's time) "
        "was in effect, and the tag the interpretation judges by is one of its tags.",
    ),
    (
        "violating",
        "covered calls not served on one of the clause's required venues (a call without a "
        "venue violates: nothing shows it was served where required).",
    ),
    ("share", "violating calls as a share of covered calls."),
    (
        "call level / session level",
        "a call-level interpretation judges each call by its own tag; a session-level one by "
        "its session's tag (stateful when any event of the session keeps or uses "
        "provider-held state).",
    ),
)


def _period(clause: dict[str, Any]) -> str:
    since, until = clause.get("effective_from"), clause.get("effective_until")
    if since and until:
        return f"in effect from {since[:10]} until {until[:10]} (exclusive)"
    if since:
        return f"in effect from {since[:10]}"
    if until:
        return f"in effect until {until[:10]} (exclusive)"
    return "always in effect"


def _level_words(spec: dict[str, Any]) -> str:
    tags = " or ".join(spec.get("tags") or [])
    level = spec.get("level")
    judged = "its own tag" if level == "call" else "its session's tag"
    words = f"{level} level: covers a call when {judged} is {tags}"
    if spec.get("ruleset"):
        words += f", reading the calls under the {spec['ruleset']} ruleset"
    else:
        words += ", as classified when recorded"
    return words


def about_html(report: Any) -> str:
    """What a compliance report's figures mean: each clause (its text and period, each
    version of an amended clause) with each interpretation in words (its description from
    the contract, the level and tags it judges by, its ruleset), then the definitions of
    covered, violating and share. Empty for other tables."""
    contract = getattr(report, "contract", None)
    if report.kind != "report" or contract is None:
        return ""
    parts = ["<div class='sm-about'><dl>"]
    for clause in contract.clauses:
        text = clause.get("text") or "(no clause text)"
        parts.append(
            f"<dt>Clause {_esc(clause['id'])}: “{_esc(text)}”</dt>"
            f"<dd>{_esc(_period(clause))}; providers {_esc(', '.join(clause['providers']))}; "
            f"required venues {_esc(', '.join(clause['required_venues']))}.</dd>"
        )
        for name, spec in clause["interpretations"].items():
            desc = spec.get("description")
            words = f"{desc} ({_level_words(spec)})" if desc else _level_words(spec)
            parts.append(f"<dd><b>{_esc(name)}</b>: {_esc(words)}.</dd>")
    parts.append("</dl><dl>")
    for term, meaning in DEFINITIONS:
        parts.append(f"<dt>{_esc(term)}</dt><dd>{_esc(meaning)}</dd>")
    parts.append("</dl></div>")
    return "".join(parts)


#: Most groups a drill-down table shows (the most violating first; ``report.explain`` has all).
DRILL_MAX_ROWS = 20
#: A drill-down is computed for a clause with at most this many violating calls (each is
#: read back from the ledger); above it, the section says how to get it.
DRILL_MAX_EVENTS = 200_000


def drill_html(report: Any) -> str:
    """Each violating figure of a compliance report drilled down (``report.explain``): per
    interpretation and clause with violating calls, a collapsible table of those calls by
    agent, venue, model and the rule that tagged them, with example sessions."""
    if report.kind != "report" or getattr(report, "contract", None) is None:
        return ""
    totals: dict[tuple[str, str], int] = {}
    for r in report.to_pylist():
        key = (r["interpretation"], r["clause"])
        totals[key] = totals.get(key, 0) + (r["violating_events"] or 0)
    parts = []
    for (interp, clause), n in totals.items():
        if not n:
            continue
        title = (
            f"Why {n:,} violating calls under {interp} ({clause}): by agent, venue, model and rule"
        )
        if n > DRILL_MAX_EVENTS:
            body = (
                f"<div class='sm-null'>{n:,} calls: report.explain({interp!r}, {clause!r}) "
                "gives this table</div>"
            )
        else:
            body = _report_rows(report.explain(interp, clause), DRILL_MAX_ROWS)
        parts.append(
            f"<details class='sm-drill' data-interpretation='{_esc(interp)}' "
            f"data-clause='{_esc(clause)}'><summary>{_esc(title)}</summary>{body}</details>"
        )
    return "".join(parts)


def report_html(report: Any) -> str:
    """A ``Report``: for a compliance report, what its figures mean (the clause and each
    interpretation in words, the definitions), the interpretations side by side (covered,
    violating, share, violating cost), each violating figure drilled down, then every row;
    for a costs, scenario or explanation table, its rows."""
    parts = [f"{_STYLE}<div><div class='sm-cap'>{_esc(caption(report))}</div>"]
    if report.kind == "report" and len(report):
        parts.append(about_html(report))
        parts.append(_side_by_side(report))
        parts.append(drill_html(report))
        parts.append("<details><summary>all columns</summary>")
        parts.append(_report_rows(report))
        parts.append("</details>")
    else:
        parts.append(_report_rows(report))
    parts.append("</div>")
    return "".join(parts)


def scenario_html(scenario: Any) -> str:
    """A ``Scenario``: how many events were selected and moved, then its compliance and costs
    tables (:func:`report_html`)."""
    title = html.escape(
        f"Scenario {scenario.name!r}: {scenario.selected_events:,} events selected, "
        f"{scenario.moved_events:,} moved"
    )
    return (
        f"<div><strong>{title}</strong>{report_html(scenario.compliance)}"
        f"{report_html(scenario.costs)}</div>"
    )


# -- a self-contained page ------------------------------------------------------------------


#: How the page shows money, said once under its summary.
MONEY_NOTE = (
    "Amounts are shown to the cent, rounded half to even; the exact amount (and the integer "
    "nano-units it comes from) is in each cell's tooltip and in the data (JSON, CSV, Arrow, "
    "to_pylist())."
)


def report_page(
    title: str,
    *,
    summary: dict[str, Any] | None = None,
    reports: Sequence[tuple[str, Any]] = (),
    verification: Any = None,
    sessions: Any = None,
    images: Sequence[tuple[str, str]] = (),
) -> str:
    """A standalone HTML page (no external resources): a summary table, each ``(heading,
    Report)``, the verification, the sessions table and each ``(caption, data URI)`` image
    (see ``statemeter.plot.png_base64``). Used by ``make demo`` for demo/report.html."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title>",
        "<style>body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;"
        "max-width:1340px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px;"
        "border-bottom:1px solid #ddd;padding-bottom:4px}figure{margin:12px 0}"
        "figcaption{font-size:12px;color:#555}img{max-width:100%}</style>",
        f"</head><body><h1>{_esc(title)}</h1>",
    ]
    if summary:
        rows = "".join(f"<tr><th>{_esc(k)}</th>{_cell(k, v)}</tr>" for k, v in summary.items())
        parts.append(f'{_STYLE}<table class="sm-t"><tbody>{rows}</tbody></table>')
    parts.append(f"<p class='sm-about'>{_esc(MONEY_NOTE)}</p>")
    for heading, report in reports:
        parts.append(f"<h2>{_esc(heading)}</h2>{report_html(report)}")
    if verification is not None:
        parts.append(f"<h2>Ledger verification</h2>{verification_html(verification)}")
    for label, uri in images:
        if not isinstance(uri, str) or not _PNG_URI.fullmatch(uri):
            raise invalid(
                "images",
                "must be data:image/png;base64,<base64> URIs (self-contained; base64 "
                "characters only)",
            )
        parts.append(
            f"<figure><img alt='{_esc(label)}' src='{_esc(uri)}'>"
            f"<figcaption>{_esc(label)}</figcaption></figure>"
        )
    if sessions is not None:
        parts.append(f"<h2>Sessions</h2>{sessions_html(sessions)}")
    parts.append("</body></html>")
    return "".join(parts)
