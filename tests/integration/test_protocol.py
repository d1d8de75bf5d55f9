"""The Redis protocol itself: priority, numbering, fencing, requeue, all-or-nothing produce."""

from __future__ import annotations

import json

import pytest
import redis

from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.producer import enqueue
from blpopq.protocol import Protocol, TakenKind
from blpopq.tiers import TIERS, Tier

from ..helpers import prev_hash


@pytest.fixture(autouse=True)
def live_workers(protocol: Protocol) -> None:
    """The workers these tests take as: only a worker holding a lease may take."""
    for worker in ("w:1", "w:old", "w:new"):
        protocol.heartbeat(worker, "join", lease=60)


def request(tier: Tier, n: int, difficulty: int = 1) -> Request:
    return Request(tier, f"c{n}", "mine", prev_hash(n), difficulty, 1, None, "f.txt", n)


def test_blpop_argument_order_is_the_priority_order(protocol: Protocol) -> None:
    """BLPOP checks keys left to right, so the key order is the priority contract."""
    ns = protocol.keys.namespace
    assert protocol.keys.tiers == (f"{{{ns}}}:vip", f"{{{ns}}}:alto", f"{{{ns}}}:comun")
    assert TIERS == (Tier.VIP, Tier.ALTO, Tier.COMUN)


def test_take_pops_highest_tier_first_and_numbers_in_take_order(protocol: Protocol) -> None:
    """Every vip before any alto before any comun; positions follow the take order."""
    reqs = [
        request(Tier.COMUN, 1),
        request(Tier.ALTO, 2),
        request(Tier.VIP, 3),
        request(Tier.VIP, 4),
    ]
    enqueue(protocol, reqs, chunk_size=100)
    taken = [protocol.take("w:1") for _ in range(4)]
    assert protocol.take("w:1") is None
    assert [t.tier for t in taken if t] == [Tier.VIP, Tier.VIP, Tier.ALTO, Tier.COMUN]
    assert [Task.from_json(t.raw).line for t in taken if t] == [3, 4, 2, 1]
    positions = [t.position for t in taken if t]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert protocol.client.hlen(protocol.keys.inflight) == 4


def test_claim_after_blpop_records_the_task_in_flight(protocol: Protocol) -> None:
    """A task BLPOP hands over is numbered and claimed by the same script as a take."""
    enqueue(protocol, [request(Tier.ALTO, 1)], chunk_size=10)
    popped = protocol.block(timeout=1)
    assert popped is not None and popped[0] is Tier.ALTO
    taken = protocol.claim("w:1", *popped)
    assert taken.kind is TakenKind.TASK and taken.tier is Tier.ALTO
    assert taken.key == Task.from_json(taken.raw).id.encode()
    record = json.loads(protocol.client.hget(protocol.keys.inflight, taken.key))
    assert record["position"] == taken.position and record["worker"] == "w:1"


def test_settle_writes_one_result_and_fences_a_repeat(protocol: Protocol) -> None:
    """No duplicate results: a second settle of the same claim is refused."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    taken = protocol.take("w:1")
    assert taken is not None
    task_id = Task.from_json(taken.raw).id
    assert protocol.settle_result(task_id, taken.position, '{"r":1}') is True
    assert protocol.settle_result(task_id, taken.position, '{"r":2}') is False
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b'{"r":1}']
    assert protocol.client.hlen(protocol.keys.inflight) == 0


def test_settle_of_an_older_claim_is_fenced_off(protocol: Protocol) -> None:
    """A stale worker whose task was taken again cannot write over the newer take."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    first = protocol.take("w:old")
    assert first is not None
    task_id = Task.from_json(first.raw).id
    assert protocol.requeue(task_id, first.position, first.tier, first.raw)
    second = protocol.take("w:new")
    assert second is not None and second.position > first.position
    assert protocol.settle_result(task_id, first.position, "stale") is False
    assert protocol.settle_result(task_id, second.position, "fresh") is True
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b"fresh"]


