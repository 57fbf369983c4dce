"""examples/demo.py (make demo): report printed, ledger verified, self-contained HTML."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def test_demo_writes_a_self_contained_report(tmp_path):
    env = {**os.environ, "STATEMETER_DEMO_SESSIONS_PER_AGENT_DAY": "2", "MPLBACKEND": "Agg"}
    run = subprocess.run(
        [sys.executable, str(DEMO), str(tmp_path / "ledger.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for name in ("session-level", "call-level", "all-calls"):
        assert re.search(rf"^{name}\s+[\d,]+\s+[\d,]+\s+[\d.]+%\s+[\d,.]+ USD", out, re.M), out
    for name in ("call-level-strict", "session-level-strict"):
        assert re.search(rf"^{name}\s+[\d,]+\s+[\d,]+\s+[\d.]+%\s+[\d,.]+ USD", out, re.M), out
    assert "verify: ok=True" in out
    page = (tmp_path / "report.html").read_text()
    for name in ("session-level", "call-level", "all-calls"):
        assert f'<th colspan="3">{name}</th>' in page
    assert "call-level-strict<br><span class='sm-null'>ruleset: strict</span>" in page
    assert "Verification: <span class='sm-ok'>✔ intact</span>" in page
    assert page.count("src='data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=['\"]https?:", page)  # nothing external
    for name in ("usage_events", "usage_cost", "interpretations", "session_timeline"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
