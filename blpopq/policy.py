"""Fairness policies: which tier a take serves first (pure: parsing, naming and choosing).

``strict`` serves vip, then alto, then comun: exact priority, the default. ``weighted`` draws
the tier order of each take at random by weight (Sidekiq's weighted queues), so every tier
gets a share while the heavier ones still come first most of the time. ``aging`` keeps strict
order until a waiting alto or comun task has waited longer than its tier's limit; such
overdue tasks go first, oldest first (the clock and the choice live in lua/aging.lua, since
only Redis knows when it accepted a task).

Every policy only chooses which tier's head to take: within a tier, list order always holds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from .tiers import TIERS, Tier

#: The policy when none is given.
DEFAULT_POLICY = "strict"


class PolicyError(ValueError):
    """A policy spelled wrongly: the message says what is wrong and how to spell it."""


@dataclass(frozen=True)
class Strict:
    def spec(self) -> str:
        return "strict"


@dataclass(frozen=True)
class Weighted:
    weights: tuple[float, ...]  # one per tier, in TIERS order

    def spec(self) -> str:
        pairs = (f"{t.value}={_number(w)}" for t, w in zip(TIERS, self.weights, strict=True))
        return "weighted:" + ",".join(pairs)

    def order(self, draw: Callable[[], float]) -> tuple[Tier, ...]:
        """The tiers in the order this take tries them: the first drawn with probability
        weight / total, the next among those left likewise (``draw`` is uniform in [0, 1))."""
        left = list(zip(TIERS, self.weights, strict=True))
        chosen: list[Tier] = []
        while left:
            point = draw() * sum(weight for _, weight in left)
            index = 0
            while index < len(left) - 1 and point >= left[index][1]:
                point -= left[index][1]
                index += 1
            chosen.append(left.pop(index)[0])
        return tuple(chosen)


@dataclass(frozen=True)
class Aging:
    limits: tuple[float | None, ...]  # seconds a task of each tier may wait (None: never ages)

    def spec(self) -> str:
        limits = zip(TIERS, self.limits, strict=True)
        pairs = (f"{t.value}={_number(s)}" for t, s in limits if s is not None)
        return "aging:" + ",".join(pairs)


Policy: TypeAlias = Strict | Weighted | Aging

_SPELLING = "use strict, weighted:vip=6,alto=3,comun=1, aging:SECONDS or aging:alto=30,comun=120"


def parse_policy(text: str) -> Policy:
    """A policy from its spelling (the --policy value); PolicyError says what is wrong."""
    name, _, rest = text.strip().partition(":")
    if name == "strict" and not rest:
        return Strict()
    if name == "weighted" and rest:
        weights = _pairs(rest, "weight", allow_vip=True)
        missing = [t.value for t in TIERS if t not in weights]
        if missing:
            raise PolicyError(f"weighted policy {text!r} gives no weight to {', '.join(missing)}")
        return Weighted(tuple(weights[t] for t in TIERS))
    if name == "aging" and rest:
        if "=" not in rest:
            seconds = _positive(rest, f"aging limit {rest!r}")
            return Aging(tuple(None if t is TIERS[0] else seconds for t in TIERS))
        limits = _pairs(rest, "aging limit", allow_vip=False)
        return Aging(tuple(limits.get(t) for t in TIERS))
    raise PolicyError(f"unknown policy {text!r}: {_SPELLING}")


def _pairs(text: str, what: str, allow_vip: bool) -> dict[Tier, float]:
    values: dict[Tier, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        tier = next((t for t in TIERS if t.value == key.strip()), None)
        if not sep or tier is None:
            raise PolicyError(f"{part!r} is not TIER=NUMBER with a tier of vip, alto, comun")
        if tier is TIERS[0] and not allow_vip:
            raise PolicyError("vip never ages: give aging limits for alto and comun only")
        if tier in values:
            raise PolicyError(f"{tier.value} is given twice")
        values[tier] = _positive(value, f"{what} of {tier.value}")
    return values


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PolicyError(f"{what} must be a number, not {text.strip()!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise PolicyError(f"{what} must be a positive number, not {text.strip()!r}")
    return value


def _number(value: float) -> str:
    return f"{value:g}"


class TierOrders:
    """The tier order of each take under a policy. One per worker process, with its own
    random generator (a seed makes a run repeatable; the default seeds from the OS)."""

    def __init__(self, policy: Policy, seed: int | None = None) -> None:
        self.policy = policy
        self._random = random.Random(seed)
        #: Under aging, each tier's limit in seconds (None: never ages); else None.
        self.overdue_after = policy.limits if isinstance(policy, Aging) else None
        self._weighted = policy if isinstance(policy, Weighted) else None  # read per take

    def next(self) -> tuple[Tier, ...]:
        if self._weighted is not None:
            return self._weighted.order(self._random.random)
        return TIERS
