"""`blpopq cancel BATCH|--all` (issue 11, item 5), against a real Redis: every waiting task of
the batch ends as exactly one `cancelled` result, nothing running or popped is touched, and
the recovery machinery never revives a cancelled task.

The protocol steps are driven directly (no daemon), so each moment is exact; the command
itself runs as the installed CLI.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import redis

from blpopq import cancelling
from blpopq.embedded import RedisServer
from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.outcomes import CANCELLED, FAILED_STATUSES, Result
from blpopq.producer import EnqueueReport, enqueue
from blpopq.protocol import Protocol
from blpopq.recovery import recover
from blpopq.tiers import Tier

from ..helpers import BIN, cli_env, prev_hash, run_cli
from .test_recovery import open_state

LONG = 60.0  # a lease that will not run out during a test


def request(tier: Tier, n: int) -> Request:
    return Request(tier, f"c{n}", "mine", prev_hash(n), 1, 1, None, "f.txt", n)


def produce(protocol: Protocol, *tiers: Tier) -> EnqueueReport:
    return enqueue(protocol, [request(t, n) for n, t in enumerate(tiers, 1)], chunk_size=100)


def results(protocol: Protocol) -> list[Result]:
    return [Result.from_json(r) for r in protocol.client.lrange(protocol.keys.results, 0, -1)]


def reap(protocol: Protocol) -> tuple[int, int]:
    done = recover(protocol, orphan_grace=0.0, max_deaths=3, reaper="test")
    return done.requeued, done.dead_lettered


def cancel_cli(server: RedisServer, namespace: str, *args: str) -> Any:
    return run_cli("blpopq", "cancel", *args, "--redis-url", server.url, "--namespace", namespace)


def test_cancelled_is_a_status_that_is_no_failure() -> None:
    assert CANCELLED == "cancelled" and CANCELLED not in FAILED_STATUSES


def test_a_queued_batch_ends_as_one_cancelled_result_per_task(protocol: Protocol) -> None:
    """One outcome per task: each waiting task gets exactly one result, and every trace of it
    as an open task (list, registration, queued set) is gone in the same step."""
    report = produce(protocol, Tier.COMUN, Tier.VIP, Tier.ALTO, Tier.VIP)
    written_before = int(protocol.client.get(protocol.keys.results_written) or 0)
    assert cancelling.cancel(protocol, report.batch) == 4
    done = results(protocol)
    assert sorted(r.id for r in done) == sorted(report.ids)
    assert {r.status for r in done} == {CANCELLED}
    assert {r.worker for r in done} == {cancelling.CANCEL_WORKER}
    assert all(r.attempts == 0 and r.nonce is None and r.hash is None for r in done)
    assert all(r.batch == report.batch and r.blocks == () for r in done)
    assert [r.position for r in done] == [1, 2, 3, 4]  # numbered by the attention counter
    by_id = {r.id: r for r in done}
    first = by_id[report.ids[0]]
    assert (first.tier, first.client, first.line, first.source) == ("comun", "c1", 1, "f.txt")
    assert int(protocol.client.get(protocol.keys.results_written)) == written_before + 4
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}
    assert cancelling.cancel(protocol, report.batch) == 0  # a second cancel adds nothing
    assert len(results(protocol)) == 4


def test_another_batch_is_untouched(protocol: Protocol) -> None:
    """Its tasks keep their list entries, registrations and sequences byte for byte."""
    mine = produce(protocol, Tier.ALTO, Tier.ALTO)
    other = enqueue(protocol, [request(Tier.ALTO, 7), request(Tier.VIP, 8)], chunk_size=10)
    keys = protocol.keys
    before = {task_id: protocol.client.hget(keys.tasks, task_id) for task_id in other.ids}
    sequences = [protocol.client.zscore(k, i) for k in keys.queued_sets for i in other.ids]
    assert cancelling.cancel(protocol, mine.batch) == 2
    assert open_state(protocol) == {"tasks": 2, "inflight": 0, "queued": 2, "listed": 2}
    assert {i: protocol.client.hget(keys.tasks, i) for i in other.ids} == before
    assert [protocol.client.zscore(k, i) for k in keys.queued_sets for i in other.ids] == sequences
    listed = [raw for k in keys.tiers for raw in protocol.client.lrange(k, 0, -1)]
    assert sorted(listed) == sorted(before.values())
    assert {r.batch for r in results(protocol)} == {mine.batch}


def test_a_running_task_is_not_cancelled_and_its_result_is_its_only_outcome(
    protocol: Protocol,
) -> None:
    report = produce(protocol, Tier.VIP, Tier.VIP)
    assert protocol.heartbeat("w:a", "join", lease=LONG)
    taken = protocol.take("w:a")
    assert taken is not None
    running = Task.from_json(taken.raw).id
    assert cancelling.cancel(protocol, report.batch) == 1
    assert [r.id for r in results(protocol)] == [report.ids[1]]
    assert protocol.settle_result(
        running, taken.position, json.dumps({"id": running, "status": "ok"})
    )
    outcomes = [json.loads(r) for r in protocol.client.lrange(protocol.keys.results, 0, -1)]
    assert [(o["id"], o["status"]) for o in outcomes] == [
        (report.ids[1], CANCELLED),
        (running, "ok"),
    ]
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}


def test_a_task_popped_by_blpop_but_not_claimed_is_not_cancelled(protocol: Protocol) -> None:
    """Its worker claims and runs it a moment later (or the reaper recovers it): cancelling
    it as well would give it two outcomes."""
    report = produce(protocol, Tier.ALTO, Tier.ALTO)
    assert protocol.heartbeat("w:a", "join", lease=LONG)
    popped = protocol.block(timeout=1)
    assert popped is not None
    assert cancelling.cancel(protocol, report.batch) == 1
    assert [r.id for r in results(protocol)] == [report.ids[1]]
    taken = protocol.claim("w:a", *popped)
    assert taken.kind.value == "task" and Task.from_json(taken.raw).id == report.ids[0]
    assert protocol.settle_result(report.ids[0], taken.position, "{}")
    assert protocol.client.llen(protocol.keys.results) == 2
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}


def test_an_orphan_popped_before_the_cancel_is_still_recovered_and_run(protocol: Protocol) -> None:
    """A popped task whose worker died is left to the reaper, which puts it back: it is not
    lost to the cancel, and it ends as one result."""
    report = produce(protocol, Tier.COMUN, Tier.COMUN)
    assert protocol.heartbeat("w:a", "join", lease=LONG)
    assert protocol.block(timeout=1) is not None  # w:a pops task 1 and dies before claiming
    assert cancelling.cancel(protocol, report.batch) == 1
    protocol.heartbeat("w:a", "leave", lease=LONG)
    assert reap(protocol) == (0, 0)  # first sight: suspect
    assert reap(protocol) == (1, 0)
    head = protocol.client.lindex(protocol.keys.tier(Tier.COMUN), 0)
    assert head is not None and json.loads(head)["id"] == report.ids[0]


def test_the_reaper_never_revives_a_cancelled_task(protocol: Protocol) -> None:
    report = produce(protocol, Tier.VIP, Tier.ALTO, Tier.COMUN)
    assert protocol.heartbeat("w:a", "join", lease=LONG)
    assert cancelling.cancel(protocol, report.batch) == 3
    for _ in range(3):
        assert reap(protocol) == (0, 0)
    assert protocol.take("w:a") is None  # nothing to take: every tier is empty
    assert protocol.client.hlen(protocol.keys.suspects) == 0
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}
    assert protocol.client.llen(protocol.keys.dead) == 0
    assert len(results(protocol)) == 3


def test_a_task_put_back_with_progress_is_cancelled_with_what_it_had_done(
    protocol: Protocol,
) -> None:
    """A requeue stores the task anew (with progress) in the list and the registry: the
    cancel matches that JSON and keeps the attempts it spent."""
    report = produce(protocol, Tier.ALTO)
    assert protocol.heartbeat("w:a", "join", lease=LONG)
    taken = protocol.take("w:a")
    assert taken is not None
    body = json.loads(taken.raw)
    body["progress"] = {"blocks": [], "attempts": 12345, "next_nonce": 12345}
    again = json.dumps(body, separators=(",", ":"))
    assert protocol.requeue(report.ids[0], taken.position, Tier.ALTO, again)
    assert cancelling.cancel(protocol, report.batch) == 1
    (only,) = results(protocol)
    assert (only.status, only.attempts) == (CANCELLED, 12345)
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}


def test_a_registration_changed_under_the_cancel_is_left_alone(protocol: Protocol) -> None:
    """The script cancels only the exact task it was given: one taken, finished, or put back
    since the registry was read stays as it is."""
    report = produce(protocol, Tier.VIP)
    (waiting,) = cancelling.find_waiting(protocol, report.batch)[Tier.VIP]
    stale = (
        Tier.VIP,
        waiting.task.id,
        waiting.raw + b" ",
        cancelling.cancelled_result(waiting.task, 0.0).to_json(),
    )
    assert protocol.cancel([stale]) == 0
    assert open_state(protocol) == {"tasks": 1, "inflight": 0, "queued": 1, "listed": 1}


def test_chunks_cancel_a_large_batch_with_retention_kept(protocol: Protocol) -> None:
    report = enqueue(protocol, [request(Tier.COMUN, n) for n in range(1, 251)], chunk_size=100)
    assert cancelling.cancel(protocol, report.batch, keep=100, chunk_size=64) == 250
    assert protocol.client.llen(protocol.keys.results) == 100
    assert int(protocol.client.get(protocol.keys.results_written)) == 250
    assert [r.id for r in results(protocol)] == list(report.ids[150:])  # in list order
    assert open_state(protocol) == {"tasks": 0, "inflight": 0, "queued": 0, "listed": 0}


# --- the command ------------------------------------------------------------------------------


def test_the_cli_prints_the_count_and_exits_0(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    report = produce(protocol, Tier.VIP, Tier.COMUN, Tier.ALTO)
    done = cancel_cli(redis_server, namespace, report.batch)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"cancelled 3 waiting tasks of batch {report.batch}\n"
    assert {r.status for r in results(protocol)} == {CANCELLED}


def test_an_unknown_batch_cancels_0_and_exits_0(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    report = produce(protocol, Tier.VIP)
    done = cancel_cli(redis_server, namespace, "no-such-batch")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "cancelled 0 waiting tasks of batch no-such-batch\n"
    done = cancel_cli(redis_server, namespace, report.batch[:-1] + "*")  # no glob
    assert done.returncode == 0 and done.stdout.startswith("cancelled 0 ")
    assert open_state(protocol)["listed"] == 1


def test_all_cancels_every_batchs_waiting_tasks(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    first = produce(protocol, Tier.VIP, Tier.ALTO)
    second = enqueue(protocol, [request(Tier.COMUN, 5)], chunk_size=10)
    assert protocol.heartbeat("w:a", "join", lease=LONG)
    taken = protocol.take("w:a")  # first batch's vip task runs
    assert taken is not None
    done = cancel_cli(redis_server, namespace, "--all")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "cancelled 2 waiting tasks of every batch\n"
    assert sorted(r.id for r in results(protocol)) == sorted([first.ids[1], *second.ids])
    assert open_state(protocol) == {"tasks": 1, "inflight": 1, "queued": 0, "listed": 0}


def test_batch_or_all_is_required_not_both(redis_server: RedisServer, namespace: str) -> None:
    for args in ((), ("b", "--all")):
        done = cancel_cli(redis_server, namespace, *args)
        assert done.returncode == 2 and "give a BATCH or --all" in done.stderr, done.stderr


def test_a_reader_waiting_on_the_batch_finishes(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    """collect --expect waits for every task of the batch: cancelling them ends its wait."""
    report = produce(protocol, Tier.ALTO, Tier.COMUN)
    target = ["--redis-url", redis_server.url, "--namespace", namespace]
    reader = subprocess.Popen(
        [str(BIN / "blpopq-collect"), "--batch", report.batch, "--expect", "2", "--timeout",
         "60", "--format", "jsonl", "--quiet", *target],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert cancel_cli(redis_server, namespace, report.batch).returncode == 0
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(report.ids)
    assert {r["status"] for r in rows} == {CANCELLED}


def test_nothing_else_is_touched(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    """Workers, sessions, dead letters and other batches' keys are as they were."""
    report = produce(protocol, Tier.VIP)
    produce(protocol, Tier.ALTO)
    assert protocol.heartbeat("w:a", "join", lease=LONG)
    protocol.open_session("w:a")
    watched = [
        protocol.keys.workers,
        protocol.keys.sessions,
        protocol.keys.epochs,
        protocol.keys.tier(Tier.ALTO),
    ]
    before = [client.dump(k) for k in watched]
    assert cancel_cli(redis_server, namespace, report.batch).returncode == 0
    assert [client.dump(k) for k in watched] == before
