"""The recovery protocol step by step: leases, the reaper, orphans, fencing, poison tasks.

These drive the scripts directly (no daemon), so each moment is exact; tests/fault does the
same with real processes killed, stopped and cut off.
"""

from __future__ import annotations

import json

import pytest

from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.outcomes import DeadLetter
from blpopq.producer import enqueue
from blpopq.protocol import DeclaredDead, Protocol
from blpopq.recovery import recover
from blpopq.tiers import Tier

from ..helpers import prev_hash

LONG = 60.0  # a lease that will not run out during a test
EXPIRED = 0.0  # a lease that has run out already


def request(tier: Tier, n: int) -> Request:
    return Request(tier, f"c{n}", "mine", prev_hash(n), 1, 1, None, "f.txt", n)


def open_state(protocol: Protocol) -> dict[str, int]:
    keys, client = protocol.keys, protocol.client
    return {
        "tasks": client.hlen(keys.tasks),
        "inflight": client.hlen(keys.inflight),
        "queued": sum(client.zcard(k) for k in keys.queued_sets),
        "listed": sum(client.llen(k) for k in keys.tiers),
    }


def reap(protocol: Protocol, max_deaths: int = 3) -> tuple[int, int]:
    done = recover(protocol, orphan_grace=0.0, max_deaths=max_deaths, reaper="test")
    return done.requeued, done.dead_lettered


def test_enqueue_registers_every_task_beside_its_list(protocol: Protocol) -> None:
    """Recovery needs to know which tasks are open: registered in the same transaction."""
    enqueue(protocol, [request(Tier.VIP, 1), request(Tier.COMUN, 2)], chunk_size=10)
    assert open_state(protocol) == {"tasks": 2, "inflight": 0, "queued": 2, "listed": 2}


def test_a_dead_workers_claim_goes_back_to_the_head_and_its_late_result_is_fenced(
    protocol: Protocol,
) -> None:
    """No loss and no duplicate: a worker whose lease ran out loses its claim to the reaper."""
    enqueue(protocol, [request(Tier.ALTO, 1), request(Tier.ALTO, 2)], chunk_size=10)
    protocol.heartbeat("w:slow", "join", lease=EXPIRED)
    taken = protocol.take("w:slow")
    assert taken is not None
    task_id = Task.from_json(taken.raw).id
    assert reap(protocol) == (1, 0)
    head = protocol.client.lindex(protocol.keys.tier(Tier.ALTO), 0)
    assert head is not None
    requeued = json.loads(head)
    assert requeued["id"] == task_id and requeued["history"][0]["worker"] == "w:slow"
    assert Task.from_json(head) == Task.from_json(taken.raw)  # same task, one more death
    # The stale worker comes back: its result is refused, its lease is not renewed, and it
    # may not take again.
    assert protocol.settle_result(task_id, taken.position, "late") is False
    assert protocol.heartbeat("w:slow", "beat", lease=LONG) is False
    with pytest.raises(DeclaredDead):
        protocol.take("w:slow")
    assert protocol.client.llen(protocol.keys.results) == 0
    assert open_state(protocol) == {"tasks": 2, "inflight": 0, "queued": 2, "listed": 2}


