"""records.taken_from_reply without Redis: every reply a taking script gives (taking.lua)."""

from __future__ import annotations

import pytest

from blpopq.records import DeclaredDead, StaleSession, Taken, TakenKind, taken_from_reply
from blpopq.tiers import TIERS, Tier


@pytest.mark.parametrize("kind", list(TakenKind))
def test_a_taken_reply_in_bytes_or_text_gives_the_same_taken(kind: TakenKind) -> None:
    as_bytes = [b"taken", 2, b"{}", 7, b"k.1", kind.value.encode()]
    as_text = ["taken", "2", b"{}", "7", b"k.1", kind.value]
    expected = Taken(Tier.ALTO, b"{}", 7, b"k.1", kind)
    assert taken_from_reply(as_bytes) == expected
    assert taken_from_reply(as_text) == expected
    assert taken_from_reply(as_bytes).kind is kind  # the member itself, not an equal str


def test_the_tier_index_counts_in_the_order_the_take_was_given() -> None:
    order = (Tier.COMUN, Tier.VIP, Tier.ALTO)
    taken = taken_from_reply([b"taken", 1, b"{}", 3, b"k", b"task"], order)
    assert taken is not None and taken.tier is Tier.COMUN
    assert taken_from_reply([b"taken", 3, b"{}", 3, b"k", b"task"], TIERS).tier is Tier.COMUN  # type: ignore[union-attr]


def test_empty_dead_and_stale_replies() -> None:
    assert taken_from_reply([b"empty"]) is None
    with pytest.raises(DeclaredDead):
        taken_from_reply([b"dead"])
    with pytest.raises(StaleSession):
        taken_from_reply([b"stale"])


def test_a_kind_no_script_replies_with_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError):
        taken_from_reply([b"taken", 1, b"{}", 3, b"k", b"something"])
