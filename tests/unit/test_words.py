"""Counts and items as blpopq names them in output and logs (issue 11, item 11)."""

from __future__ import annotations

from blpopq.producer import EnqueueReport
from blpopq.tiers import Tier
from blpopq.words import item_name, plural


def test_plural_agrees_with_the_count() -> None:
    assert [plural(n, "request") for n in (0, 1, 2)] == ["0 requests", "1 request", "2 requests"]
    assert plural(1, "result was", "results were") == "1 result was"
    assert plural(3, "result was", "results were") == "3 results were"


def test_an_item_without_an_id_is_never_task_none() -> None:
    assert item_name("b.3") == "task b.3"
    assert item_name(None) == "an item without an id"


def test_the_enqueue_summary_speaks_of_one_request() -> None:
    one = EnqueueReport("B", {Tier.VIP: 1}, ("B.1",), 1)
    assert one.summary() == "enqueued 1 request (vip=1 alto=0 comun=0) batch=B"
    two = EnqueueReport("B", {Tier.VIP: 2}, ("B.1", "B.2"), 1)
    assert two.summary().startswith("enqueued 2 requests ")
