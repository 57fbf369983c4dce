"""Whether this process holds its SQLite lock on a ledger (Linux /proc/locks), for tests."""

from __future__ import annotations

import os
import sys


def holds_shm_lock(ledger: str) -> bool | None:
    """Whether this process holds the lock every open SQLite connection keeps on the ledger's
    ``-shm`` file (Linux ``/proc/locks``; None where that cannot be told)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        inode = os.stat(ledger + "-shm").st_ino
        with open("/proc/locks") as f:
            table = f.read()
    except OSError:
        return None
    for line in table.splitlines():
        f = line.split()
        if len(f) >= 8 and f[1] == "POSIX" and f[4] == str(os.getpid()):
            if f[5].rsplit(":", 1)[-1] == str(inode) and int(f[6]) <= 128:
                if f[7] == "EOF" or int(f[7]) >= 128:
                    return True
    return False
