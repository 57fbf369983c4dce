"""The benchmarks' workload draws (benches/draws.py) equal ``random.Random``'s, call for call,
so a generator using them records the same events as one calling ``random`` directly."""

from __future__ import annotations

import random
import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parent.parent / "benches"
sys.path.insert(0, str(BENCHES))

from draws import Draws, Weighted  # noqa: E402

TABLE = [("a", 60), ("b", 10), ("c", 15), ("d", 15)]


def test_draws_interleaved_equal_random_random() -> None:
    for seed in (0, 7, 8, 12345):
        rng, d = random.Random(seed), Draws(seed)
        weighted = Weighted(TABLE)
        for i in range(20_000):
            step = i % 6
            if step == 0:
                assert d.randint(5, 11) == rng.randint(5, 11)
            elif step == 1:
                assert d.randint(200, 8000) == rng.randint(200, 8000)
            elif step == 2:
                assert weighted.pick(d) == rng.choices(TABLE, weights=[t[-1] for t in TABLE])[0]
            elif step == 3:
                assert d.choice(["x", "y", "z"]) == rng.choice(["x", "y", "z"])
            elif step == 4:
                assert d.random() == rng.random()
            else:
                assert d.randint(2, 9) == rng.randint(2, 9)


def test_a_different_seed_gives_different_draws() -> None:
    a, b = Draws(7), Draws(8)
    assert [a.randint(0, 10**9) for _ in range(5)] != [b.randint(0, 10**9) for _ in range(5)]
