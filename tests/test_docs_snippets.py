"""Every code block of README.md and docs/*.md runs, or says why not.

How a fenced block is checked, by its language tag (write documentation to these rules):

- ``python``: executed. The blocks of one file run in order in one namespace (a later block may
  use the names of an earlier one), in a fresh temporary directory holding a copy of
  ``examples/``, so relative paths (``"audit.db"``, ``"examples/contracts/..."``) resolve as
  from the repository root and nothing is written into the repository. Top-level ``await``
  is allowed. Names a file's snippets take as given (a ledger already recorded, a compiled
  graph) are defined by that file's entry in ``SETUP`` below, which says what each provides;
  prefer a self-contained snippet.
- ``sh``: run by bash (``-euo pipefail``) in that directory after the file's earlier blocks,
  with ``statemeter`` meaning this interpreter's ``python -m statemeter``.
- ``toml``: parsed; a contract (``[[clause]]``), price table (``currency``) or ruleset
  (``[[rule]]``) is also loaded by statemeter, so it must be valid for it.
- ``json``: parsed.
- ``sql``: executed by SQLite (in memory), or by DuckDB in the file's directory when marked
  ``<!-- snippet sql: duckdb -->``.
- ``text``: shown as is (file trees, formulas, output). A block without a tag fails: tag it.

Markers, HTML comments on the lines right above the fence (invisible when rendered):

- ``<!-- snippet fragment: REASON -->``: the block is not run (a Python fragment must still
  parse). The reason is required: say what is missing and where the same thing is tested.
- ``<!-- snippet requires: NAME, ... -->``: the block needs optional modules (importable names)
  or commands (``cmd:java``); where one is missing it is skipped, saying which. Without the
  marker a missing module is a failure, so a snippet never silently stops running.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import statemeter as sm

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"python", "sh", "toml", "json", "sql", "text"}
FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)")
MARKER = re.compile(r"^<!--\s*snippet\s+(fragment|requires|sql)\s*:\s*(.*?)\s*-->$")


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence
    lang: str
    code: str
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with the snippet markers right above each."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = len(m.group(1)), m.group(2), m.group(3)
        markers: dict[str, str] = {}
        j = i - 1
        while j >= 0 and (mk := MARKER.match(lines[j].strip())):
            markers[mk.group(1)] = mk.group(2)
            j -= 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        out.append(Block(path, i - len(body), lang, "\n".join(body) + "\n", markers))
        i += 1
    return out


ALL = [b for p in DOCS for b in blocks(p)]

# ----------------------------------------------------------------------------- per-file setup
#
# Run in the file's namespace and directory before its first block. Each says what it gives.

_FLEET = (
    "import statemeter as sm\n"
    "from statemeter import simulate\n"
    "_fleet = simulate.fleet(days=30, agents=6, seed=0, path='audit.db', start='2026-04-13',\n"
    "                        sessions_per_agent_day=2)\n"
    "_fleet.meter.close()\n"
)

SETUP: dict[str, str] = {
    # The capture snippet's SDK clients talk to a local server answering like the providers'
    # APIs (tests/loopback.py): OPENAI_BASE_URL points there, API keys are placeholders, no
    # request leaves the machine. The LangGraph one-liner's `graph` and input `x`: a one-node
    # graph over a scripted chat model.
    "README.md": (
        "from langgraph.graph import START, MessagesState, StateGraph\n"
        "from test_integrations_langchain import script as _script\n"
        "_model = _script()\n"
        "_builder = StateGraph(MessagesState)\n"
        "_builder.add_node('agent', lambda s: {'messages': [_model.invoke(s['messages'])]})\n"
        "_builder.add_edge(START, 'agent')\n"
        "graph = _builder.compile(name='support')\n"
        "x = {'messages': [('user', 'where is my order?')]}\n"
    ),
    # `ledger`, `contract`, `prices`: a simulated month (6 agents) and the example contract and
    # price table.
    "docs/arrow.md": _FLEET
    + (
        "ledger = sm.Ledger.open('audit.db')\n"
        "contract = sm.Contract.load('examples/contracts/model-access-2025.toml')\n"
        "prices = sm.PriceTable.load('examples/prices/illustrative.toml')\n"
    ),
    # audit.db: a simulated month straddling the 2026-04-27 amendment; for the shell block,
    # event.json (one event to classify) and $KEPT_HEAD (the ledger's head, kept earlier).
    "docs/contracts.md": _FLEET
    + (
        "import json, os, pathlib\n"
        "pathlib.Path('event.json').write_text(json.dumps({'kind': 'model_call',\n"
        "    'provider': 'openai', 'model': 'gpt-5', 'api': 'responses',\n"
        "    'request': {'previous_response_id': 'r1'}}))\n"
        "os.environ['KEPT_HEAD'] = str(sm.Ledger.open('audit.db').head())\n"
    ),
    # `agent`: the scripted triage agent of tests/test_integrations_openai_agents.py (a fake
    # model, no network; the SDK's own exporter is switched off); `builder` and `inputs`: a
    # LangGraph graph over a scripted chat model; traces.json: an OTLP/JSON export of GenAI
    # spans (tests/data/otlp/genai-current.json); spans.otlp.json: an AgentCore Runtime's
    # observability spans (tests/data/runtimes/agentcore_runtime_spans.otlp.json).
    "docs/integrations.md": (
        "import agents, shutil\n"
        "from langgraph.graph import START, MessagesState, StateGraph\n"
        "from test_integrations_openai_agents import make_agents as _make_agents\n"
        "from test_integrations_langchain import script as _script\n"
        "agents.set_trace_processors([])\n"
        "agent = _make_agents()[0]\n"
        "_model = _script()\n"
        "builder = StateGraph(MessagesState)\n"
        "builder.add_node('agent', lambda s: {'messages': [_model.invoke(s['messages'])]})\n"
        "builder.add_edge(START, 'agent')\n"
        "inputs = {'messages': [('user', 'where is my order?')]}\n"
        f"shutil.copy({str(ROOT / 'tests/data/otlp/genai-current.json')!r}, 'traces.json')\n"
        f"shutil.copy({str(ROOT / 'tests/data/runtimes/agentcore_runtime_spans.otlp.json')!r},"
        " 'spans.otlp.json')\n"
    ),
    # audit.db: a simulated month.
    "docs/scale.md": _FLEET,
}

# Environment for the README's capture snippet (see SETUP["README.md"]).
RESPONSE = {
    "id": "resp_2",
    "object": "response",
    "created_at": 1,
    "model": "gpt-5",
    "output": [],
    "status": "completed",
    "usage": {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12,
    },
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}


class FileRun:
    """The state of one documentation file's run: its directory, namespace and progress."""

    def __init__(self, path: Path, workdir: Path) -> None:
        self.path = path
        self.rel = str(path.relative_to(ROOT))
        self.dir = workdir
        self.ns: dict[str, Any] = {"__name__": "__snippets__"}
        self.done = 0
        self.failed: str | None = None
        shutil.copytree(ROOT / "examples", workdir / "examples")
        if self.rel in SETUP:
            with in_dir(workdir):
                exec(compile(SETUP[self.rel], f"<setup of {self.rel}>", "exec"), self.ns)

    def close(self) -> None:
        for value in list(self.ns.values()):
            closer = getattr(value, "close", None)
            if isinstance(value, sm.Meter):
                value.close()
            elif callable(closer) and type(value).__module__.split(".")[0] in {
                "openai",
                "anthropic",
                "httpx",
                "httpx2",
            }:
                closer()
        if self.rel == "docs/integrations.md" or self.rel == "README.md":
            if importlib.util.find_spec("agents"):
                import agents

                agents.set_trace_processors([])
        self.ns.clear()