def test_requeue_puts_the_task_back_at_the_head_of_its_tier(protocol: Protocol) -> None:
    """A task given back on stop keeps its place ahead of the rest of its tier."""
    enqueue(protocol, [request(Tier.ALTO, 1), request(Tier.ALTO, 2)], chunk_size=10)
    taken = protocol.take("w:1")
    assert taken is not None
    assert protocol.requeue(Task.from_json(taken.raw).id, taken.position, taken.tier, taken.raw)
    head = protocol.client.lindex(protocol.keys.tier(Tier.ALTO), 0)
    assert head is not None and head == taken.raw
    assert protocol.client.hlen(protocol.keys.inflight) == 0


def test_garbage_is_claimed_under_a_key_of_its_own(protocol: Protocol) -> None:
    """Garbage in a tier list is claimed like a task (so its dead letter is fenced and a
    worker dying on it loses nothing), under a key no task id can be confused with."""
    protocol.client.rpush(protocol.keys.tier(Tier.COMUN), "not json")
    taken = protocol.take("w:1")
    assert taken is not None and taken.kind is TakenKind.UNREADABLE and taken.raw == b"not json"
    assert taken.key == f"~{taken.position}".encode()
    record = json.loads(protocol.client.hget(protocol.keys.inflight, taken.key))
    assert record["task"] == "not json" and record["worker"] == "w:1"


def test_enqueue_chunks_keep_priority_order_across_transactions(protocol: Protocol) -> None:
    """A file larger than one transaction still lands vip first, each tier in file order."""
    reqs = [request(TIERS[n % 3], n) for n in range(1, 31)]
    report = enqueue(protocol, reqs, chunk_size=4)
    assert report.transactions == 8
    for tier in TIERS:
        raws = protocol.client.lrange(protocol.keys.tier(tier), 0, -1)
        lines = [Task.from_json(r).line for r in raws]
        assert lines == [r.line for r in reqs if r.tier is tier]


def test_enqueue_is_all_or_nothing_within_a_transaction(protocol: Protocol) -> None:
    """A transaction that fails leaves none of its tasks behind."""
    vip_key = protocol.keys.tier(Tier.VIP)
    protocol.client.set(vip_key, "a string, so RPUSH onto it fails inside EXEC")
    reqs = [request(Tier.COMUN, 1), request(Tier.VIP, 2)]
    with pytest.raises(redis.ResponseError):
        enqueue(protocol, reqs, chunk_size=10)
    # EXEC would not roll back the failed RPUSH, so blpopq checks the tier keys before the
    # transaction: the comun push of the same chunk must not be visible.
    assert protocol.client.llen(protocol.keys.tier(Tier.COMUN)) == 0


def test_settle_and_take_writes_the_result_and_takes_the_next_in_one_call(
    protocol: Protocol,
) -> None:
    """The one-round-trip path keeps the same fence and the same priority as the two calls."""
    enqueue(protocol, [request(Tier.COMUN, 1), request(Tier.VIP, 2)], chunk_size=10)
    first = protocol.take("w:1")
    assert first is not None and first.tier is Tier.VIP
    first_id = Task.from_json(first.raw).id
    written, second = protocol.settle_and_take("w:1", first_id, first.position, "r1")
    assert written is True and second is not None and second.tier is Tier.COMUN
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b"r1"]
    again, none_left = protocol.settle_and_take("w:1", first_id, first.position, "r1 again")
    assert again is False and none_left is None
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b"r1"]
    assert protocol.client.hlen(protocol.keys.tasks) == 1  # the comun task, still running


def test_settle_and_take_after_the_script_cache_was_flushed(protocol: Protocol) -> None:
    """The hand-packed call (packed.py) meets NOSCRIPT after SCRIPT FLUSH (as after a restart)
    and still writes once and takes once; a new session is packed anew, never the old one."""
    enqueue(protocol, [request(Tier.ALTO, n) for n in range(1, 4)], chunk_size=10)
    first = protocol.take("w:1")
    assert first is not None
    protocol.client.script_flush()
    written, second = protocol.settle_and_take("w:1", first.key, first.position, "r1")
    assert written is True and second is not None
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b"r1"]
    protocol.open_session("w:1")  # as after a reconnect: takes of the old session refused
    written, third = protocol.settle_and_take("w:1", second.key, second.position, "r2")
    assert written is True and third is not None  # the frame follows the session
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b"r1", b"r2"]
