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
