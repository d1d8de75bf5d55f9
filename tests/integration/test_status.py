"""`blpopq status`: what it reads from a real Redis, and its pure building and rendering.

The Redis tests set up each state exactly through the protocol (enqueue with a known
enqueued_at, heartbeat + take for a claim, settle for results, dead letters) and check the
figures against it; the CLI tests run the installed console scripts as a user would.
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
import redis

from blpopq.embedded import RedisServer
from blpopq.instructions import Request
from blpopq.outcomes import DeadLetter, Result
from blpopq.producer import build_tasks, chunks
from blpopq.protocol import Protocol, Snapshot
from blpopq.status import build, duration, gather, render_table, to_json
from blpopq.tiers import TIERS, Tier

from ..helpers import BIN, Daemon, cli_env, prev_hash, run_cli

STABLE_KEYS = {
    "namespace", "time", "queued", "tiers", "in_flight", "workers_alive", "workers", "results",
    "results_written", "dead_letters", "served", "open_tasks", "recent", "hosts", "policy",
}  # fmt: skip
NOW = 1_800_000_000.0


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1e6


def request(tier: Tier, n: int) -> Request:
    return Request(tier, f"c{n}", "mine", prev_hash(n), 1, 1, None, "f.txt", n)


def enqueue_at(protocol: Protocol, requests: list[Request], enqueued_at: float, batch: str) -> None:
    """Enqueue through the producer's own path, with an enqueued_at chosen by the test."""
    tasks = sorted(build_tasks(requests, batch, enqueued_at), key=lambda t: TIERS.index(t.tier))
    for n, chunk in enumerate(chunks(tasks, 1000)):
        protocol.enqueue(chunk, batch, first=n == 0)


def result_json(task_id: str, finished_at: float, position: int = 1) -> str:
    return Result(
        position=position, id=task_id, batch="b", source="f.txt", line=1, tier="vip",
        client="c", op="mine", status="ok", prev=prev_hash(1), difficulty=1, nonce=0,
        hash="0" * 64, blocks=(), attempts=1, worker="w:1", enqueued_at=finished_at - 1,
        started_at=finished_at - 0.5, finished_at=finished_at,
    ).to_json()  # fmt: skip


def target(server: RedisServer, namespace: str) -> list[str]:
    return ["--redis-url", server.url, "--namespace", namespace]


# --- pure: building and rendering (no Redis) ---------------------------------------------------


def snapshot(**changes: object) -> Snapshot:
    base: dict[str, object] = {
        "time": NOW,
        "tiers": (
            (Tier.VIP, 2, json.dumps({"id": "b.1", "enqueued_at": NOW - 90})),
            (Tier.ALTO, 1, "not json"),
            (Tier.COMUN, 0, None),
        ),
        "claims": (
            # A claim as blpopq 0.1 wrote it (the task copied in, the tier as an index) ...
            (
                "b.7",
                json.dumps({"position": 9, "worker": "h:2", "tier": 3, "task": "{}"}).encode(),
                None,
            ),
            # ... and as the taking scripts write it now: the task is its registration.
            (
                "b.3",
                b'{"position":4,"worker":"h:1","tier":"vip"}',
                json.dumps({"id": "b.3", "enqueued_at": NOW - 5}).encode(),
            ),
        ),
        "workers": (("h:2", (NOW - 3) * 1000), ("h:1", (NOW + 12.5) * 1000)),
        "epochs": (("h:1", 4),),
        "results": 50,
        "results_tail": (
            result_json("b.10", NOW - 120),
            result_json("b.11", NOW - 30),
            "garbage",
            result_json("b.12", NOW - 1),
        ),
        "dead": 2,
        "open_tasks": 5,
    }
    base.update(changes)
    return Snapshot(**base)  # type: ignore[arg-type]


def test_build_turns_raw_reads_into_figures() -> None:
    status = build(snapshot(), "ns", window=60)
    assert [(t.tier, t.length) for t in status.tiers] == [("vip", 2), ("alto", 1), ("comun", 0)]
    assert status.tiers[0].oldest_age == pytest.approx(90)
    assert status.tiers[1].oldest_age is None  # unreadable head
    assert status.tiers[2].oldest_age is None  # empty
    assert status.queued == 3
    # Claims in attention order; the 1-based tier index the scripts store becomes its name.
    assert [(c.id, c.tier, c.worker, c.position) for c in status.in_flight] == [
        ("b.3", "vip", "h:1", 4),
        ("b.7", "comun", "h:2", 9),
    ]
    assert status.in_flight[0].age == pytest.approx(5)
    assert status.in_flight[1].age is None  # its task has no enqueued_at
    workers = {w.worker: w for w in status.workers}
    assert workers["h:1"].alive and workers["h:1"].lease_expires_in == pytest.approx(12.5)
    assert not workers["h:2"].alive and workers["h:2"].lease_expires_in == pytest.approx(-3)
    assert (workers["h:1"].takes, workers["h:2"].takes) == (4, 0)
    assert workers["h:1"].tasks == ("b.3",)
    assert status.workers_alive == 1
    assert (status.results, status.dead_letters, status.served) == (50, 2, 52)
    assert (status.recent.results, status.recent.sampled) == (2, 4)
    assert not status.recent.capped
    assert status.recent.per_second == pytest.approx(2 / 60)