def test_a_live_worker_is_never_reaped(protocol: Protocol) -> None:
    """A long task is not mistaken for a stall while its worker's lease is renewed."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    protocol.heartbeat("w:busy", "join", lease=LONG)
    taken = protocol.take("w:busy")
    assert taken is not None
    assert reap(protocol) == (0, 0)
    assert protocol.heartbeat("w:busy", "beat", lease=LONG) is True
    assert protocol.settle_result(Task.from_json(taken.raw).id, taken.position, "r") is True
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}


def test_an_orphan_popped_by_blpop_is_recovered_once_its_popper_cannot_hold_it(
    protocol: Protocol,
) -> None:
    """No loss between BLPOP and the claim, and no theft from a worker about to claim."""
    enqueue(protocol, [request(Tier.COMUN, 1), request(Tier.COMUN, 2)], chunk_size=10)
    protocol.heartbeat("w:a", "join", lease=LONG)
    assert protocol.take("w:a") is not None  # w:a runs task 1 ...
    popped = protocol.block(timeout=1)  # ... and BLPOP pops task 2, never to claim it
    assert popped is not None
    assert reap(protocol) == (0, 0)  # first sight: suspect, epochs noted
    assert reap(protocol) == (0, 0)  # w:a is alive and has not begun another take
    assert protocol.take("w:a") is None  # now it has: whatever it popped is claimed or gone
    assert reap(protocol) == (1, 0)
    head = protocol.client.lindex(protocol.keys.tier(Tier.COMUN), 0)
    assert head is not None
    assert json.loads(head)["history"][0]["event"] == "popped but never claimed"
    assert protocol.client.hlen(protocol.keys.suspects) == 0


def test_a_suspect_that_gets_claimed_is_left_alone(protocol: Protocol) -> None:
    """A slow claim is not a lost task: the reaper must not requeue what a live worker holds."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    protocol.heartbeat("w:a", "join", lease=LONG)
    popped = protocol.block(timeout=1)
    assert popped is not None
    assert reap(protocol) == (0, 0)
    taken = protocol.claim("w:a", *popped)
    assert reap(protocol) == (0, 0)
    assert protocol.client.hlen(protocol.keys.suspects) == 0
    assert protocol.settle_result(Task.from_json(taken.raw).id, taken.position, "r")
    assert protocol.client.llen(protocol.keys.results) == 1


def test_requeued_tasks_keep_the_list_in_sequence_order(protocol: Protocol) -> None:
    """A task put back at the head must not make the tasks behind it look popped."""
    reqs = [request(Tier.ALTO, n) for n in range(1, 5)]
    enqueue(protocol, reqs, chunk_size=10)
    protocol.heartbeat("w:a", "join", lease=LONG)
    taken = protocol.take("w:a")
    assert taken is not None
    assert protocol.requeue(Task.from_json(taken.raw).id, taken.position, taken.tier, taken.raw)
    for _ in range(3):
        assert reap(protocol) == (0, 0)
    assert protocol.client.hlen(protocol.keys.suspects) == 0
    raws = protocol.client.lrange(protocol.keys.tier(Tier.ALTO), 0, -1)
    assert [Task.from_json(r).line for r in raws] == [1, 2, 3, 4]


def test_a_task_that_keeps_killing_workers_is_dead_lettered_with_its_history(
    protocol: Protocol,
) -> None:
    """Poison tasks: after max_deaths deaths the task becomes one dead letter, not a loop."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    for death in range(1, 4):
        worker = f"w:{death}"
        protocol.heartbeat(worker, "join", lease=EXPIRED)
        assert protocol.take(worker) is not None
        expected = (1, 0) if death < 3 else (0, 1)
        assert reap(protocol, max_deaths=3) == expected
    letters = [DeadLetter.from_json(r) for r in protocol.client.lrange(protocol.keys.dead, 0, -1)]
    assert len(letters) == 1 and "3 times" in letters[0].reason
    assert [h["worker"] for h in json.loads(letters[0].raw)["history"]] == ["w:1", "w:2", "w:3"]
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}


def test_a_worker_that_leaves_is_reaped_at_once(protocol: Protocol) -> None:
    """The supervisor reports a dead child with 'leave': no waiting for the lease to run out."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    protocol.heartbeat("w:a", "join", lease=LONG)
    assert protocol.take("w:a") is not None
    protocol.heartbeat("w:a", "leave", lease=0)
    assert reap(protocol) == (1, 0)


