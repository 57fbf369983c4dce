"""Capture: classify_request in Rust (target <= 2 us of CPU for a 2 KB JSON body, parse
included), and what the httpx hook adds to a loopback round trip (target <= 10 us of the calling
thread's CPU per request), same process, same client type, with and without the hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import statemeter as sm
from common import instructions_per_op

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def bench_classify_request(quick: bool) -> dict:
    """`cargo bench --bench classify_request` (release, no Python), and the same call from
    Python through `sm.classify_request` for comparison."""
    env = dict(os.environ, **({"QUICK": "1"} if quick else {}))
    proc = subprocess.run(
        ["cargo", "bench", "-q", "--bench", "classify_request"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    rust = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    chat = next(r for r in rust if r["bench"].startswith("chat.completions"))
    instructions = _rust_instructions(env, "chat.completions 2KB")

    body = json.dumps(
        {
            "model": "gpt-5",
            "store": True,
            "stream": True,
            "prompt_cache_key": "tenant-42",
            "messages": [
                {"role": "user", "content": "The quarterly report shows revenue grew. " * 45}
            ],
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"authorization", b"Bearer sk-x")]
    url = "https://api.openai.com/v1/chat/completions"
    n = 20_000 if quick else 100_000
    best = float("inf")
    for _ in range(3 if quick else 7):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            sm.classify_request("POST", url, headers, body)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return {
        "rust": rust,
        "rust_chat_2kb_ns": chat["ns_per_request"],
        "rust_chat_2kb_cpu_ns": chat["cpu_ns_per_request"],
        "rust_chat_2kb_instructions": instructions,
        "target_ns": 2000,
        "meets_target": (chat["cpu_ns_per_request"] or chat["ns_per_request"]) <= 2000,
        "python_call_ns": round(best, 1),
        "python_body_bytes": len(body),
    }


def _rust_instructions(env: dict, shape: str) -> float | None:
    """Instructions per classify_request of one request shape (callgrind over the bench
    binary at two call counts; None without valgrind)."""
    proc = subprocess.run(
        [
            "cargo",
            "bench",
            "-q",
            "--bench",
            "classify_request",
            "--no-run",
            "--message-format=json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    binary = None
    for line in proc.stdout.splitlines():
        msg = json.loads(line) if line.startswith("{") else {}
        if msg.get("target", {}).get("name") == "classify_request" and msg.get("executable"):
            binary = msg["executable"]
    if binary is None:
        return None
    return instructions_per_op(
        lambda n: [binary],
        2_000,
        4_000,
        env_for=lambda n: dict(env, BENCH_ONLY="=" + shape, BENCH_N=str(n)),
    )


def bench_httpx_hook(quick: bool) -> dict:
    """N POSTs of a 2 KB chat request to a loopback server answering a JSON completion with
    usage, through two httpx2.Client instances in the same process: one plain, one instrumented
    (file ledger, batch durability). Rounds alternate; best round per client, on three clocks:
    the calling thread's CPU time (what the hook costs the caller: the target), the process's
    CPU time (all threads: the ledger's encoder and committer too; the loopback server's
    threads do the same work for both clients) and wall time."""
    import httpx2
    from loopback import Loopback, json_answer
    from statemeter.integrations import httpx as capture

    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-5",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "fine " * 40},
            }
        ],
        "usage": {
            "prompt_tokens": 500,
            "completion_tokens": 40,
            "total_tokens": 540,
            "prompt_tokens_details": {"cached_tokens": 128},
        },
    }
    body = json.dumps(
        {
            "model": "gpt-5",
            "messages": [
                {"role": "user", "content": "The quarterly report shows revenue grew. " * 45}
            ],
        }
    ).encode()
    n = 300 if quick else 1000
    rounds = 3 if quick else 7
    with Loopback() as lb, tempfile.TemporaryDirectory() as tmp:
        lb.route("POST", "/v1/chat/completions", json_answer(answer))
        url = lb.base + "/v1/chat/completions"
        meter = sm.Meter(Path(tmp) / "bench.db")
        session = meter.session("bench")
        plain = httpx2.Client()
        hooked = capture.instrument(httpx2.Client(), session)
        headers = {"content-type": "application/json", "authorization": "Bearer sk-x"}

        def run(client: httpx2.Client) -> tuple[float, float, float]:
            """(thread CPU, process CPU, wall) ns per request; the flush of what the round
            recorded is inside the process figure."""
            c0, p0, w0 = time.thread_time_ns(), time.process_time_ns(), time.perf_counter_ns()
            for _ in range(n):
                client.post(url, content=body, headers=headers).json()
            c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
            meter.flush()
            return (c1 - c0) / n, (time.process_time_ns() - p0) / n, (w1 - w0) / n

        for c in (plain, hooked):  # warm up connections
            run(c)
        inf = float("inf")
        best = {"plain": [inf, inf, inf], "hooked": [inf, inf, inf]}
        for _ in range(rounds):
            for name, client in (("plain", plain), ("hooked", hooked)):
                best[name] = [min(a, b) for a, b in zip(best[name], run(client), strict=True)]
            lb.received.clear()
        plain.close()
        hooked.close()
        meter.flush()
        recorded = len(meter.ledger.events(kind="model_call"))
        meter.close()
    (cpu_plain, proc_plain, wall_plain), (cpu_hooked, proc_hooked, wall_hooked) = (
        best["plain"],
        best["hooked"],
    )
    overhead = wall_hooked / wall_plain - 1
    hook_cpu_us = (cpu_hooked - cpu_plain) / 1000
    return {
        "requests_per_round": n,
        "rounds": rounds,
        "plain_cpu_us": round(cpu_plain / 1000, 1),
        "hooked_cpu_us": round(cpu_hooked / 1000, 1),
        "hook_cpu_us": round(hook_cpu_us, 1),
        "target_hook_cpu_us": 10.0,
        "meets_target": hook_cpu_us <= 10.0,
        "hook_process_cpu_us": round((proc_hooked - proc_plain) / 1000, 1),
        "plain_round_trip_us": round(wall_plain / 1000, 1),
        "hooked_round_trip_us": round(wall_hooked / 1000, 1),
        "hook_cost_us": round((wall_hooked - wall_plain) / 1000, 1),
        "overhead_pct": round(overhead * 100, 2),
        "model_calls_recorded": recorded,
        # Load moves the CPU figures above, not these: the calling thread's instructions per
        # request (callgrind), the instrumented client's minus the plain one's.
        "hook_instructions": _hook_instructions(quick),
        "note": "hook_cpu_us: calling-thread CPU the hook adds per request (time.thread_time_ns); "
        "hook_process_cpu_us: all threads of the process, the ledger writer included",
    }


_HOOK_SERVER = """
import sys, time
sys.path.insert(0, sys.argv[1] + "/tests")
from loopback import Loopback, json_answer
answer = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-5",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine " * 40}}],
          "usage": {"prompt_tokens": 500, "completion_tokens": 40,
                    "prompt_tokens_details": {"cached_tokens": 128}}}