def test_recent_rate_is_flagged_as_a_lower_bound_when_every_sampled_result_is_recent() -> None:
    tail = tuple(result_json(f"b.{n}", NOW - n) for n in range(3))
    recent = build(snapshot(results_tail=tail), "ns", window=60).recent
    assert (recent.results, recent.sampled, recent.capped) == (3, 3, True)
    assert "at least 3 results" in render_table(build(snapshot(results_tail=tail), "ns"))


def test_json_document_has_the_stable_keys() -> None:
    document = json.loads(to_json(build(snapshot(), "ns")))
    assert set(document) == STABLE_KEYS
    assert list(document["tiers"]) == ["vip", "alto", "comun"]
    assert document["tiers"]["vip"] == {"length": 2, "oldest_age_s": 90.0}
    assert set(document["in_flight"][0]) == {"id", "tier", "worker", "position", "age_s"}
    assert set(document["workers"][0]) == {
        "worker", "host", "alive", "lease_expires_in_s", "takes", "tasks", "kernel",
    }  # fmt: skip
    assert set(document["recent"]) == {"window_s", "results", "per_s", "sampled", "capped"}
    assert document["served"] == document["results"] + document["dead_letters"]


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_table_shows_every_section() -> None:
    text = render_table(build(snapshot(), "ns"))
    table = rows(text)
    assert "namespace=ns" in text
    assert ["vip", "2", "1", "m", "30", "s"] in table
    assert ["alto", "1", "?"] in table  # a head blpopq cannot read
    assert ["comun", "0", "-"] in table
    assert ["total", "3"] in table
    assert "in flight: 2" in text
    assert ["b.3", "vip", "h:1", "4", "5.0", "s", "ago"] in table
    assert ["b.7", "comun", "h:2", "9", "-"] in table
    assert ["h:1", "lease", "expires", "in", "12.5", "s", "4", "-", "b.3"] in table
    assert ["h:2", "lease", "ran", "out", "3.0", "s", "ago", "0", "-", "b.7"] in table
    assert "workers: 1 alive of 2" in text
    assert "served: 52 (results + dead letters)" in text
    assert "recent: 2 results in the last 60 s (0.03/s" in text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.04, "0.0 s"), (59.94, "59.9 s"), (61, "1 m 01 s"), (7260, "2 h 01 m"),
     (90061, "1 d 01 h"), (-2.5, "-2.5 s")],
)  # fmt: skip
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


# --- against Redis -------------------------------------------------------------------------------


def test_status_of_an_empty_namespace(protocol: Protocol, client: redis.Redis) -> None:
    before = redis_now(client)
    status = gather(protocol)
    assert before <= status.time <= redis_now(client)  # Redis's clock, not this host's
    assert [(t.tier, t.length, t.oldest_age) for t in status.tiers] == [
        ("vip", 0, None), ("alto", 0, None), ("comun", 0, None),
    ]  # fmt: skip
    assert status.in_flight == () and status.workers == ()
    assert (status.results, status.dead_letters, status.served, status.open_tasks) == (0, 0, 0, 0)
    assert (status.recent.results, status.recent.sampled) == (0, 0)


def test_queued_tasks_in_each_tier_with_the_age_of_the_oldest(
    protocol: Protocol, client: redis.Redis
) -> None:
    now = redis_now(client)
    # The first task of each tier (its head) is the oldest: enqueued 30 s before the others.
    enqueue_at(protocol, [request(t, n) for n, t in enumerate(TIERS, 1)], now - 40, "b1")
    enqueue_at(protocol, [request(Tier.VIP, 4), request(Tier.COMUN, 5)], now - 10, "b2")
    status = gather(protocol)
    assert [(t.tier, t.length) for t in status.tiers] == [("vip", 2), ("alto", 1), ("comun", 2)]
    for tier in status.tiers:
        assert tier.oldest_age is not None
        assert 40 <= tier.oldest_age < 40 + (redis_now(client) - now) + 1
    assert status.queued == 5 and status.open_tasks == 5