class in_dir:
    def __init__(self, path: Path) -> None:
        self.path, self.old = path, os.getcwd()

    def __enter__(self) -> None:
        os.chdir(self.path)

    def __exit__(self, *exc: Any) -> None:
        os.chdir(self.old)


SKIP_DIRS = {
    ".git",
    "target",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
}


def repository_files() -> set[str]:
    """Every file under the repository root, but build output, caches and virtual envs."""
    out = set()
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".venv")]
        out.update(os.path.relpath(os.path.join(top, f), ROOT) for f in files)
    return out


class Runs:
    """The documentation files run so far in this session, and the repository's files before."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.files: dict[Path, FileRun] = {}
        self.before = repository_files()

    def of(self, path: Path) -> FileRun:
        if path not in self.files:
            name = re.sub(r"\W", "_", str(path.relative_to(ROOT)))
            self.files[path] = FileRun(path, self.factory.mktemp(name))
        return self.files[path]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    from loopback import Loopback, json_answer

    mp = pytest.MonkeyPatch()
    mp.setenv("MPLBACKEND", "Agg")
    mp.setenv("OPENAI_API_KEY", "sk-placeholder")
    mp.setenv("ANTHROPIC_API_KEY", "sk-ant-placeholder")
    mp.setenv("AWS_ACCESS_KEY_ID", "placeholder")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "placeholder")
    mp.syspath_prepend(str(Path(__file__).parent))
    try:
        with Loopback() as lb:
            lb.route("POST", "/v1/responses", json_answer(RESPONSE))
            mp.setenv("OPENAI_BASE_URL", lb.base + "/v1")
            state = Runs(tmp_path_factory)
            yield state
            for run in state.files.values():
                run.close()
    finally:
        mp.undo()
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


def missing(requires: str) -> list[str]:
    out = []
    for name in filter(None, (n.strip() for n in requires.split(","))):
        if name.startswith("cmd:"):
            if shutil.which(name[4:]) is None:
                out.append(f"the command {name[4:]}")
        elif importlib.util.find_spec(name) is None:
            out.append(f"the Python package providing {name}")
    return out


def run_block(run: FileRun, block: Block) -> None:
    """Runs (or checks) one block in its file's directory and namespace."""
    name = block.name
    if block.lang == "python":
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        code = compile(block.code, name, "exec", flags=flags)
        if "fragment" in block.markers:
            return
        with in_dir(run.dir):
            if code.co_flags & inspect.CO_COROUTINE:
                asyncio.run(eval(code, run.ns))
            else:
                exec(code, run.ns)
    elif "fragment" in block.markers:
        return
    elif block.lang == "sh":
        script = (
            "set -euo pipefail\n"
            f'statemeter() {{ "{sys.executable}" -m statemeter "$@"; }}\n' + block.code
        )
        r = subprocess.run(
            ["bash", "-c", script],
            cwd=run.dir,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert r.returncode == 0, f"{name}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    elif block.lang == "toml":
        doc = tomllib.loads(block.code)
        if "clause" in doc and "id" in doc:
            sm.Contract.from_toml(block.code, base=str(run.dir))
        elif "currency" in doc:
            sm.PriceTable.from_toml(block.code)
        elif "rule" in doc:
            sm.Ruleset.from_toml(block.code)
    elif block.lang == "json":
        json.loads(block.code)
    elif block.lang == "sql":
        if block.markers.get("sql") == "duckdb":
            import duckdb

            with in_dir(run.dir):
                con = duckdb.connect()
                try:
                    for statement in con.extract_statements(block.code):
                        con.execute(statement).fetchall()
                finally:
                    con.close()
        else:
            con = sqlite3.connect(":memory:")
            try:
                con.executescript(block.code)
            finally:
                con.close()


@pytest.mark.parametrize("block", ALL, ids=[b.name for b in ALL])
def test_snippet(block: Block, runs: Runs) -> None:
    assert block.lang, (
        f"{block.name}: the code block has no language tag: python, sh, toml, json, sql "
        "or text (see tests/test_docs_snippets.py)"
    )
    assert block.lang in LANGUAGES, f"{block.name}: unknown language {block.lang!r}"
    if "fragment" in block.markers:
        assert len(block.markers["fragment"]) > 10, f"{block.name}: say why it is not run"
    if block.markers.get("sql") not in (None, "duckdb", "sqlite"):
        pytest.fail(f"{block.name}: sql engine {block.markers['sql']!r} (duckdb or sqlite)")
    run = runs.of(block.path)
    # The file's earlier blocks first (they define names this one uses), once each.
    mine = [b for b in ALL if b.path == block.path]
    index = mine.index(block)
    while run.done <= index:
        current = mine[run.done]
        run.done += 1
        if run.failed:
            pytest.fail(f"{block.name}: an earlier block of the file failed ({run.failed})")
        lacking = missing(current.markers.get("requires", ""))
        if lacking:
            if current is block:
                pytest.skip(
                    f"{block.name} needs {', '.join(lacking)}, not installed on this machine"
                )
            continue
        try:
            run_block(run, current)
        except BaseException:
            run.failed = current.name
            raise


def test_snippets_leave_the_repository_as_it_was(runs: Runs) -> None:
    """Runs after the snippets (pytest keeps file order): they wrote only into their temporary
    directories, never into the repository."""
    assert runs.files, "no snippet ran before this test"
    assert sorted(repository_files() - runs.before) == []
