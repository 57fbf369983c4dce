"""The hand-written stub `_core.pyi` matches the compiled module (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")


def test_stub_matches_runtime():
    allowlist = Path(__file__).with_name("stubtest-allowlist.txt")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "statemeter._core",
            "--allowlist",
            str(allowlist),
            "--ignore-unused-allowlist",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
