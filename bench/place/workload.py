"""The create stream: random keys, affinity keys from a skewed project list, client-chosen IDs.

Seeded, so every policy sees the same creates in the same order. The random key has the
router's shape (`os.urandom(12).hex()`, 24 hex digits), drawn here because the placement
code takes its randomness from the caller. Project popularity is Zipf-like (weight 1/k^s):
a few hot projects, a long tail; with s = 1 and 20,000 projects the hottest one is about
10% of the affinity creates, the case where affinity alone piles sessions on one node.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

RANDOM, AFFINITY, SESSION = 0, 1, 2
KIND_NAMES = ("random", "affinity", "session")


@dataclass(frozen=True)
class Mix:
    affinity: float = 0.30  # creates with an affinityKey
    session: float = 0.05  # creates with a client-chosen (hashed) sessionId
    projects: int = 20_000
    zipf: float = 1.0

    def label(self) -> str:
        rand = 1 - self.affinity - self.session
        return f"{rand:.0%}/{self.affinity:.0%}/{self.session:.0%}"


class Workload:
    """`next()` -> (kind, key): the key is the random key, the affinity key or the session ID."""

    def __init__(self, mix: Mix, seed: int) -> None:
        self.rng = random.Random(seed)
        self.mix = mix
        self.projects = [f"project-{k}" for k in range(1, mix.projects + 1)]
        self.cumulative = list(accumulate(1 / k**mix.zipf for k in range(1, mix.projects + 1)))
        self.sessions = 0

    def random_key(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

    def next(self) -> tuple[int, str]:
        draw = self.rng.random()
        if draw < self.mix.affinity:
            at = self.rng.random() * self.cumulative[-1]
            return AFFINITY, self.projects[min(bisect(self.cumulative, at), len(self.projects) - 1)]
        if draw < self.mix.affinity + self.mix.session:
            self.sessions += 1
            return SESSION, f"sess-{self.sessions}"
        return RANDOM, self.random_key()
