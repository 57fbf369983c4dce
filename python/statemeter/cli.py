"""The ``statemeter`` command line (also ``python -m statemeter``).

    statemeter report LEDGER --contract FILE [--prices FILE] [--by venue,month]
                             [--since D] [--until D] [--format table|csv|json]
    statemeter costs LEDGER --prices FILE [--by ...] [--since D] [--until D] [--format ...]
    statemeter scenario LEDGER NAME --contract FILE [--select FIELD=V1,V2 ...] [--venue V]
                             [--prices FILE] [--baseline-prices FILE] [--by ...] [--format ...]
    statemeter verify LEDGER [--head SEQ:HEX] [--format ...]
    statemeter classify FILE [--ruleset default|strict|FILE] [--format ...]
    statemeter key generate NAME [-o KEYFILE]
    statemeter checkpoint LEDGER --key KEYFILE
    statemeter evidence LEDGER --contract FILE --clause C --interpretation I --key KEYFILE
                             -o BUNDLE.json [--prices FILE] [--since D] [--until D]
    statemeter verify-evidence BUNDLE.json --key PUBFILE [--format ...]

Exit status: 0 on success; 2 on bad input (unknown option, unreadable or invalid file, bad
value), with a one-line message on stderr; ``verify`` exits 1 when the ledger is not intact,
``verify-evidence`` when any part of the bundle does not check out.
``--format json`` prints one JSON document: an array of row objects keyed by the column names
(money as exact integer nano-units); ``csv`` the same rows with a header; ``table`` (default)
aligned columns for reading that fit 120 columns (``--wide`` for every column in full):
numbers right-aligned with thousands separators, money headed in the currency and shown to
the cent (rounded half to even), durations in human units, session ids shortened.

Names come from the recorded programs, so output is made safe for where it goes: in ``table``
and text output, control characters are written as escapes (``\\x1b``); in ``csv``, a text cell
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single
quote (OWASP's advice against formula injection; numbers are left alone). ``--raw-csv`` writes
CSV cells as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import statemeter as sm
from statemeter import terminal, units
from statemeter._text import printable, write_csv
from statemeter.report import Report

FORMATS = ("table", "csv", "json")


class BadInput(Exception):
    """Reported as one line on stderr with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="statemeter", description="Meter, classify and account for AI agent activity.")
    p.add_argument("--version", action="version", version=f"statemeter {sm.__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(q: argparse.ArgumentParser, window: bool = True) -> None:
        q.add_argument("--format", choices=FORMATS, default="table", help="output format")
        q.add_argument(
            "--raw-csv",
            action="store_true",
            help="with --format csv: write cells as they are (by default a text cell starting "
            "with = + - @ is prefixed with ' so spreadsheets do not run it as a formula)",
        )
        q.add_argument(
            "--wide",
            action="store_true",
            help="with --format table: every column, cells in full (by default the table "
            "fits 120 columns)",
        )
        if window:
            q.add_argument("--by", default="", help="group by, e.g. venue,month (see docs)")
            q.add_argument("--since", help="inclusive start: YYYY-MM-DD or RFC 3339 (UTC)")
            q.add_argument("--until", help="exclusive end: YYYY-MM-DD or RFC 3339 (UTC)")

    q = sub.add_parser("report", help="contract compliance per interpretation and clause")
    q.add_argument("ledger")
    q.add_argument("--contract", required=True, help="contract TOML")
    q.add_argument("--prices", help="price TOML (adds exact costs)")
    common(q)

    q = sub.add_parser("costs", help="costs of every billable event")
    q.add_argument("ledger")
    q.add_argument("--prices", required=True, help="price TOML")
    common(q)

    q = sub.add_parser(
        "scenario", help="what if a selection were served elsewhere / priced otherwise"
    )
    q.add_argument("ledger")
    q.add_argument("name")
    q.add_argument("--contract", required=True, help="contract TOML")
    q.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="FIELD=V1[,V2]",
        help="select events (repeatable; all conditions must hold)",
    )
    q.add_argument("--venue", help="the selected events' venue in the scenario")
    q.add_argument("--prices", help="price TOML for the selected events in the scenario")
    q.add_argument("--baseline-prices", help="price TOML for the baseline (and the rest)")
    q.add_argument(
        "--costs", action="store_true", help="print the cost table instead of compliance"
    )
    common(q)

    q = sub.add_parser("verify", help="re-derive the hash chain; exit 1 if not intact")
    q.add_argument("ledger")
    q.add_argument("--head", help="a head kept earlier, SEQ:HEX (detects truncation, swaps)")
    common(q, window=False)

    q = sub.add_parser("classify", help="explain the classification of one event or request JSON")
    q.add_argument(
        "file",
        help="a JSON file ('-' for stdin): an event, or a request {method,url,headers,body} "
        "whose body is the text sent or a JSON object",
    )
    q.add_argument("--ruleset", default="default", help="default, strict or a ruleset TOML")
    common(q, window=False)

    q = sub.add_parser("key", help="signing keys for checkpoints")
    keys = q.add_subparsers(dest="key_command", required=True, parser_class=_Parser)
    g = keys.add_parser(
        "generate", help="a new Ed25519 signing key (KEYFILE, mode 0600) and KEYFILE.pub"
    )
    g.add_argument("name", help="the signer's name, e.g. example.com/statemeter")
    g.add_argument("-o", "--out", help="the signing key file (default: NAME.key, '/' as '_')")

    q = sub.add_parser("checkpoint", help="sign and keep a checkpoint of the ledger's tree")
    q.add_argument("ledger")
    q.add_argument("--key", required=True, help="signing key file (statemeter key generate)")

    q = sub.add_parser("evidence", help="a signed evidence bundle of one clause's violating calls")
    q.add_argument("ledger")
    q.add_argument("--contract", required=True, help="contract TOML")
    q.add_argument("--clause", required=True, help="the clause id")
    q.add_argument("--interpretation", required=True, help="the interpretation's name")
    q.add_argument("--key", required=True, help="signing key file")
    q.add_argument("-o", "--out", required=True, help="the bundle file to write (JSON)")
    q.add_argument("--prices", help="price TOML (adds costs to the report rows)")
    q.add_argument("--since", help="inclusive start: YYYY-MM-DD or RFC 3339 (UTC)")
    q.add_argument("--until", help="exclusive end: YYYY-MM-DD or RFC 3339 (UTC)")

    q = sub.add_parser(
        "verify-evidence", help="check an evidence bundle offline; exit 1 if anything fails"
    )
    q.add_argument("bundle")
    q.add_argument("--key", required=True, help="the ledger owner's verifying key file (or text)")
    q.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    return p


