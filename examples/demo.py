"""The statemeter demo (``make demo``): a month of an enterprise agent fleet, recorded,
classified, judged against a contract under three interpretations with exact costs, verified,
and written up as a self-contained HTML report.

    python examples/demo.py demo/ledger.db

1. ``statemeter.simulate.fleet`` records 30 days of 12 agents (chat completions on Azure,
   Responses chains, AgentCore and Foundry runtime sessions, memory, MCP tools, ...; about
   135,000 events, ``STATEMETER_DEMO_SESSIONS_PER_AGENT_DAY`` sets the volume, default 48) into
   ``demo/ledger.db`` through the public ``Meter`` API.
2. The compliance report of ``examples/contracts/model-access-2025.toml`` under its three
   interpretations, priced with ``examples/prices/illustrative.toml`` (illustrative, not a quote);
   then the same clause with "stateless" read as recorded and under the strict ruleset
   (``examples/contracts/model-access-2025-rulesets.toml``: the report classifies the calls
   again for the strict readings).
3. ``ledger.verify(head=...)`` re-derives the hash chain.
4. A signed checkpoint of the ledger's Merkle tree (kept in the ledger and written to
   ``demo/checkpoint.txt``) and the evidence bundle of the call-level violations,
   ``demo/evidence.json``, that a counterparty checks offline with ``demo/verifying.pub``
   (``statemeter verify-evidence demo/evidence.json --key demo/verifying.pub``). The demo's
   signing key is new each run and written to ``demo/signing.key``.
5. ``demo/report.html`` (plots embedded as base64 PNG) and the PNG plots in ``demo/``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import statemeter as sm  # noqa: E402
from statemeter import display, plot, simulate  # noqa: E402
from statemeter.money import format_cents  # noqa: E402

HERE = Path(__file__).resolve().parent
CONTRACT = HERE / "contracts" / "model-access-2025.toml"
AMENDED = HERE / "contracts" / "model-access-2026-amended.toml"
RULESETS = HERE / "contracts" / "model-access-2025-rulesets.toml"
PRICES = HERE / "prices" / "illustrative.toml"
START = "2026-04-13"


def money(nanos: int | None, currency: str) -> str:
    """To the cent, half to even: the rounding every view of statemeter uses."""
    return f"{format_cents(nanos):>12} {currency}"


def print_report(report: sm.Report) -> None:
    cur = report.currency or ""
    print(
        f"{'interpretation':<22}{'covered':>9}{'violating':>11}{'share':>8}"
        f"{'covered cost':>18}{'violating cost':>18}"
    )
    for r in report.to_pylist():
        share = r["violating_events"] / r["covered_events"] if r["covered_events"] else 0.0
        print(
            f"{r['interpretation']:<22}{r['covered_events']:>9,}{r['violating_events']:>11,}"
            f"{share:>8.1%}{money(r['covered_cost_nanos'], cur):>18}"
            f"{money(r['violating_cost_nanos'], cur):>18}"
        )


def main() -> int:
    started = time.perf_counter()
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "demo/ledger.db")
    out = path.parent
    out.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    sessions_per_day = float(os.environ.get("STATEMETER_DEMO_SESSIONS_PER_AGENT_DAY", "48"))

    # 1. Record a month of the fleet.
    t = time.perf_counter()
    # 30 days straddling the contract amendment of 2026-04-27.
    fleet = simulate.fleet(
        days=30, agents=12, seed=0, path=path, start=START, sessions_per_agent_day=sessions_per_day
    )
    fleet.meter.close()
    print(f"recorded {fleet} into {path} in {time.perf_counter() - t:.1f} s")
    ledger = sm.Ledger.open(path)
    head = ledger.head()

    # 2. The clause under its three readings, with costs.
    contract = sm.Contract.load(CONTRACT)
    prices = sm.PriceTable.load(PRICES)
    report = ledger.report(contract, prices)
    clause = contract.clauses[0]
    print(f"\n{contract.id}: {clause['id']} - {clause['text']!r}")
    print(f"(prices: {prices.title})\n")
    print_report(report)
    amended = ledger.report(sm.Contract.load(AMENDED), prices)
    print("\nthe same month under the amended contract (Azure or AWS from 2026-04-27):")
    print_report(amended)
    by_ruleset = ledger.report(sm.Contract.load(RULESETS), prices)
    print("\nthe same clause, 'stateless' as recorded and under the strict ruleset:")
    print_report(by_ruleset)
    costs = ledger.costs(prices, by="venue")
    total = sum(r["cost_nanos"] or 0 for r in costs.to_pylist())
    by_venue = ", ".join(
        f"{r['venue'] or 'no venue (state operations)'} {money(r['cost_nanos'], '').strip()}"
        for r in costs.to_pylist()
    )
    print(f"\nall billable events: {money(total, prices.currency).strip()} ({by_venue})")

    # 3. Verify the chain against the head kept at the end of recording.
    v = ledger.verify(head=head)
    print(f"\nverify: ok={v.ok} events={v.events:,} head={v.head}")

    # 4. A signed checkpoint, and the evidence of the violating calls for the other party.
    key = sm.SigningKey.generate("demo.statemeter.example/fleet")
    key_file = out / "signing.key"
    key_file.unlink(missing_ok=True)
    with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(f"{key}\n")
    (out / "verifying.pub").write_text(f"{key.verifying_key()}\n")
    checkpoint = ledger.checkpoint(key)
    (out / "checkpoint.txt").write_text(checkpoint.text)
    violations = report.violations("call-level", clause["id"])
    rows = [
        r
        for r in report.to_pylist()
        if r["clause"] == clause["id"] and r["interpretation"] == "call-level"
    ]
    bundle = ledger.evidence(
        violations,
        checkpoint,
        rows=rows,
        context={"contract": contract.id, "clause": clause["id"], "interpretation": "call-level"},
    )
    (out / "evidence.json").write_text(bundle)
    checked = sm.verify_evidence(bundle, key.verifying_key())
    print(
        f"\ncheckpoint: {checkpoint.origin} size {checkpoint.size:,} root "
        f"{checkpoint.root_hash[:16]}... signed by {key.name}"
    )
    print(
        f"evidence: {out / 'evidence.json'} ({len(bundle) / 1024:.0f} KiB), "
        f"{len(violations):,} call-level violations of {clause['id']}; "
        f"verify_evidence ok={checked.ok}"
    )

    # 5. Plots and the self-contained HTML report.
    amended_contract = sm.Contract.load(AMENDED)
    figures = [
        (
            "Model calls per day by venue and call-level tag (each call's own tag); the dashed "
            "line is the 2026-04-27 amendment",
            plot.usage_over_time(ledger, "events", contract=amended_contract),
        ),
        (
            "Model-call cost per day by venue and call-level tag (illustrative prices); the "
            "dashed line is the 2026-04-27 amendment",
            plot.usage_over_time(ledger, "cost", prices=prices, contract=amended_contract),
        ),
        (
            "The three interpretations: covered vs violating model calls, each judged by the "
            "tag at its level (call or session)",
            plot.interpretations(report),
        ),
        (
            "A provider-managed runtime session: stateless calls (call-level tags) inside a "
            "stateful session (session-level tag)",
            plot.session_timeline(ledger),
        ),
    ]
    names = ["usage_events.png", "usage_cost.png", "interpretations.png", "session_timeline.png"]
    images = []
    for (caption, ax), name in zip(figures, names, strict=True):
        plot.png(ax, out / name)
        images.append((caption, plot.png_base64(ax)))
    sessions = ledger.sessions()
    page = display.report_page(
        f"statemeter demo: {contract.id} over a simulated fleet",
        summary={
            "ledger": str(path),
            "period": f"{fleet.days} days from {START} (UTC)",
            "agents": len(fleet.agents),
            "sessions": len(sessions),
            "events": len(ledger),
            "clause": clause["text"],
            "prices": prices.title,
            "head": str(head),
        },
        reports=[
            ("Compliance under the three interpretations", report),
            ("The same month under the amended contract (Azure or AWS from 2026-04-27)", amended),
            ("The clause with 'stateless' as recorded and under the strict ruleset", by_ruleset),
            ("Costs by venue", costs),
        ],
        verification=v,
        sessions=sessions,
        images=images,
    )
    html_path = out / "report.html"
    html_path.write_text(page)
    print(
        f"wrote {html_path} ({len(page) / 1024:.0f} KiB) and "
        f"{', '.join(str(out / n) for n in names)}"
    )
    print(
        "the violating calls of a clause, by agent, venue, model and rule: "
        "report.explain(interpretation, clause)"
    )
    print(f"demo done in {time.perf_counter() - started:.1f} s")
    print_next_steps(path, html_path, head)
    return 0 if v.ok and checked.ok else 1


def print_next_steps(ledger: Path, page: Path, head: sm.Head) -> None:
    """What to open, and commands to try next, runnable as printed from the current directory."""

    def shown(p: Path) -> Path:
        return p.relative_to(Path.cwd()) if p.is_absolute() and p.is_relative_to(Path.cwd()) else p

    bin_dir = shown(Path(sys.executable).parent)
    statemeter, python = bin_dir / "statemeter", bin_dir / "python"
    contract, prices = shown(AMENDED), shown(PRICES)
    print()
    print(f"Open {page} in a browser: the report, its explanations and the plots.")
    print("Next, try:")
    for command, what in (
        (
            f"{statemeter} report {ledger} --contract {contract} --prices {prices} --by venue",
            "the amended contract's report by venue, in the terminal",
        ),
        (f"{statemeter} costs {ledger} --prices {prices} --by model", "costs by model"),
        (f"{statemeter} verify {ledger} --head {head}", "re-derive the chain against the head"),
        (f"{python} -m statemeter.reverify {ledger}", "the same with the standard library alone"),
        ("make test", "the full test suite (installs the development tools into .venv)"),
    ):
        print(f"  {command}\n      {what}")


if __name__ == "__main__":
    sys.exit(main())
