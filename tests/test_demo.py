"""examples/demo.py (make demo): report printed, ledger verified, self-contained HTML, and what
to open and try next; the make recipe installs only the package with its analysis and plot
extras, into its own venv."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import statemeter as sm

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"


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
    assert "verify_evidence ok=True" in out
    bundle = (tmp_path / "evidence.json").read_text()
    key = (tmp_path / "verifying.pub").read_text().strip()
    assert sm.verify_evidence(bundle, key).ok
    assert sm.Checkpoint.parse((tmp_path / "checkpoint.txt").read_text()).verify(key)
    page = (tmp_path / "report.html").read_text()
    for name in ("session-level", "call-level", "all-calls"):
        assert re.search(rf'<th colspan="\d+">{name}</th>', page), name
    assert "call-level-strict<br><span class='sm-null'>ruleset: strict</span>" in page
    assert "Verification: <span class='sm-ok'>✔ intact</span>" in page
    assert page.count("src='data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=['\"]https?:", page)  # nothing external
    for name in ("usage_events", "usage_cost", "interpretations", "session_timeline"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    # It ends with what to open and commands to try, which work as printed.
    tail = out[out.index("\nOpen ") :]
    assert f"Open {tmp_path / 'report.html'} in a browser" in tail
    commands = [
        line.strip() for line in tail.splitlines() if line.startswith("  ") and "  " in line
    ]
    reverify = next(c for c in commands if "-m statemeter.reverify" in c)
    r = subprocess.run(shlex.split(reverify), capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and r.stdout.startswith("OK: "), r
    assert any(c.startswith("make test") for c in commands)
    assert any(" report " in c and "--contract" in c for c in commands)


@pytest.mark.skipif(shutil.which("make") is None, reason="this machine has no make")
def test_make_demo_installs_only_the_package_with_its_extras():
    """`make demo` builds into .venv-demo with statemeter[analysis,plot] (maturin, release) and
    runs the demo there: not the development set, which `make test` installs into .venv."""
    recipe = subprocess.run(
        ["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert recipe.returncode == 0, recipe.stderr
    lines = recipe.stdout.splitlines()
    assert "requirements-dev" not in recipe.stdout and "$(VENV)" not in recipe.stdout
    assert any("maturin develop --release --extras analysis,plot" in x for x in lines)
    assert any(x.startswith(".venv-demo/bin/python -m pip install") for x in lines)
    assert any(re.search(r"\.venv-demo/bin/python examples/demo\.py", x) for x in lines)
    assert [x for x in lines if x.startswith("echo")] == [
        x for x in lines if x.startswith("echo") and "==> [" in x
    ], "each step says what it does"
    test = subprocess.run(["make", "-n", "-B", "test"], cwd=ROOT, capture_output=True, text=True)
    assert "-r requirements-dev.txt" in test.stdout
