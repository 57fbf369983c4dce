"""The notebooks in notebooks/ run top to bottom without errors (nbclient, with a kernel
launched from this interpreter, i.e. the project's .venv), and are committed without outputs;
docs/notebooks/*.html (``make docs``) show them with their outputs, rendered from the notebooks
as they are now."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RENDERED = ROOT / "docs" / "notebooks"
KERNEL = "statemeter-venv"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == [
        "01-quickstart",
        "02-contract-scenarios",
        "03-audit-trail",
        "04-fleet-at-scale",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def _render_module():
    spec = importlib.util.spec_from_file_location("render", ROOT / "notebooks" / "render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_rendered_page_shows_the_notebook_as_it_is_now(path):
    """docs/notebooks/NAME.html was rendered from this very notebook (its cells' SHA-256), holds
    every code cell's source, shows outputs, and no cell failed."""
    page_path = RENDERED / f"{path.stem}.html"
    assert page_path.is_file(), f"{page_path} is missing: run make docs"
    page = page_path.read_text(encoding="utf-8")
    digest = re.search(r'<meta name="statemeter-notebook-sha256" content="([0-9a-f]{64})">', page)
    assert digest, page_path
    assert digest.group(1) == _render_module().notebook_digest(path), (
        f"{path.name} changed since {page_path.name} was rendered: run make docs"
    )
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for line in "".join(cell["source"]).splitlines():
                assert line.strip() in text, (path.name, line)
    outputs = re.findall(r'class="[^"]*(?:jp-OutputArea-output|output_area)[^"]*"', page)
    assert outputs, f"{page_path.name} shows no outputs"
    assert "output_error" not in page, f"a cell of {path.name} failed"
    assert "Traceback (most recent call last)" not in text, f"a cell of {path.name} failed"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory, monkeypatch_module):
    """A kernelspec whose argv is this interpreter, found through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "statemeter (.venv)",
                "language": "python",
                "env": {"MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore::DeprecationWarning"},
            }
        )
    )
    monkeypatch_module.setenv("JUPYTER_PATH", str(root))
    monkeypatch_module.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_dir):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError with the traceback on any failing cell
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    rich = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type in ("display_data", "execute_result")
    ]
    assert rich, "the notebook displays something"
    if os.environ.get("STATEMETER_KEEP_NOTEBOOK_OUTPUTS"):
        nbformat.write(nb, path.with_suffix(".out.ipynb"))
