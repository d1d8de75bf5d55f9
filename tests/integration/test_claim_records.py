"""What a claim record holds, and that records of every format it ever had still settle.

Since 0.2 a claim of a registered task names it instead of copying it in (taking.lua,
claim_record): Redis no longer decodes the task to find its id, nor encodes it into the
record, nor decodes the record to fence a settle (bench_take_cpu.py measures the saving).
The task is then ``{ns}:tasks[id]``, byte for byte. These drive the scripts directly.
"""

from __future__ import annotations

import json

from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.producer import enqueue
from blpopq.protocol import Protocol
from blpopq.records import Claim, TakenKind
from blpopq.tiers import Tier

from ..helpers import prev_hash
from .test_recovery import EXPIRED, LONG, open_state, reap


def request(n: int, tier: Tier = Tier.ALTO) -> Request:
    return Request(tier, f"c{n}", "mine", prev_hash(n), 1, 1, None, "f.txt", n)


def record_of(protocol: Protocol, key: bytes) -> bytes:
    record = protocol.client.hget(protocol.keys.inflight, key)
    assert isinstance(record, bytes)
    return record


def as_written_by_0_1(protocol: Protocol, key: bytes, task: bytes) -> bytes:
    """Rewrite a claim the way 0.1 wrote every claim: cjson's own key order (here the
    position last: a fence must decode it), the task copied in, the tier as an index."""
    claim = json.loads(record_of(protocol, key))
    index = {"vip": 1, "alto": 2, "comun": 3}[claim["tier"]]
    old = {"task": task.decode(), "tier": index, "worker": claim["worker"]}
    record = json.dumps({**old, "position": claim["position"]}).encode()
    protocol.client.hset(protocol.keys.inflight, key, record)
    return record


def test_a_registered_tasks_claim_names_it_and_a_raw_pushs_claim_copies_it(
    protocol: Protocol,
) -> None:
    enqueue(protocol, [request(1)], chunk_size=10)
    raw = {"client": "other", "op": "mine", "prev": prev_hash(2), "difficulty": 1}
    protocol.client.rpush(protocol.keys.tier(Tier.ALTO), json.dumps(raw))
    protocol.heartbeat("w:1", "join", lease=LONG)
    registered, pushed = protocol.take("w:1"), protocol.take("w:1")
    assert registered is not None and pushed is not None
    assert record_of(protocol, registered.key) == (
        b'{"position":%d,"worker":"w:1","tier":"alto"}' % registered.position
    )
    assert protocol.client.hget(protocol.keys.tasks, registered.key) == registered.raw
    copied = json.loads(record_of(protocol, pushed.key))
    assert copied["task"].encode() == pushed.raw and pushed.key.startswith(b"auto.")
    # Readers find the task either way.
    mine = dict(protocol.claims_of("w:1"))
    assert mine[registered.key].task == registered.raw and mine[pushed.key].task == pushed.raw


def test_claims_written_before_the_compact_record_fence_settle_and_recover(
    protocol: Protocol,
) -> None:
    """Data formats are a contract: claims in flight across the upgrade, written by 0.1,
    are fenced by position, settled once, and recovered with their task."""
    enqueue(protocol, [request(1), request(2), request(3)], chunk_size=10)
    protocol.heartbeat("w:live", "join", lease=LONG)
    settled = protocol.take("w:live")
    assert settled is not None
    as_written_by_0_1(protocol, settled.key, settled.raw)
    assert [c.task for _, c in protocol.claims_of("w:live")] == [settled.raw]
    assert not protocol.settle_result(settled.key, settled.position + 1, "stale")
    assert protocol.settle_result(settled.key, settled.position, "once")
    assert not protocol.settle_result(settled.key, settled.position, "again")
    protocol.heartbeat("w:old", "join", lease=EXPIRED)
    died = protocol.take("w:old")
    assert died is not None
    as_written_by_0_1(protocol, died.key, died.raw)
    assert reap(protocol) == (1, 0)
    head = protocol.client.lindex(protocol.keys.tier(Tier.ALTO), 0)
    assert Task.from_json(head).id == Task.from_json(died.raw).id
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b"once"]


def test_a_compact_claim_of_a_dead_worker_is_requeued_with_its_registered_task(
    protocol: Protocol,
) -> None:
    enqueue(protocol, [request(1, Tier.VIP)], chunk_size=10)
    protocol.heartbeat("w:old", "join", lease=EXPIRED)
    taken = protocol.take("w:old")
    assert taken is not None and b'"task"' not in record_of(protocol, taken.key)
    assert reap(protocol) == (1, 0)
    head = protocol.client.lindex(protocol.keys.tier(Tier.VIP), 0)
    assert json.loads(head)["history"][0]["worker"] == "w:old"
    assert open_state(protocol) == {"tasks": 1, "inflight": 0, "queued": 1, "listed": 1}


def test_an_id_read_without_a_decode_is_the_id_a_decode_finds(protocol: Protocol) -> None:
    """take.lua reads the id of {"v":N,"id":"X"... without a decode only when the item is
    X's registration byte for byte; anything else is decoded: a second "id" key (JSON's
    last one wins), a byte-for-byte copy of a claimed task (a duplicate), an escaped id."""
    report = enqueue(protocol, [request(1)], chunk_size=10)
    registered = protocol.client.hget(protocol.keys.tasks, report.ids[0])
    assert isinstance(registered, bytes)
    tier = protocol.keys.tier(Tier.ALTO)
    twice = registered[:-1] + b',"id":"second"}'
    escaped = b'{"v":1,"id":"e\\u0073c","client":"x","op":"mine","prev":"%s","difficulty":1}'
    protocol.client.rpush(tier, twice, registered, escaped % prev_hash(3).encode())
    protocol.heartbeat("w:1", "join", lease=LONG)
    taken = [protocol.take("w:1") for _ in range(4)]
    assert [t.key if t else None for t in taken[:2]] == [report.ids[0].encode(), b"second"]
    assert taken[1] is not None and b'"task"' in record_of(protocol, b"second")
    assert taken[2] is not None and taken[2].kind is TakenKind.DUPLICATE
    assert taken[3] is not None and taken[3].key == b"esc"
    assert Claim.from_json(record_of(protocol, b"esc")).task == taken[3].raw


def test_a_compact_claim_whose_registration_was_removed_becomes_one_dead_letter(
    protocol: Protocol,
) -> None:
    """Attack: the registration a compact claim names is deleted (an operator's HDEL, a
    foreign client) and the worker dies: the reaper cannot requeue a task it cannot read, so
    the claim becomes exactly one dead letter that keeps the record; nothing stops."""
    enqueue(protocol, [request(1)], chunk_size=10)
    protocol.heartbeat("w:old", "join", lease=EXPIRED)
    taken = protocol.take("w:old")
    assert taken is not None
    record = record_of(protocol, taken.key)
    protocol.client.hdel(protocol.keys.tasks, taken.key)
    assert reap(protocol) == (0, 1)
    assert reap(protocol) == (0, 0)  # once
    [letter] = [json.loads(raw) for raw in protocol.client.lrange(protocol.keys.dead, 0, -1)]
    assert letter["id"] == taken.key.decode() and letter["raw"] == record.decode()
    assert "neither in it nor registered" in letter["reason"]
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}
