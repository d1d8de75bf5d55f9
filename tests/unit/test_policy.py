"""Fairness policies, pure: spelling, canonical names, and the weighted draw's shares."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blpopq.policy import (
    Aging,
    PolicyError,
    Strict,
    TierOrders,
    Weighted,
    parse_policy,
)
from blpopq.tiers import TIERS, Tier


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("strict", Strict()),
        ("weighted:vip=6,alto=3,comun=1", Weighted((6.0, 3.0, 1.0))),
        ("weighted:comun=1,vip=6,alto=3", Weighted((6.0, 3.0, 1.0))),
        ("weighted:vip=0.5,alto=0.25,comun=0.25", Weighted((0.5, 0.25, 0.25))),
        ("aging:30", Aging((None, 30.0, 30.0))),
        ("aging:alto=30,comun=120", Aging((None, 30.0, 120.0))),
        ("aging:comun=0.5", Aging((None, None, 0.5))),
    ],
)
def test_policies_parse(text: str, policy: object) -> None:
    assert parse_policy(text) == policy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fair", "unknown policy 'fair'"),
        ("strict:1", "unknown policy"),
        ("weighted", "unknown policy"),
        ("weighted:vip=6,alto=3", "gives no weight to comun"),
        ("weighted:vip=6,alto=3,comun=0", "weight of comun must be a positive number"),
        ("weighted:vip=6,alto=x,comun=1", "weight of alto must be a number"),
        ("weighted:vip=6,vip=3,alto=1,comun=1", "vip is given twice"),
        ("weighted:gold=1", "'gold=1' is not TIER=NUMBER"),
        ("aging:vip=10", "vip never ages"),
        ("aging:-5", "must be a positive number"),
        ("aging:inf", "must be a positive number"),
        ("aging:nan", "must be a positive number"),
    ],
)
def test_bad_policies_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


weights = st.floats(min_value=0.001, max_value=1e6, allow_nan=False)
limits = st.one_of(st.none(), st.floats(min_value=0.001, max_value=1e6, allow_nan=False))


@given(st.tuples(weights, weights, weights))
def test_weighted_spec_reads_back_as_the_same_policy(ws: tuple[float, float, float]) -> None:
    policy = Weighted(tuple(float(f"{w:g}") for w in ws))
    assert parse_policy(policy.spec()) == policy


@given(limits, limits)
def test_aging_spec_reads_back_as_the_same_policy(alto: float | None, comun: float | None) -> None:
    if alto is None and comun is None:
        return
    policy = Aging((None, *(None if s is None else float(f"{s:g}") for s in (alto, comun))))
    assert parse_policy(policy.spec()) == policy


@given(st.tuples(weights, weights, weights), st.randoms(use_true_random=False))
def test_every_weighted_draw_is_an_order_of_all_tiers(
    ws: tuple[float, float, float], rng: random.Random
) -> None:
    order = Weighted(ws).order(rng.random)
    assert sorted(order) == sorted(TIERS) and len(order) == 3


def test_weighted_first_places_follow_the_weights() -> None:
    """6:3:1 gives vip the first try 60 % of the time, alto 30 %, comun 10 % (fixed seed;
    10,000 draws: one standard deviation is under 0.5 %, the bound 1.5 %)."""
    orders = TierOrders(parse_policy("weighted:vip=6,alto=3,comun=1"), seed=20261202)
    firsts = Counter(orders.next()[0] for _ in range(10_000))
    shares = {tier: firsts[tier] / 10_000 for tier in TIERS}
    for tier, expected in zip(TIERS, (0.6, 0.3, 0.1), strict=True):
        assert abs(shares[tier] - expected) < 0.015, shares


def test_second_place_is_drawn_among_the_tiers_left() -> None:
    """With vip drawn first, alto comes second 3 times in 4 (3 / (3 + 1))."""
    orders = TierOrders(parse_policy("weighted:vip=6,alto=3,comun=1"), seed=7)
    seconds = Counter(o[1] for o in (orders.next() for _ in range(20_000)) if o[0] is Tier.VIP)
    share = seconds[Tier.ALTO] / sum(seconds.values())
    assert abs(share - 0.75) < 0.02


def test_strict_and_aging_take_in_priority_order() -> None:
    for text in ("strict", "aging:30"):
        assert TierOrders(parse_policy(text)).next() == TIERS
