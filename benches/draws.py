"""Random draws for the benchmarks' workload generators, the same values as the
``random.Random`` methods they stand for, computed without those methods' argument checks and
conversions (which cost more than the meter's own call for each recorded event).

``Draws(seed)`` gives ``randint(a, b)``, ``choice(seq)`` and ``random()`` exactly as
``random.Random(seed)`` does, call for call; ``Weighted(table)`` is ``rng.choices(table,
weights=[row[-1] for row in table])[0]`` with the cumulative weights summed once. The stream
of draws (and so the recorded events) is unchanged: tests/test_bench_draws.py compares them.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any


class Draws:
    """The draws of ``random.Random(seed)``."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.random: Callable[[], float] = rng.random
        self._bits = rng.getrandbits

    def below(self, n: int) -> int:
        """``Random._randbelow(n)``: a uniform int in ``[0, n)`` by rejection sampling of
        ``n.bit_length()`` random bits."""
        bits = self._bits
        k = n.bit_length()
        r = bits(k)
        while r >= n:
            r = bits(k)
        return r

    def randint(self, a: int, b: int) -> int:
        return a + self.below(b - a + 1)

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[self.below(len(seq))]


class Weighted:
    """``rng.choices(table, weights=[row[-1] for row in table])[0]`` for a fixed ``table``."""

    def __init__(self, table: Sequence[Any]) -> None:
        self.table = list(table)
        self.cum = list(accumulate(row[-1] for row in self.table))
        self.total = self.cum[-1] + 0.0
        self.hi = len(self.table) - 1

    def pick(self, draws: Draws) -> Any:
        return self.table[bisect_right(self.cum, draws.random() * self.total, 0, self.hi)]
