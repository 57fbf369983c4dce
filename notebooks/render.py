"""Execute the notebooks and write each, with its outputs, as a self-contained HTML page.

    python notebooks/render.py docs/notebooks      (make docs)

The notebooks are committed without outputs (clean diffs: outputs hold fresh ids and times on
every run); the rendered pages, committed under docs/notebooks/, are where a reader of the
repository sees the results. Each page records the SHA-256 of the notebook it was rendered from
(``<meta name="statemeter-notebook-sha256">``): tests/test_notebooks.py fails when a notebook
changed since its page was rendered. The kernel is this interpreter (the project's .venv);
notebooks run in notebooks/ (they read ../examples) and write only to temporary directories.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNEL = "statemeter-render"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="statemeter-notebook-sha256" content="{digest}">
<title>{title}</title>
<style>
body {{ max-width: 1400px; margin: 2em auto; padding: 0 1em; font: 15px/1.5 system-ui, sans-serif;
       color: #1f2328; }}
.jp-Cell, .cell {{ margin: 1em 0; }}
pre {{ background: #f6f8fa; padding: .6em .8em; overflow-x: auto; border-radius: 4px;
      font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }}
.jp-InputArea pre, .input_area pre {{ border-left: 3px solid #0969da; }}
.jp-OutputArea pre, .output pre {{ background: #fff; border-left: 3px solid #d0d7de; }}
table {{ border-collapse: collapse; }}
img {{ max-width: 100%; }}
.source-note {{ color: #59636e; font-size: 13px; }}
{pygments}
</style>
</head>
<body>
<p class="source-note">Rendered from <code>notebooks/{name}</code> with its outputs
(<code>make docs</code>).</p>
{body}
</body>
</html>
"""


def notebook_digest(path: Path) -> str:
    """SHA-256 of the notebook's cells (type and source): what the rendered page shows."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [[c["cell_type"], "".join(c["source"])] for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def kernel_dir(root: Path) -> None:
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "statemeter",
                "language": "python",
                # Plots shown inline, as in Jupyter: figures become PNG outputs.
                "env": {
                    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                    "PYTHONWARNINGS": "ignore::DeprecationWarning",
                },
            }
        )
    )
    os.environ["JUPYTER_PATH"] = str(root)
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"


def render(path: Path, out_dir: Path) -> Path:
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter
    from pygments.formatters import HtmlFormatter

    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    title = next(
        (
            "".join(c.source).splitlines()[0].lstrip("# ")
            for c in nb.cells
            if c.cell_type == "markdown" and c.source
        ),
        path.stem,
    )
    page = PAGE.format(
        digest=notebook_digest(path),
        title=html.escape(title),
        name=path.name,
        pygments=HtmlFormatter().get_style_defs(".highlight"),
        body=body,
    )
    target = out_dir / f"{path.stem}.html"
    target.write_text(page, encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1] if len(argv) > 1 else "docs/notebooks")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        kernel_dir(Path(tmp))
        for path in sorted(HERE.glob("*.ipynb")):
            print(f"rendering {path.name} ...", flush=True)
            target = render(path, out_dir)
            print(f"  wrote {target} ({target.stat().st_size / 1024:.0f} KiB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
