"""The three client tiers and their priority order.

The order of ``TIERS`` *is* the priority contract: BLPOP is given the tier
lists in this order, and Redis checks keys left to right.
"""

from __future__ import annotations

from enum import Enum


class Tier(str, Enum):
    VIP = "vip"
    ALTO = "alto"
    COMUN = "comun"


#: Highest priority first. Everything that orders work by tier reads this tuple.
TIERS: tuple[Tier, ...] = (Tier.VIP, Tier.ALTO, Tier.COMUN)

_ALIASES = {"común": Tier.COMUN}


def parse_tier(text: str) -> Tier:
    """Return the tier named by ``text`` (case-insensitive; ``común`` means ``comun``).

    Raises ValueError with a readable message for anything else.
    """
    key = text.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return Tier(key)
    except ValueError:
        names = ", ".join(t.value for t in TIERS)
        raise ValueError(f"unknown tier {text!r}: expected one of {names}") from None