def test_a_note_about_an_earlier_pop_never_robs_a_later_popper(protocol: Protocol) -> None:
    """No theft: a task noted while one worker held it, then claimed and put back, is judged
    afresh when another worker pops it (found by the fault tests: two results)."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    protocol.heartbeat("w:a", "join", lease=LONG)
    popped = protocol.block(timeout=1)
    assert popped is not None
    assert reap(protocol) == (0, 0)  # noted while w:a holds it
    taken = protocol.claim("w:a", *popped)
    assert protocol.requeue(Task.from_json(taken.raw).id, taken.position, taken.tier, taken.raw)
    protocol.heartbeat("w:a", "leave", lease=0)
    protocol.heartbeat("w:b", "join", lease=LONG)  # w:b was not alive when the note was made
    popped_again = protocol.block(timeout=1)
    assert popped_again is not None
    assert reap(protocol) == (0, 0)  # must not judge w:b's pop by w:a's old note
    assert reap(protocol) == (0, 0)
    retaken = protocol.claim("w:b", *popped_again)
    assert protocol.settle_result(Task.from_json(retaken.raw).id, retaken.position, "once")
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b"once"]


def test_claims_record_tier_names_and_claims_of_0_1_survive_the_upgrade(
    protocol: Protocol,
) -> None:
    """Data formats are a contract: a claim written by 0.1 (a tier index) of a worker that
    died across the upgrade is recovered into its own tier; new claims name their tier."""
    enqueue(protocol, [request(Tier.ALTO, 1), request(Tier.COMUN, 2)], chunk_size=10)
    protocol.heartbeat("w:new", "join", lease=LONG)
    taken = protocol.take("w:new")
    assert taken is not None
    assert json.loads(protocol.client.hget(protocol.keys.inflight, taken.key))["tier"] == "alto"
    protocol.heartbeat("w:old", "join", lease=EXPIRED)
    comun = protocol.take("w:old")
    assert comun is not None and comun.tier is Tier.COMUN
    record = json.loads(protocol.client.hget(protocol.keys.inflight, comun.key))
    record["tier"] = 3  # how 0.1 wrote it
    protocol.client.hset(protocol.keys.inflight, comun.key, json.dumps(record))
    assert reap(protocol) == (1, 0)
    assert protocol.client.llen(protocol.keys.tier(Tier.COMUN)) == 1
    assert Task.from_json(protocol.client.lindex(protocol.keys.tier(Tier.COMUN), 0)).line == 2


def test_a_duplicate_whose_worker_died_is_dead_lettered_without_the_live_id(
    protocol: Protocol,
) -> None:
    """A copy reusing an open task's id, held by a worker that died: its letter names no
    id (a reader waiting on the id must get the live task's outcome), the live task is
    untouched."""
    report = enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    live = protocol.client.lindex(protocol.keys.tier(Tier.VIP), 0)
    copy = json.dumps({**json.loads(live), "client": "thief"})
    protocol.client.lpush(protocol.keys.tier(Tier.VIP), copy)
    protocol.heartbeat("w:old", "join", lease=EXPIRED)
    taken = protocol.take("w:old")
    assert taken is not None and taken.raw == copy.encode()
    assert reap(protocol) == (0, 1)
    [letter] = [json.loads(raw) for raw in protocol.client.lrange(protocol.keys.dead, 0, -1)]
    assert letter["id"] is None and json.loads(letter["raw"])["client"] == "thief"
    assert protocol.client.hexists(protocol.keys.tasks, report.ids[0])
    assert protocol.client.lrange(protocol.keys.tier(Tier.VIP), 0, -1) == [live]


def test_only_a_live_worker_gets_a_session_and_a_worker_declared_dead_takes_nothing(
    protocol: Protocol,
) -> None:
    """The taking scripts read the session alone when it matches (taking.lua, refusal): that
    holds because a session never outlives its worker, nor is opened without one."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    assert protocol.open_session("w:never-joined") == 0
    assert not protocol.client.hexists(protocol.keys.sessions, "w:never-joined")
    with pytest.raises(DeclaredDead):
        protocol.take("w:never-joined")
    protocol.heartbeat("w:gone", "join", lease=EXPIRED)
    assert protocol.open_session("w:gone") == 1
    assert reap(protocol) == (0, 0)  # declared dead: its lease ran out
    assert not protocol.client.hexists(protocol.keys.sessions, "w:gone")
    with pytest.raises(DeclaredDead):
        protocol.take("w:gone")  # with the session it had: no longer there
    assert open_state(protocol) == {"tasks": 1, "inflight": 0, "queued": 1, "listed": 1}
