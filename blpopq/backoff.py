"""How long a worker or the supervisor waits before trying again after a failure."""

from __future__ import annotations


class Backoff:
    """Exponential backoff from 0.1 s up to ``cap``."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return float(min(self.cap, 0.1 * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        self.failures = 0
