"""An idle worker starts its task while the claim is on the way (blpopq.early), against a
real Redis: the claim is sent before the run and its reply read after; at most one chunk runs
unconfirmed and a longer run goes on from it, finding what one run finds; a refused claim,
a copy of an open task and an item with no id throw the early run away."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import redis

from blpopq import pow
from blpopq.config import Settings
from blpopq.connection import make_client
from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.producer import enqueue
from blpopq.protocol import Protocol, StaleSession, TakenKind
from blpopq.stopping import StopFlag
from blpopq.tiers import Tier
from blpopq.worker import Worker

from ..helpers import prev_hash, wait_until

WORKER, OTHER = "host:7", "host:8"


@pytest.fixture(autouse=True)
def joined(protocol: Protocol) -> None:
    for worker in (WORKER, OTHER):
        protocol.heartbeat(worker, "join", lease=60)


def counting_worker(settings: Settings, runs: list[Task], chunk: int | None = None) -> Worker:
    """A worker whose runs are recorded in ``runs`` (and whose kernel searches ``chunk``
    nonces between stop checks, when given)."""
    worker = Worker(settings, StopFlag(settings.grace), worker_id=WORKER)
    if chunk is not None:
        worker.kernel = dataclasses.replace(worker.kernel, chunk=chunk)
    run = worker._run

    def recorded(task: Task, *args: Any, **kwargs: Any) -> Any:
        runs.append(task)
        return run(task, *args, **kwargs)

    worker._run = recorded  # type: ignore[method-assign]
    return worker


def popped_by(worker: Worker, protocol: Protocol) -> None:
    worker._popped = protocol.block(timeout=1)
    assert worker._popped is not None


def mine(difficulty: int, n: int = 1) -> Request:
    return Request(Tier.VIP, f"c{n}", "mine", prev_hash(n), difficulty, 1, None, "f.txt", n)


def test_the_claim_is_sent_before_the_run_and_its_reply_read_after(
    settings: Settings, protocol: Protocol
) -> None:
    """Redis is paused for writes: the claim waits there, unanswered, while ``meanwhile``
    runs, so the run cannot have waited for the reply; the reply is read once Redis goes on."""
    enqueue(protocol, [mine(0)], chunk_size=10)
    popped = protocol.block(timeout=1)
    assert popped is not None
    other = make_client(settings.url)
    seen: list[int] = []

    def meanwhile() -> None:
        seen.append(int(other.hlen(protocol.keys.inflight)))  # reads go on while paused
        other.execute_command("CLIENT", "UNPAUSE")

    protocol.open_session(OTHER)
    other.execute_command("CLIENT", "PAUSE", 20_000, "WRITE")
    try:
        taken = protocol.claim(OTHER, *popped, meanwhile=meanwhile)
    finally:
        other.execute_command("CLIENT", "UNPAUSE")
    assert seen == [0], "the claim was answered before the early run began"
    assert taken.kind is TakenKind.TASK and other.hlen(protocol.keys.inflight) == 1
    other.close()


def test_a_run_longer_than_a_chunk_goes_on_from_the_early_one(
    settings: Settings, protocol: Protocol
) -> None:
    """With 16 nonces a chunk, a difficulty-10 task outlasts the early run: it is cut after
    its first chunk, then resumed once the claim is confirmed. The result is what one run
    finds (same nonce, same attempts), with the claim's position and the early start time."""
    request = mine(10, 3)
    expected = pow.mine(request.prev, 10)
    assert expected.blocks[0].nonce >= 16, "pick a task whose answer is beyond one chunk"
    enqueue(protocol, [request], chunk_size=10)
    runs: list[Task] = []
    worker = counting_worker(settings, runs, chunk=16)
    popped_by(worker, protocol)
    taken = worker._take(protocol)
    assert taken is not None and worker._early is not None
    ahead = worker._early.ahead_for(taken)
    assert ahead is not None and ahead.result is None
    assert ahead.task.progress == pow.Progress((), 16, 16)
    outcome = worker._handle(taken)
    result = json.loads(outcome.value)
    assert outcome.kind == "result" and result["position"] == taken.position
    assert (result["nonce"], result["attempts"]) == (expected.blocks[0].nonce, expected.attempts)
    assert result["started_at"] == ahead.started and len(runs) == 2
    assert runs[1].progress == ahead.task.progress


def test_a_task_that_ends_before_the_reply_gets_the_claims_position(
    settings: Settings, protocol: Protocol
) -> None:
    """A short task ends inside the early run: its result is kept, numbered by the claim."""
    enqueue(protocol, [mine(0, 1), mine(0, 2)], chunk_size=10)
    assert protocol.take(OTHER) is not None  # position 1 goes to another worker
    runs: list[Task] = []
    worker = counting_worker(settings, runs)
    popped_by(worker, protocol)
    taken = worker._take(protocol)
    assert taken is not None and taken.position == 2
    result = json.loads(worker._handle(taken).value)
    assert (result["position"], result["status"], result["line"]) == (2, "ok", 2)
    assert result["hash"] == pow.mine(prev_hash(2), 0).blocks[0].hash and len(runs) == 1


