"""Records in a parent, forks with ``os.fork()``, records in the child and lets the child end
through a normal interpreter exit (whose flush must write the child's events, not hang).

    python fork_child.py LEDGER DURABILITY

Prints ``done`` when the child ended on its own within the deadline, ``hang`` otherwise.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import statemeter as sm

warnings.simplefilter("ignore", DeprecationWarning)  # "use of fork() may lead to deadlocks"
meter = sm.Meter(sys.argv[1], durability=sys.argv[2])
with meter.session("parent", session_id="parent") as s:
    s.tool_call("search")
meter.flush()
pid = os.fork()
if pid == 0:
    with meter.session("child", session_id="child") as s:
        for i in range(200):
            s.tool_call("search", attrs={"i": i})
    sys.exit(0)  # no flush: the interpreter's exit flushes
deadline = time.monotonic() + 120
while os.waitpid(pid, os.WNOHANG) == (0, 0):
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        print("hang", flush=True)
        sys.exit(3)
    time.sleep(0.05)
with meter.session("parent-after", session_id="parent-after") as s:
    s.tool_call("search")
meter.close()
print("done", flush=True)
