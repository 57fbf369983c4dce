"""What the package declares about itself (pyproject.toml) and ships (python/statemeter)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_metadata_names_authors_keywords_and_urls():
    assert PROJECT["authors"] and all(a.get("name") for a in PROJECT["authors"])
    assert len(PROJECT["keywords"]) >= 5
    urls = PROJECT["urls"]
    assert {"Homepage", "Repository", "Documentation", "Issues"} <= set(urls)
    repo = urls["Repository"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo)
    for name, url in urls.items():
        assert url.startswith(repo), name
    # Documentation points at a folder of this repository.
    docs = urls["Documentation"].removeprefix(repo + "/tree/main/")
    assert (ROOT / docs).is_dir() and any((ROOT / docs).glob("*.md"))


def test_classifiers_are_known_and_name_every_supported_python():
    trove = pytest.importorskip("trove_classifiers")
    classifiers = PROJECT["classifiers"]
    assert not set(classifiers) - trove.classifiers, set(classifiers) - trove.classifiers
    assert classifiers == sorted(classifiers)
    lowest = re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"])
    assert lowest
    minors = sorted(
        int(m.group(1))
        for c in classifiers
        if (m := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))
    )
    assert minors[0] == int(lowest.group(1)), "the oldest classifier is requires-python's"
    assert minors == list(range(minors[0], minors[-1] + 1)), "no version left out"
    assert f"3.{minors[0]}" == "3.11" and "License :: OSI Approved :: MIT License" in classifiers


def test_analysis_extra_installs_what_the_analysis_docs_import():
    """README's analysis snippet imports pyarrow, polars and duckdb, and to_pandas() needs
    pandas: `pip install statemeter[analysis]` brings all four."""
    names = {re.split(r"[<>=!~ \[]", r)[0] for r in PROJECT["optional-dependencies"]["analysis"]}
    assert {"pyarrow", "pandas", "polars", "duckdb"} <= names
    assert {"matplotlib"} <= {
        re.split(r"[<>=!~ \[]", r)[0] for r in PROJECT["optional-dependencies"]["plot"]
    }


def test_reverify_ships_in_the_package_and_runs_as_a_module(tmp_path):
    """`python -m statemeter.reverify` is part of the package (python/statemeter is the wheel's
    Python source) and imports nothing outside the standard library."""
    maturin = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["maturin"]
    module = ROOT / maturin["python-source"] / "statemeter" / "reverify.py"
    assert module.is_file()
    imported = set(re.findall(r"^(?:import|from) (\w+)", module.read_text(), re.M))
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    r = subprocess.run(
        [sys.executable, "-m", "statemeter.reverify", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "python -m statemeter.reverify" in r.stdout, r