def test_a_refused_claim_throws_the_early_run_away(settings: Settings, protocol: Protocol) -> None:
    """A claim from a replaced session is refused: the run begun meanwhile is forgotten,
    nothing is written, and the popped task is kept for the next session to look for."""
    enqueue(protocol, [mine(0)], chunk_size=10)
    runs: list[Task] = []
    worker = counting_worker(settings, runs)
    protocol.open_session(WORKER)
    popped_by(worker, protocol)
    Protocol(make_client(settings.url), settings.keys).open_session(WORKER)  # a newer one
    with pytest.raises(StaleSession):
        worker._take(protocol)
    assert len(runs) == 1 and worker._early is None and worker._popped is not None
    assert protocol.client.hlen(protocol.keys.inflight) == 0
    assert protocol.client.llen(protocol.keys.results) == 0


def test_a_copy_of_an_open_task_is_dead_lettered_not_run(
    settings: Settings, protocol: Protocol
) -> None:
    """The copy ran early (it looked like any task), but its claim says duplicate: the run
    is thrown away and the copy ends as a dead letter, the open task untouched."""
    enqueue(protocol, [mine(0)], chunk_size=10)
    original = protocol.take(OTHER)
    assert original is not None
    protocol.client.rpush(protocol.keys.tier(Tier.VIP), original.raw)
    runs: list[Task] = []
    worker = counting_worker(settings, runs)
    popped_by(worker, protocol)
    taken = worker._take(protocol)
    assert taken is not None and taken.kind is TakenKind.DUPLICATE
    assert worker._handle(taken).kind == "dead" and len(runs) == 1
    assert protocol.client.hexists(protocol.keys.inflight, original.key)


def test_a_task_with_no_id_waits_for_the_id_its_claim_gives(
    settings: Settings, protocol: Protocol
) -> None:
    """A minimal task names no id: its claim draws one (auto.N), so it is not run early."""
    body = {"op": "mine", "client": "bare", "prev": prev_hash(5), "difficulty": 0}
    protocol.client.rpush(protocol.keys.tier(Tier.ALTO), json.dumps(body))
    runs: list[Task] = []
    worker = counting_worker(settings, runs)
    popped_by(worker, protocol)
    taken = worker._take(protocol)
    assert taken is not None and taken.task_id.startswith("auto.")
    result = json.loads(worker._handle(taken).value)
    assert result["id"] == taken.task_id and [t.id for t in runs] == [taken.task_id]


def test_a_flushed_script_cache_keeps_the_early_run_and_claims_once(
    settings: Settings, protocol: Protocol
) -> None:
    """The claim meets NOSCRIPT (Redis restarted or its script cache was flushed between the
    BLPOP and the claim): the claim never ran, so it is loaded and sent again, and the run
    begun meanwhile is kept rather than run a second time. One claim, one result."""
    enqueue(protocol, [mine(0)], chunk_size=10)
    runs: list[Task] = []
    worker = counting_worker(settings, runs)
    popped_by(worker, protocol)
    protocol.client.script_flush()
    taken = worker._take(protocol)
    assert taken is not None and taken.kind is TakenKind.TASK
    outcome = worker._handle(taken)
    assert outcome.kind == "result" and len(runs) == 1
    assert protocol.client.hlen(protocol.keys.inflight) == 1
    assert protocol.settle_result(taken.key, taken.position, outcome.value) is True
    assert protocol.client.llen(protocol.keys.results) == 1


def test_a_redis_frozen_during_the_early_claim_loses_nothing_and_settles_once(
    settings: Settings, protocol: Protocol
) -> None:
    """Attack: Redis freezes (CLIENT PAUSE) while the claim is on the way, past the socket
    timeout. The early run is over and its reply lost; the worker closes that connection,
    and Redis drops the claim with it, unrun. The popped task is kept, so the next session
    finds no claim of it, claims it again and runs it again: one claim, one result."""
    enqueue(protocol, [mine(0)], chunk_size=10)
    impatient = Protocol(make_client(settings.url, socket_timeout=0.2), settings.keys)
    impatient.open_session(WORKER)  # a session first: opening one is a write, paused too
    frozen = impatient.client.client_id()
    runs: list[Task] = []
    worker = counting_worker(settings, runs)
    popped_by(worker, impatient)
    protocol.client.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
    try:
        with pytest.raises(redis.TimeoutError):
            worker._take(impatient)
        wait_until(
            lambda: str(frozen) not in {str(c["id"]) for c in protocol.client.client_list()},
            "Redis to drop the connection that gave up",
        )
    finally:
        protocol.client.execute_command("CLIENT", "UNPAUSE")
    assert len(runs) == 1 and worker._popped is not None and worker._early is None
    assert protocol.client.hlen(protocol.keys.inflight) == 0, "the dropped claim ran"
    worker._reconcile_claims(protocol)
    assert worker._adopted is None and worker._popped is not None
    taken = worker._take(protocol)
    assert taken is not None
    outcome = worker._handle(taken)
    assert outcome.kind == "result" and len(runs) == 2
    assert protocol.settle_result(taken.key, taken.position, outcome.value) is True
    assert protocol.settle_result(taken.key, taken.position, outcome.value) is False
    assert protocol.client.llen(protocol.keys.results) == 1
    assert protocol.client.hlen(protocol.keys.inflight) == 0
    impatient.client.close()
