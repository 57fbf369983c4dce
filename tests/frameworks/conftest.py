"""Framework tests: each group of frameworks runs in a virtual environment of its own
(`make test-frameworks`); see harness.py."""

from __future__ import annotations

import os

# Offline: LiteLLM would fetch its model price list from GitHub at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CHECKED, COMPAT, ModelServer


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as s:
        yield s


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A whole group's run checked every row the table has for the group: no row outlives the
    test that keeps it true."""
    if exitstatus != 0 or session.config.option.keyword or session.config.option.markexpr:
        return
    groups = {Path(str(a)).name for a in session.config.args}
    rows = {(r["framework"], r["plugin"], r["api"]) for r in COMPAT["rows"] if r["group"] in groups}
    missing = rows - CHECKED
    if missing and len(groups) == 1 and not any("::" in str(a) for a in session.config.args):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\ncompat.json rows no test checked: {sorted(missing)}")