with Loopback() as lb:
    lb.route("POST", "/v1/chat/completions", json_answer(answer))
    print(lb.base, flush=True)
    while sys.stdin.read(1):
        pass
"""

_HOOK_CHILD = """
import json, sys, tempfile
from pathlib import Path
base, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
import httpx2, statemeter as sm
from statemeter.integrations import httpx as capture
body = json.dumps({"model": "gpt-5", "messages": [
    {"role": "user", "content": "The quarterly report shows revenue grew. " * 45}]}).encode()
headers = {"content-type": "application/json", "authorization": "Bearer sk-x"}
with tempfile.TemporaryDirectory() as tmp:
    url = base + "/v1/chat/completions"
    meter = sm.Meter(Path(tmp) / "bench.db")
    client = httpx2.Client()
    if kind == "hooked":
        capture.instrument(client, meter.session("bench"))
    for _ in range(20 + n):
        client.post(url, content=body, headers=headers).json()
    client.close()
    meter.close()
"""


def _hook_instructions(quick: bool) -> float | None:
    """The calling thread's instructions per request that the hook adds (callgrind: the
    difference between runs of two request counts, instrumented minus plain; None without
    valgrind). The loopback server runs in a process of its own, outside valgrind: in the
    client's process its threads take the interpreter lock between the client's steps, which
    moves the client thread's count by thousands of instructions per request from run to run."""
    small, large = (30, 90) if quick else (100, 300)
    server = subprocess.Popen(
        [sys.executable, "-c", _HOOK_SERVER, str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()

        def per_request(kind: str) -> float | None:
            return instructions_per_op(
                lambda n: [sys.executable, "-c", _HOOK_CHILD, base, kind, str(n)], small, large
            )

        plain, hooked = per_request("plain"), per_request("hooked")
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
    if plain is None or hooked is None:
        return None
    return round(hooked - plain)


BENCHES = {"classify_request": bench_classify_request, "httpx_hook": bench_httpx_hook}
