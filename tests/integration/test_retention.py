"""Retention of results (--keep-results), readers that survive it, and collect --drain.

The protocol is driven step by step (join, take, settle) so every interleaving of writers,
trims and readers is exact; the CLI tests then check the same promises from the outside.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from blpopq.collector import Outcomes, ResultsMissed, wait_for
from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.outcomes import DeadLetter, Result
from blpopq.producer import enqueue
from blpopq.protocol import Keyspace, Protocol, Taken
from blpopq.runner import run_task
from blpopq.tiers import Tier

from ..helpers import BIN, Daemon, LineReader, cli_env, prev_hash, run_cli, wait_until

WORKER = "w:1"


@pytest.fixture(autouse=True)
def live_worker(protocol: Protocol) -> None:
    """Only a worker holding a lease may take."""
    protocol.heartbeat(WORKER, "join", lease=60)


def produce(protocol: Protocol, count: int) -> list[str]:
    """``count`` vip requests at difficulty 0 (one hash each); their ids in take order."""
    requests = [
        Request(Tier.VIP, f"c{n}", "mine", prev_hash(n), 0, 1, None, "f.txt", n)
        for n in range(1, count + 1)
    ]
    return list(enqueue(protocol, requests, chunk_size=1000).ids)


def result_of(taken: Taken) -> tuple[str, str]:
    """(task id, result JSON) as a worker would write it."""
    task = Task.from_json(taken.raw)
    result = run_task(task, position=taken.position, worker=WORKER, max_attempts=10)
    return task.id, result.to_json()


def listed(protocol: Protocol) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in protocol.client.lrange(protocol.keys.results, 0, -1)]


def written(protocol: Protocol) -> int:
    return int(protocol.client.get(protocol.keys.results_written) or 0)


def process_all(protocol: Protocol, keep: int, after_each: Any = None) -> list[str]:
    """Take and settle every waiting task, alternating the two ways a worker writes a
    result (settle_and_take, settle_result), each with ``keep``; the ids, in order."""
    done: list[str] = []
    taken = protocol.take(WORKER)
    while taken is not None:
        task_id, value = result_of(taken)
        if len(done) % 2:
            settled, taken = protocol.settle_and_take(WORKER, task_id, taken.position, value, keep)
        else:
            settled = protocol.settle_result(task_id, taken.position, value, keep)
            taken = protocol.take(WORKER)
        assert settled
        done.append(task_id)
        if after_each is not None:
            after_each()
    return done


# --- retention in the scripts -------------------------------------------------------------


def test_keep_results_leaves_exactly_the_newest_n(protocol: Protocol) -> None:
    """10 results with keep=3: the list holds the last 3 written, in order, no duplicates;
    the counter says 10 were written, and every task is closed."""
    ids = produce(protocol, 10)
    done = process_all(protocol, keep=3)
    assert done == ids
    assert [r["id"] for r in listed(protocol)] == ids[-3:]
    assert written(protocol) == 10
    assert protocol.client.hlen(protocol.keys.inflight) == 0
    assert protocol.client.hlen(protocol.keys.tasks) == 0


def test_keep_zero_keeps_every_result(protocol: Protocol) -> None:
    ids = produce(protocol, 6)
    process_all(protocol, keep=0)
    assert [r["id"] for r in listed(protocol)] == ids
    assert written(protocol) == 6


def test_a_fenced_write_neither_adds_a_result_nor_trims(protocol: Protocol) -> None:
    """Fencing is unchanged: a repeated settle and a stale claim's settle are refused, by
    both scripts, and a refused write with a smaller keep does not trim the list."""
    ids = produce(protocol, 5)
    first = protocol.take(WORKER)
    assert first is not None
    first_id, first_value = result_of(first)
    assert protocol.settle_result(first_id, first.position, first_value, keep=3)
    # A repeat of a settle that was written (a retry after a lost reply): refused.
    assert not protocol.settle_result(first_id, first.position, first_value, keep=1)
    settled, second = protocol.settle_and_take(WORKER, first_id, first.position, "again", 1)
    assert settled is False and second is not None
    # A stale claim: the task went back and was taken again under a newer position.
    second_id, second_value = result_of(second)
    assert protocol.requeue(second_id, second.position, Tier.VIP, second.raw)
    retaken = protocol.take(WORKER)
    assert retaken is not None and retaken.position > second.position
    assert Task.from_json(retaken.raw).id == second_id
    assert not protocol.settle_result(second_id, second.position, second_value, keep=1)
    settled, _ = protocol.settle_and_take(WORKER, second_id, second.position, second_value, 1)
    assert settled is False
    # Only the one real write happened: nothing was trimmed, nothing counted twice.
    assert [r["id"] for r in listed(protocol)] == [first_id]
    assert written(protocol) == 1
    # The newer claim still settles, exactly once.
    assert protocol.settle_result(second_id, retaken.position, result_of(retaken)[1], keep=3)
    assert [r["id"] for r in listed(protocol)] == [first_id, second_id]
    assert written(protocol) == 2 and ids[:2] == [first_id, second_id]


def test_results_written_before_the_counter_existed_keep_their_indexes(
    protocol: Protocol,
) -> None:
    """A list filled before retention existed (no counter): the first counted write starts
    the counter at the list's length, so readers' indexes and trims stay exact."""
    keys = protocol.keys
    for n in range(4):
        protocol.client.rpush(keys.results, f"old{n}")
    assert protocol.read_results(None) == (0, ["old0", "old1", "old2", "old3"])
    ids = produce(protocol, 2)
    process_all(protocol, keep=3)
    assert written(protocol) == 6
    start, items = protocol.read_results(2)
    assert start == 3 and items[0] == "old3"  # 0..2 were trimmed
    assert [json.loads(raw)["id"] for raw in items[1:]] == ids
    assert protocol.discard_results(5) == 2  # 3 and 4; 5 stays
    assert protocol.read_results(None)[0] == 5


def test_discard_of_an_uncounted_list_starts_the_counter(protocol: Protocol) -> None:
    """A drain of results pushed without counting (other code) must not shift the indexes of
    what stays, nor of what comes next."""
    keys = protocol.keys
    for n in range(3):
        protocol.client.rpush(keys.results, f"r{n}")
    assert protocol.discard_results(2) == 2
    assert protocol.read_results(2) == (2, ["r2"])
    produce(protocol, 1)
    process_all(protocol, keep=0)
    start, items = protocol.read_results(3)
    assert start == 3 and json.loads(items[0])["position"] > 0


# --- readers ------------------------------------------------------------------------------


def test_a_reader_keeping_up_sees_every_result_while_the_list_is_trimmed(
    protocol: Protocol,
) -> None:
    """Reading between writes (never more than keep=3 behind), by index: all 10 results,
    each once, in order, though the list never holds more than 3."""
    outcomes = Outcomes()
    outcomes.refresh(protocol)
    ids = produce(protocol, 10)
    process_all(protocol, keep=3, after_each=lambda: outcomes.refresh(protocol))
    assert [r.id for r in outcomes.results] == ids
    assert outcomes.missed == 0
    assert protocol.length(protocol.keys.results) == 3


def test_wait_for_in_another_thread_sees_all_while_trimming(
    protocol: Protocol, redis_server: RedisServer
) -> None:
    """wait_for on its own connection, concurrently with writes that trim to 3: the writer
    never gets more than 3 results ahead of the reader (the normal case: a reader keeping
    up), and the reader ends with all 10, none missed."""
    ids = produce(protocol, 10)
    outcomes = Outcomes()
    reader_protocol = Protocol(make_client(redis_server.url), protocol.keys)
    outcomes.refresh(reader_protocol)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            wait_for(reader_protocol, outcomes, 10, timeout=60)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()

    def let_the_reader_catch_up() -> None:
        target = written(protocol) - 2  # stay within the window of 3
        wait_until(lambda: outcomes.count >= target or bool(errors), "the reader to catch up")

    process_all(protocol, keep=3, after_each=let_the_reader_catch_up)
    reader.join(60)
    assert not reader.is_alive() and not errors, errors
    assert sorted(r.id for r in outcomes.results) == sorted(ids)
    assert len(outcomes.results) == 10 and outcomes.missed == 0
    reader_protocol.client.close()


def test_a_reader_that_falls_behind_the_window_knows_it(protocol: Protocol) -> None:
    """Results trimmed before a reader got to them are counted as missed, and a wait that
    may need them ends with ResultsMissed (a WaitTimeout) instead of waiting forever."""
    outcomes = Outcomes()
    outcomes.refresh(protocol)
    ids = produce(protocol, 5)
    process_all(protocol, keep=3)
    outcomes.refresh(protocol)
    assert [r.id for r in outcomes.results] == ids[2:]
    assert outcomes.missed == 2
    with pytest.raises(ResultsMissed, match="2 results were removed"):
        wait_for(protocol, Outcomes(missed=2), 5, timeout=None)
    # A reader that has what it waits for is done, whatever it missed.
    wait_for(protocol, outcomes, 3, timeout=None)


def test_a_new_reader_starts_at_the_head_and_misses_nothing(protocol: Protocol) -> None:
    """What was trimmed before a reader began is not a gap in its view: it reads from the
    head (the retention window), as `collect` does."""
    ids = produce(protocol, 6)
    process_all(protocol, keep=2)
    outcomes = Outcomes()
    outcomes.refresh(protocol)
    assert [r.id for r in outcomes.results] == ids[-2:]
    assert outcomes.missed == 0


def test_discard_read_removes_only_what_was_read(protocol: Protocol) -> None:
    """The drain step removes what the reader read, not what arrived after its read."""
    produce(protocol, 5)
    taken = protocol.take(WORKER)
    for _ in range(3):
        assert taken is not None
        task_id, value = result_of(taken)
        _, taken = protocol.settle_and_take(WORKER, task_id, taken.position, value, 0)
    outcomes = Outcomes()
    outcomes.refresh(protocol)
    assert len(outcomes.results) == 3
    assert taken is not None
    task_id, value = result_of(taken)
    assert protocol.settle_result(task_id, taken.position, value)  # arrives after the read
    assert outcomes.discard_read(protocol) == 3
    assert [r["id"] for r in listed(protocol)] == [task_id]
    assert outcomes.discard_read(protocol) == 0  # repeating it is harmless
    outcomes.refresh(protocol)
    assert [r.id for r in outcomes.results][-1] == task_id and outcomes.missed == 0


# --- the commands -------------------------------------------------------------------------


def target(server: RedisServer, namespace: str) -> list[str]:
    return ["--redis-url", server.url, "--namespace", namespace]


def instruction_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "requests.txt"
    path.write_text("".join(f"vip c{n} mine {prev_hash(n)} 0\n" for n in range(count)))
    return path


def test_daemon_with_keep_results_keeps_the_newest_n(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """blpopq-daemon --keep-results 3 (one worker, so write order is position order): after
    10 tasks, the 3 highest positions remain; every task was served once."""
    keys = Keyspace(namespace)
    done = run_cli(
        "blpopq-produce", str(instruction_file(tmp_path, 10)), *target(redis_server, namespace)
    )
    assert done.returncode == 0, done.stderr
    with Daemon(
        "--workers", "1", "--block-timeout", "0.5", "--keep-results", "3",
        *target(redis_server, namespace),
    ) as daemon:  # fmt: skip
        daemon.wait_ready()
        wait_until(lambda: int(client.get(keys.results_written) or 0) >= 10, "10 results", daemon)
        assert daemon.stop() == 0, daemon.log
    kept = [json.loads(raw) for raw in client.lrange(keys.results, 0, -1)]
    assert [r["position"] for r in kept] == [8, 9, 10]
    assert int(client.get(keys.results_written) or 0) == 10
    assert client.hlen(keys.tasks) == 0 and client.hlen(keys.inflight) == 0


def test_keep_results_from_the_environment_and_refused_when_negative(
    redis_server: RedisServer, namespace: str
) -> None:
    done = run_cli(
        "blpopq-daemon", "--keep-results", "-1", *target(redis_server, namespace), timeout=30
    )
    assert done.returncode == 2 and "keep results" in done.stderr
    env = cli_env(BLPOPQ_KEEP_RESULTS="x")
    done = run_cli("blpopq-daemon", *target(redis_server, namespace), env=env, timeout=30)
    assert done.returncode == 2 and "BLPOPQ_KEEP_RESULTS" in done.stderr


def test_run_with_keep_results_prints_every_result(namespace: str, tmp_path: Path) -> None:
    """blpopq run --keep-results N (N at least the batch): the whole batch, exit 0."""
    done = run_cli(
        "blpopq", "run", str(instruction_file(tmp_path, 12)), "--workers", "2",
        "--keep-results", "20", "--format", "jsonl", "--timeout", "60", "--namespace", namespace,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["line"] for line in done.stdout.splitlines()) == list(
        range(1, 13)
    )


def test_collect_drain_expect_prints_n_and_leaves_the_list_empty(
    protocol: Protocol, redis_server: RedisServer, namespace: str
) -> None:
    ids = produce(protocol, 7)
    process_all(protocol, keep=0)
    args = ["--drain", "--expect", "7", "--timeout", "30", "--format", "jsonl"]
    done = run_cli("blpopq-collect", *args, *target(redis_server, namespace))
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["id"] for line in done.stdout.splitlines()) == sorted(ids)
    assert protocol.length(protocol.keys.results) == 0
    assert written(protocol) == 7
    again = run_cli(
        "blpopq-collect", "--drain", "--format", "jsonl", *target(redis_server, namespace)
    )
    assert again.returncode == 0 and again.stdout == ""


def test_collect_drain_refuses_a_batch(redis_server: RedisServer, namespace: str) -> None:
    args = ["--drain", "--batch", "b1", *target(redis_server, namespace)]
    done = run_cli("blpopq-collect", *args)
    assert done.returncode == 2 and "--batch" in done.stderr


def test_collect_drain_follow_takes_results_as_they_arrive(
    protocol: Protocol, redis_server: RedisServer, namespace: str
) -> None:
    """--follow --drain prints each result once and removes it once printed; a result that
    arrives later is printed and removed in its turn."""
    follower = subprocess.Popen(
        [str(BIN / "blpopq-collect"), "--follow", "--drain", "--format", "jsonl",
         *target(redis_server, namespace)],
        env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        reader = LineReader(follower)
        ids = produce(protocol, 4)
        taken = protocol.take(WORKER)
        printed: list[str] = []
        for n in range(4):
            assert taken is not None
            task_id, value = result_of(taken)
            _, taken = protocol.settle_and_take(WORKER, task_id, taken.position, value, 0)
            printed.append(json.loads(reader.get())["id"])
            assert printed[-1] == ids[n]
            wait_until(lambda: protocol.length(protocol.keys.results) == 0, "the drain")
        follower.send_signal(signal.SIGINT)
        assert follower.wait(30) == 0
        assert reader.rest() == [] and printed == ids
    finally:
        if follower.poll() is None:
            follower.kill()


def test_wait_for_counts_dead_letters_beside_drained_results(protocol: Protocol) -> None:
    """Dead letters are read as before: a drain leaves the dead list alone."""
    protocol.dead_letter_unclaimed(DeadLetter("r", "x", None, None, "vip", WORKER, 1.0).to_json())
    produce(protocol, 2)
    process_all(protocol, keep=1)
    outcomes = Outcomes()
    wait_for(protocol, outcomes, 2, timeout=10)
    assert (len(outcomes.results), len(outcomes.dead)) == (1, 1)
    outcomes.discard_read(protocol)
    assert protocol.length(protocol.keys.dead) == 1
    assert isinstance(outcomes.results[0], Result)


def test_status_counts_trimmed_results_as_served(protocol: Protocol) -> None:
    """With retention the list keeps N, but status still counts every result ever written."""
    from blpopq.status import gather

    produce(protocol, 5)
    process_all(protocol, keep=2)
    status = gather(protocol)
    assert (status.results, status.served) == (2, 5)
