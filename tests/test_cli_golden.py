"""The command line's `table` output, compared with the expected text in tests/golden/: a
deterministic simulated week straddling the 2026-04-27 amendment, reported, costed and moved
by `statemeter ...` at the default 120 columns (and with --wide). Every default table must fit
120 columns. STATEMETER_UPDATE_GOLDEN=1 rewrites the expected files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import statemeter as sm
from statemeter import cli, simulate, terminal

EXAMPLES = Path(__file__).parent.parent / "examples"
GOLDEN = Path(__file__).parent / "golden"
AMENDED = EXAMPLES / "contracts" / "model-access-2026-amended.toml"
CONTRACT = EXAMPLES / "contracts" / "model-access-2025.toml"
PRICES = EXAMPLES / "prices" / "illustrative.toml"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("golden") / "fleet.db"
    fleet = simulate.fleet(
        days=6, agents=8, seed=3, path=path, start="2026-04-24", sessions_per_agent_day=2
    )
    fleet.meter.close()
    return path


CASES = {
    "report_by_venue": ["report", "{ledger}", "--contract", AMENDED, "--prices", PRICES,
                        "--by", "venue"],
    "report_by_venue_wide": ["report", "{ledger}", "--contract", AMENDED, "--prices", PRICES,
                             "--by", "venue", "--wide"],
    "report_by_agent": ["report", "{ledger}", "--contract", CONTRACT, "--prices", PRICES,
                        "--by", "agent"],
    "costs_by_venue": ["costs", "{ledger}", "--prices", PRICES, "--by", "venue"],
    "costs_by_day_venue": ["costs", "{ledger}", "--prices", PRICES, "--by", "day,venue"],
    "scenario_costs": ["scenario", "{ledger}", "to-azure", "--contract", CONTRACT, "--select",
                       "venue=openai", "--venue", "azure", "--prices", PRICES, "--costs",
                       "--by", "venue"],
    "scenario_compliance": ["scenario", "{ledger}", "to-azure", "--contract", CONTRACT,
                            "--select", "venue=openai", "--venue", "azure", "--prices",
                            PRICES],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_table_output_matches_golden(name, ledger, capsys):
    argv = [str(a).replace("{ledger}", str(ledger)) for a in CASES[name]]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    path = GOLDEN / f"cli_{name}.txt"
    if os.environ.get("STATEMETER_UPDATE_GOLDEN") == "1":
        path.write_text(out, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run with STATEMETER_UPDATE_GOLDEN=1 to write it"
    assert out == path.read_text(encoding="utf-8")
    if "--wide" not in argv:
        too_wide = [line for line in out.splitlines() if len(line) > terminal.WIDTH]
        assert not too_wide, too_wide
    # Human output: money headed in the currency, no raw nanos heading.
    assert "_nanos" not in out and "(USD)" in out


def test_wide_shows_every_column_and_default_says_what_it_left_out(ledger, capsys):
    args = ["report", str(ledger), "--contract", str(AMENDED), "--prices", str(PRICES)]
    assert cli.main([*args, "--by", "venue"]) == 0
    narrow = capsys.readouterr().out
    assert cli.main([*args, "--by", "venue", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "--wide shows all" in narrow and "--wide shows all" not in wide
    with sm.Ledger.open(ledger) as led:
        columns = led.report(str(AMENDED), str(PRICES), by="venue").columns
    heading = wide.splitlines()[0]
    for c in columns:
        from statemeter import units

        assert units.header(c, "USD") in heading


def test_json_and_csv_keep_exact_nanos(ledger, capsys):
    args = ["costs", str(ledger), "--prices", str(PRICES), "--by", "venue"]
    assert cli.main([*args, "--format", "csv"]) == 0
    csv_head = capsys.readouterr().out.splitlines()[0].split(",")
    assert "cost_nanos" in csv_head and "model_cost_nanos" in csv_head
    assert cli.main([*args, "--format", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    with sm.Ledger.open(ledger) as led:
        assert rows == led.costs(str(PRICES), by="venue").to_pylist()
    assert all(isinstance(r["cost_nanos"], int) for r in rows)
