"""Helpers shared by the benchmark modules (benches/bench_*.py)."""

from __future__ import annotations

import gc
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import statemeter as sm


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from statemeter import _core

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "statemeter": sm.__version__,
        "build": getattr(_core, "_build", None),
        "loadavg": os.getloadavg()[0],
    }


#: The writer threads by the names the kernel keeps (15 characters of their thread names).
WRITER_THREADS = {"statemeter-comm": "committer", "statemeter-enco": "encoder"}


def writer_threads_cpu_s() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process's writer threads, summed per
    role ("committer", "encoder"), from /proc (Linux; empty elsewhere)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            role = WRITER_THREADS.get((task / "comm").read_text().strip())
            if role is None:
                continue
            # Fields after the command's closing parenthesis: utime and stime are the 12th and
            # 13th (fields 14 and 15 of the whole line).
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def threads_cpu_ns_per_event(
    caller_s: float, before: dict[str, float], after: dict[str, float], n: int
) -> dict[str, float]:
    """CPU per event of the calling thread and of each writer thread between two snapshots of
    `writer_threads_cpu_s` (clock ticks: 10 ms resolution, fine over seconds of work)."""
    out = {"caller": caller_s / n * 1e9}
    for role, s in after.items():
        out[role] = (s - before.get(role, 0.0)) / n * 1e9
    return out


def best_ns_per_op(fn: Callable[[int], None], n: int, repeats: int) -> float:
    """Runs fn(n) `repeats` times and returns the best time per operation in ns."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def cpu_and_wall_ns_per_op(fn: Callable[[int], None], n: int) -> tuple[float, float]:
    """Runs fn(n) once; returns (CPU ns of this thread, wall ns) per operation."""
    gc.collect()
    c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
    fn(n)
    return (time.thread_time_ns() - c0) / n, (time.perf_counter_ns() - w0) / n


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def callgrind_events(
    cmd: list[str], env: dict[str, str] | None = None, cache_sim: bool = False
) -> dict[str, int] | None:
    """The main thread's totals of callgrind's events for `cmd`: instructions `Ir`, and with
    `cache_sim` its cache model's first-level misses (`I1mr`, `D1mr`, `D1mw`, ...); None when
    valgrind is not installed or the run fails."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--separate-threads=yes",
                *(["--cache-sim=yes"] if cache_sim else []),
                f"--callgrind-out-file={out}",
                *cmd,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        main = Path(out + "-01")  # the main thread's profile (one file per thread)
        if proc.returncode != 0 or not main.exists():
            return None
        names: list[str] = []
        for line in main.read_text().splitlines():
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                return dict(zip(names, map(int, line.split()[1:]), strict=True))
    return None


def instructions(cmd: list[str], env: dict[str, str] | None = None) -> int | None:
    """Instructions the main thread of `cmd` executes, counted by valgrind's callgrind (exact
    and independent of machine load: what the CPU-time figures approximate on a busy
    machine); None when valgrind is not installed or the run fails."""
    events = callgrind_events(cmd, env)
    return None if events is None else events.get("Ir")


def instructions_per_op(
    cmd: Callable[[int], list[str]],
    small: int,
    large: int,
    env_for: Callable[[int], dict[str, str]] | None = None,
) -> float | None:
    """Instructions per operation of the main thread: the difference between runs of `large`
    and `small` operations (start-up and set-up cancel out), divided by the difference.
    `cmd(n)` (and `env_for(n)`, if given) make the run of `n` operations."""

    def count(n: int) -> int | None:
        return instructions(cmd(n), env_for(n) if env_for else None)

    a, b = count(small), count(large)
    if a is None or b is None:
        return None
    return (b - a) / (large - small)