# -- output -----------------------------------------------------------------------------------


def _emit_rows(
    columns: list[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    currency: str | None,
    raw_csv: bool = False,
    kind: str = "",
    wide: bool = False,
) -> None:
    out = sys.stdout
    if fmt == "json":
        json.dump([dict(zip(columns, r, strict=True)) for r in rows], out, indent=2)
        out.write("\n")
    elif fmt == "csv":
        write_csv(out, columns, rows, raw_csv)
    else:
        for line in terminal.render(columns, rows, kind=kind, currency=currency, wide=wide):
            out.write(line + "\n")
        if any(units.is_money(c) for c in columns):
            out.write(
                "(amounts to the cent, rounded half to even; '—' = none or unpriced; "
                "--format json or csv for exact nano-units)\n"
            )


def _emit_report(report: Report, a: argparse.Namespace) -> None:
    _emit_rows(
        report.columns,
        report.rows(),
        a.format,
        report.currency,
        a.raw_csv,
        kind=report.kind,
        wide=getattr(a, "wide", False),
    )


# -- commands ---------------------------------------------------------------------------------


def _open(path: str) -> sm.Ledger:
    if not Path(path).is_file():
        raise BadInput(f"no ledger file at {path}")
    return sm.Ledger.open(path)


def _cmd_report(a: argparse.Namespace) -> int:
    contract = sm.Contract.load(a.contract)
    prices = sm.PriceTable.load(a.prices) if a.prices else None
    with _open(a.ledger) as ledger:
        r = ledger.report(contract, prices, by=a.by or None, since=a.since, until=a.until)
    _emit_report(r, a)
    return 0


def _cmd_costs(a: argparse.Namespace) -> int:
    prices = sm.PriceTable.load(a.prices)
    with _open(a.ledger) as ledger:
        r = ledger.costs(prices, by=a.by or None, since=a.since, until=a.until)
    _emit_report(r, a)
    return 0


def _parse_select(items: list[str]) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for item in items:
        field, sep, values = item.partition("=")
        if not sep or not field.strip():
            raise BadInput(f"--select: expected FIELD=VALUE[,VALUE], got {item!r}")
        vals: list[str | None] = [
            None if v.strip() in ("", "None", "null") else v.strip() for v in values.split(",")
        ]
        out.setdefault(field.strip(), []).extend(vals)
    return out


def _cmd_scenario(a: argparse.Namespace) -> int:
    contract = sm.Contract.load(a.contract)
    prices = sm.PriceTable.load(a.prices) if a.prices else None
    base = sm.PriceTable.load(a.baseline_prices) if a.baseline_prices else None
    with _open(a.ledger) as ledger:
        s = ledger.scenario(
            a.name,
            contract=contract,
            select=_parse_select(a.select),
            venue=a.venue,
            prices=prices,
            baseline_prices=base,
            by=a.by or None,
            since=a.since,
            until=a.until,
        )
    _emit_report(s.costs if a.costs else s.compliance, a)
    if a.format == "table":
        print(f"({s.selected_events} events selected, {s.moved_events} moved)")
    return 0


def _cmd_verify(a: argparse.Namespace) -> int:
    with _open(a.ledger) as ledger:
        v = ledger.verify(head=a.head)
    columns = ["ok", "events", "head", "first_bad_seq", "problem"]
    row = [v.ok, v.events, str(v.head), v.first_bad_seq, v.problem]
    if a.format == "json":
        json.dump(dict(zip(columns, row, strict=True)), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif a.format == "csv":
        _emit_rows(columns, [row], "csv", None, a.raw_csv)
    elif v.ok:
        print(f"ok: {v.events} events, head {v.head}")
    else:
        print(f"NOT INTACT: first bad seq {v.first_bad_seq}: {printable(v.problem or '')}")
    return 0 if v.ok else 1


def _read_key(path: str, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"--key: no {what} file at {path}")
    return p.read_text(encoding="utf-8").strip()


def _cmd_key(a: argparse.Namespace) -> int:
    key = sm.SigningKey.generate(a.name)
    out = Path(a.out or a.name.replace("/", "_") + ".key")
    pub = out.with_name(out.name.removesuffix(".key") + ".pub")
    for p in (out, pub):
        if p.exists():
            raise BadInput(f"{p} exists: not overwriting a key")
    # The secret is written to a file only its owner may read, created that way.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"{key}\n")
    pub.write_text(f"{key.verifying_key()}\n", encoding="utf-8")
    print(f"signing key:   {out} (keep it secret)")
    print(f"verifying key: {pub}: {key.verifying_key()}")
    return 0


def _cmd_checkpoint(a: argparse.Namespace) -> int:
    key = sm.SigningKey.from_str(_read_key(a.key, "signing key"))
    with _open(a.ledger) as ledger:
        cp = ledger.checkpoint(key)
    sys.stdout.write(cp.text)
    return 0


def _json_safe(value: Any) -> Any:
    """Report rows as JSON values: dates and other values as their text."""
    return json.loads(json.dumps(value, default=str))


def _cmd_evidence(a: argparse.Namespace) -> int:
    key = sm.SigningKey.from_str(_read_key(a.key, "signing key"))
    contract = sm.Contract.load(a.contract)
    prices = sm.PriceTable.load(a.prices) if a.prices else None
    with _open(a.ledger) as ledger:
        report = ledger.report(contract, prices, since=a.since, until=a.until)
        violations = report.violations(a.interpretation, a.clause)
        rows = [
            r
            for r in report.to_pylist()
            if r.get("clause") == a.clause and r.get("interpretation") == a.interpretation
        ]
        cp = ledger.checkpoint(key)
        bundle = ledger.evidence(
            violations,
            cp,
            rows=_json_safe(rows),
            context={
                "contract": Path(a.contract).name,
                "clause": a.clause,
                "interpretation": a.interpretation,
                "since": a.since,
                "until": a.until,
            },
        )
    Path(a.out).write_text(bundle, encoding="utf-8")
    print(f"{a.out}: {len(violations)} events against checkpoint {cp.origin} size {cp.size}")
    return 0


def _cmd_verify_evidence(a: argparse.Namespace) -> int:
    key_path = Path(a.key)
    key = key_path.read_text(encoding="utf-8").strip() if key_path.is_file() else a.key
    if not Path(a.bundle).is_file():
        raise BadInput(f"no bundle file at {a.bundle}")
    r = sm.verify_evidence(Path(a.bundle), sm.VerifyingKey.from_str(key))
    if a.format == "json":
        cp = r.checkpoint
        doc = {
            "ok": r.ok,
            "problem": r.problem,
            "failed": r.failed,
            "checkpoint": None if cp is None else {"origin": cp.origin, "size": cp.size},
            "items": r.items,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if r.ok else 1
    if r.checkpoint is not None:
        print(f"checkpoint {printable(r.checkpoint.origin)} size {r.checkpoint.size}")
    if r.problem:
        print(f"FAIL: {printable(r.problem)}")
    for item in r.items:
        mark = "ok  " if item["ok"] else "FAIL"
        line = f"{mark} seq {item['seq']} event {printable(item['event_id'])}"
        print(line if item["ok"] else f"{line}: {printable(item['problem'])}")
    if r.ok:
        print(f"ok: {len(r.items)} events check out")
    else:
        print(f"NOT VERIFIED: {len(r.failed)} of {len(r.items)} events fail")
    return 0 if r.ok else 1


def _ruleset(name: str) -> sm.Ruleset:
    if name == "default":
        return sm.Ruleset.default()
    if name == "strict":
        return sm.Ruleset.strict()
    return sm.Ruleset.load(name)


def _request_body(body: Any) -> str | None:
    """A request file's ``body``: a string is the body as sent; a JSON object or array (as the
    project's request fixtures write it) is sent as its JSON text."""
    if body is None or isinstance(body, str):
        return body
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _cmd_classify(a: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if a.file == "-" else Path(a.file).read_text(encoding="utf-8")
    except OSError as e:
        raise BadInput(f"cannot read {a.file}: {e.strerror or e}") from e
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{a.file}: not JSON: {e.msg} (line {e.lineno})") from e
    if not isinstance(doc, dict):
        raise BadInput(f"{a.file}: expected a JSON object (an event or a request)")
    ruleset = _ruleset(a.ruleset)
    event: dict[str, Any] | None = None
    if "kind" in doc:
        c = sm.classify(doc, ruleset=ruleset)
    elif "method" in doc and "url" in doc:
        # The user's say about hosts: host pattern -> venue, host pattern -> provider.
        hosts: dict[str, dict[str, str]] = {}
        for key in ("venues", "providers"):
            mapping = doc.get(key)
            if mapping is None:
                continue
            if not isinstance(mapping, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
            ):
                raise BadInput(f"{a.file}: '{key}' must map host patterns to names (strings)")
            hosts[key] = mapping
        event, c = sm.classify_request(
            doc["method"],
            doc["url"],
            doc.get("headers"),
            _request_body(doc.get("body")),
            ruleset=ruleset,
            **hosts,
        )
    else:
        raise BadInput(
            f"{a.file}: neither an event (with 'kind') nor a request (with 'method' and 'url')"
        )
    result = c.to_dict()
    if a.format == "json":
        if event is not None:
            result = {"event": event, **result}
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif a.format == "csv":
        rows = [[x.rule, x.tag, x.signal, x.explain, x.state] for x in c.evidence]
        _emit_rows(["rule", "tag", "signal", "explain", "state"], rows, "csv", None, a.raw_csv)
    else:
        if event is not None:
            desc = ", ".join(
                f"{k}={v}" for k, v in event.items() if v is not None and k != "request"
            )
            print(f"event: {printable(desc)}")
            if event.get("request"):
                print(f"request: {json.dumps(event['request'], sort_keys=True)}")
        print(f"tag: {c.tag}")
        print(f"consumes_state: {c.consumes_state}")
        print(f"creates_state: {c.creates_state}")
        print(f"state_holder: {c.state_holder}")
        print(f"state_kinds: {', '.join(c.state_kinds) or '-'}")
        print(f"session_stateful: {c.session_stateful}")
        print(f"ruleset: {printable(c.ruleset)}")
        print("evidence:")
        for x in c.evidence:
            state = f" ({x.state})" if x.state else ""
            print(printable(f"  - {x.rule} [{x.tag}]{state} {x.signal}: {x.explain}"))
    return 0


COMMANDS = {
    "report": _cmd_report,
    "costs": _cmd_costs,
    "scenario": _cmd_scenario,
    "verify": _cmd_verify,
    "classify": _cmd_classify,
    "key": _cmd_key,
    "checkpoint": _cmd_checkpoint,
    "evidence": _cmd_evidence,
    "verify-evidence": _cmd_verify_evidence,
}


def _one_line(e: BaseException) -> str:
    text = printable(" ".join(str(e).split())) or type(e).__name__
    # A contract naming a ruleset that does not compile: say what is wrong in the ruleset.
    if isinstance(e.__cause__, sm.StatemeterError):
        text += f" (because {_one_line(e.__cause__)})"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (the console script exits with it)."""
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        return 0
    except (BadInput, sm.StatemeterError, ValueError, OSError) as e:
        print(f"statemeter: error: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