def test_a_claim_shows_in_flight_with_its_worker_and_lease(
    protocol: Protocol, client: redis.Redis
) -> None:
    now = redis_now(client)
    enqueue_at(protocol, [request(Tier.ALTO, 1), request(Tier.VIP, 2)], now - 7, "b")
    assert protocol.heartbeat("w:1", "join", lease=60)
    taken = protocol.take("w:1")
    assert taken is not None and taken.tier is Tier.VIP
    status = gather(protocol)
    [claim] = status.in_flight
    assert (claim.id, claim.tier, claim.worker, claim.position) == ("b.2", "vip", "w:1", 1)
    assert claim.age is not None and claim.age >= 7
    [worker] = status.workers
    assert worker.worker == "w:1" and worker.alive
    assert 0 < worker.lease_expires_in <= 60
    assert (worker.takes, worker.tasks) == (1, ("b.2",))
    assert [(t.tier, t.length) for t in status.tiers] == [("vip", 0), ("alto", 1), ("comun", 0)]
    assert status.open_tasks == 2  # the running task is still open


def test_results_dead_letters_served_and_recent_rate(
    protocol: Protocol, client: redis.Redis
) -> None:
    keys = protocol.keys
    now = redis_now(client)
    for n, age in enumerate([300, 200, 30, 5, 1]):  # 3 finished within the last minute
        client.rpush(keys.results, result_json(f"b.{n}", now - age, position=n + 1))
    letter = DeadLetter("task is not valid JSON", "junk", None, None, "alto", "w:1", now)
    protocol.dead_letter_unclaimed(letter.to_json())
    status = gather(protocol)
    assert (status.results, status.dead_letters, status.served) == (5, 1, 6)
    assert (status.recent.results, status.recent.sampled, status.recent.capped) == (3, 5, False)
    # The rate is counted on a bounded tail of the list, never on all of it.
    bounded = gather(protocol, sample=2)
    assert (bounded.recent.results, bounded.recent.sampled, bounded.recent.capped) == (2, 2, True)
    assert bounded.results == 5


def test_cli_status_json(redis_server: RedisServer, namespace: str, protocol: Protocol) -> None:
    enqueue_at(protocol, [request(Tier.COMUN, 1), request(Tier.COMUN, 2)], 1_000.0, "b")
    assert protocol.heartbeat("w:1", "join", lease=60)
    assert protocol.take("w:1") is not None
    done = run_cli("blpopq", "status", "--json", *target(redis_server, namespace))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == STABLE_KEYS
    assert document["namespace"] == namespace
    assert document["tiers"]["comun"]["length"] == 1
    assert document["tiers"]["comun"]["oldest_age_s"] > 1_000_000  # enqueued_at 1000: long ago
    assert [c["id"] for c in document["in_flight"]] == ["b.1"]
    assert document["workers_alive"] == 1 and document["workers"][0]["tasks"] == ["b.1"]


def test_blpopq_status_alias_prints_the_table(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    enqueue_at(protocol, [request(Tier.ALTO, 1)], 1_000.0, "b")
    done = run_cli("blpopq-status", *target(redis_server, namespace))
    assert done.returncode == 0, done.stderr
    assert f"namespace={namespace}" in done.stdout
    assert any(line.split()[:2] == ["alto", "1"] for line in done.stdout.splitlines())
    assert "in flight: 0" in done.stdout


def _watch(redis_server: RedisServer, namespace: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "blpopq"), "status", "--watch", "0.05", *args, *target(redis_server, namespace)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_refreshes_until_ctrl_c_then_exits_0(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    process = _watch(redis_server, namespace, "--json")
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert first["queued"] == 0
        enqueue_at(protocol, [request(Tier.VIP, 1)], 1_000.0, "b")
        # Later refreshes see the change (each line is a fresh read).
        for count, line in enumerate(process.stdout):
            if json.loads(line)["queued"] == 1:
                break
            assert count < 1000, "no refresh saw the new task"
        else:
            raise AssertionError("status --watch stopped")
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_watch_table_clears_the_screen_for_each_refresh(
    redis_server: RedisServer, namespace: str
) -> None:
    process = _watch(redis_server, namespace)
    try:
        assert process.stdout is not None
        frames = 0
        for line in process.stdout:
            if "\x1b[H\x1b[2J" in line:
                assert line.startswith("\x1b[H\x1b[2J") and "blpopq status" in line
                frames += 1
                if frames == 2:
                    break
        assert frames == 2
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_watch_needs_a_positive_interval(redis_server: RedisServer, namespace: str) -> None:
    done = run_cli("blpopq", "status", "--watch", "0", *target(redis_server, namespace))
    assert done.returncode == 2
    assert "--watch needs a positive number of seconds" in done.stderr


def test_status_names_the_kernel_each_worker_runs(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    """Workers on different hosts may run different kernels: each records its own on join,
    `blpopq status` shows it, and it leaves with the worker."""
    target = ["--redis-url", redis_server.url, "--namespace", namespace]
    with Daemon("--workers", "1", "--kernel", "hashlib", *target) as daemon:
        daemon.wait_ready()
        shown = run_cli("blpopq", "status", "--json", *target)
        [worker] = json.loads(shown.stdout)["workers"]
        assert worker["kernel"] == "hashlib"
        assert daemon.stop() == 0
    assert protocol.client.hlen(protocol.keys.kernels) == 0
