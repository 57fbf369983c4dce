"""The report page (demo/report.html, as examples/demo.py writes it) rendered by a real
headless browser at a 1400-px window: no text overflows its box, nothing is wider than the
page, and each violating figure has its drill-down (by agent, venue, model and rule).

Chromium comes from the distribution's packages (`make browser`, run by `make test`)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# Runs after the page has loaded: opens every <details> (so drill-downs are laid out and
# measured), then records every element whose content is wider than its box and every
# element that reaches past the page's right edge, and what the drill-downs hold.
PROBE = """
<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const page = document.documentElement.clientWidth;
  const overflow = [];
  const beyond = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.tagName === 'SCRIPT' || el.id === 'sm-probe') continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    const what = el.tagName + ': ' + (el.textContent || el.getAttribute('alt') || '').slice(0, 80);
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1
        && getComputedStyle(el).display !== 'inline') {
      overflow.push(what + ' (' + el.scrollWidth + ' > ' + el.clientWidth + ')');
    }
    if (box.right > page + 1) beyond.push(what + ' (right edge ' + Math.round(box.right) + ')');
  }
  const drills = [...document.querySelectorAll('details.sm-drill')].map(d => ({
    summary: d.querySelector('summary').textContent,
    headings: [...d.querySelectorAll('th')].map(th => th.textContent),
    rows: d.querySelectorAll('tbody tr').length,
  }));
  const headings = [...document.querySelectorAll('th')].map(th => th.textContent);
  const out = document.createElement('pre');
  out.id = 'sm-probe';
  out.textContent = JSON.stringify({
    page, scrollWidth: document.documentElement.scrollWidth, overflow, beyond, drills, headings,
  });
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> dict:
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "Chromium is not installed on this machine (make browser installs the "
            "distribution's package when run as root)"
        )
    pytest.importorskip("matplotlib", reason="the demo's plots need statemeter[plot]")
    out = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "STATEMETER_DEMO_SESSIONS_PER_AGENT_DAY": "2", "MPLBACKEND": "Agg"}
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), str(out / "ledger.db")],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    report = (out / "report.html").read_text(encoding="utf-8")
    probe = out / "probe.html"
    probe.write_text(report.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    p = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    m = re.search(r'<pre id="sm-probe">(.*?)</pre>', p.stdout, re.S)
    assert m, f"the page did not finish loading in the browser: {p.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def test_no_text_overflows_at_1400_px(page):
    assert page["page"] <= 1400
    assert page["overflow"] == []
    assert page["beyond"] == []
    assert page["scrollWidth"] <= page["page"]


def test_each_violating_figure_drills_down(page):
    drills = page["drills"]
    # Three reports on the page, every interpretation with violating calls.
    assert len(drills) >= 9
    for d in drills:
        assert d["summary"].startswith("Why ") and "violating calls under" in d["summary"]
        for heading in ("agent", "venue", "model", "rule", "signal", "explanation"):
            assert heading in d["headings"]
        assert "example sessions" in d["headings"]
        assert d["rows"] >= 1


def test_money_headings_are_in_the_currency(page):
    assert not [h for h in page["headings"] if "nanos" in h]
    assert any(h.endswith("(USD)") for h in page["headings"])
