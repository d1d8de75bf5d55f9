"""``--wait-replicas N``: a real primary and replica on loopback. What the option promises:
a produce that exits 0 has every task on N replicas; one that could not get them exits 3 and
``enqueued K of N`` counts only confirmed tasks; a worker's outcomes reach the replicas
before it goes on, and a missing replica costs a warning, never a lost or repeated task."""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blpopq.embedded import RedisServer
from blpopq.errors import EXIT_REDIS_UNAVAILABLE
from blpopq.instructions import parse_text
from blpopq.keyspace import Keyspace
from blpopq.producer import Progress, enqueue
from blpopq.protocol import Protocol
from blpopq.replication import NotReplicated, ReplicaWait

from ..helpers import Daemon, cli_env, prev_hash, run_cli, wait_until
from .conftest import start

pytestmark = pytest.mark.redis

FAST = ("--block-timeout", "0.5", "--lease", "3", "--reaper-period", "0.5")


def local(server: RedisServer) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket_path), socket_timeout=10.0)


def wait_calls(server: RedisServer) -> int:
    with local(server) as client:
        stats = client.info("commandstats").get("cmdstat_wait", {})
    return int(stats.get("calls", 0))


@pytest.fixture
def pair(redis7: str, tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """(primary, replica), the replica in sync."""
    primary = start(redis7, tmp_path / "primary")
    replica = start(redis7, tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary.port))
    try:
        with local(replica) as r:
            wait_until(lambda: r.info("replication")["master_link_status"] == "up", "replica")
        yield primary, replica
    finally:
        replica.signal(signal.SIGCONT)  # a test may have frozen it
        replica.stop()
        primary.stop()


@pytest.fixture
def lone(redis7: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A primary with no replica at all."""
    server = start(redis7, tmp_path / "lone")
    yield server
    server.stop()


def instructions(path: Path, count: int, difficulty: int = 8) -> Path:
    tiers = ("vip", "alto", "comun")
    lines = (f"{tiers[n % 3]} c{n} mine {prev_hash(n)} {difficulty}\n" for n in range(count))
    path.write_text("".join(lines))
    return path


def test_a_produce_that_exits_0_has_every_task_on_the_replica(
    pair: tuple[RedisServer, RedisServer], tmp_path: Path
) -> None:
    primary, replica = pair
    env = cli_env(REDIS_URL=primary.url, BLPOPQ_NAMESPACE="w")
    path = instructions(tmp_path / "in.txt", 30)
    done = run_cli(
        "blpopq-produce", str(path), "--wait-replicas", "1", "--chunk-size", "7", env=env
    )
    assert done.returncode == 0, done.stderr
    # No waiting here: WAIT returned only once the replica had applied every chunk.
    with local(replica) as r:
        assert r.hlen(Keyspace("w").tasks) == 30
    assert wait_calls(primary) == 5  # one per chunk: 7+7+7+7+2


def test_without_its_replicas_produce_exits_3_and_counts_none_as_enqueued(
    lone: RedisServer, tmp_path: Path
) -> None:
    env = cli_env(REDIS_URL=lone.url, BLPOPQ_NAMESPACE="w", BLPOPQ_WAIT_REPLICAS="1")
    done = run_cli("blpopq-produce", str(instructions(tmp_path / "in.txt", 6)), env=env)
    assert done.returncode == EXIT_REDIS_UNAVAILABLE, done.stderr
    assert "enqueued 0 of 6 (batch=" in done.stderr
    assert "the next 6 are enqueued on the primary, not confirmed by its replicas" in done.stderr
    assert "only 0 of 1 replicas confirmed the enqueue" in done.stderr
    assert "Traceback" not in done.stderr
    with local(lone) as client:  # on the primary all the same: the line says so
        assert client.hlen(Keyspace("w").tasks) == 6


def test_k_counts_the_chunks_the_replica_confirmed_before_it_froze(
    pair: tuple[RedisServer, RedisServer],
) -> None:
    """The replica is frozen (SIGSTOP) between the first and the second chunk: the first is
    counted, the second is reported as on the primary only, and no third is sent."""
    primary, replica = pair
    text = "".join(f"vip c{n} mine {prev_hash(n)} 8\n" for n in range(9))
    asked: list[int] = []

    def freeze_before_second_chunk() -> bool:
        asked.append(1)
        if len(asked) == 2:
            replica.signal(signal.SIGSTOP)
        return False

    progress = Progress()
    with local(primary) as client:
        protocol = Protocol(client, Keyspace("k"))
        with pytest.raises(NotReplicated):
            enqueue(
                protocol,
                parse_text(text, "in.txt"),
                chunk_size=4,
                progress=progress,
                should_stop=freeze_before_second_chunk,
                replicas=ReplicaWait(1, timeout=0.5),
            )
        assert (progress.enqueued, progress.unconfirmed, progress.total) == (4, 4, 9)
        assert len(asked) == 2  # no third chunk after the refusal
        assert client.hlen(Keyspace("k").tasks) == 8
    assert "enqueued 4 of 9" in progress.partial(maybe_in_flight=True)


def test_workers_wait_for_the_replica_after_each_outcome(
    pair: tuple[RedisServer, RedisServer], tmp_path: Path
) -> None:
    primary, replica = pair
    env = cli_env(REDIS_URL=primary.url, BLPOPQ_NAMESPACE="o", BLPOPQ_KERNEL="hashlib")
    assert (
        run_cli("blpopq-produce", str(instructions(tmp_path / "in.txt", 20)), env=env).returncode
        == 0
    )
    with Daemon("--workers", "2", "--wait-replicas", "1", *FAST, env=env) as daemon:
        daemon.wait_ready()
        done = run_cli("blpopq-collect", "--expect", "20", "--timeout", "60", env=env)
        assert done.returncode == 0, f"{done.stderr}\n{daemon.log}"
        assert daemon.stop() == 0, daemon.log
    assert "not confirmed" not in daemon.log
    assert wait_calls(primary) >= 20  # one per result at least
    keys = Keyspace("o")
    with local(replica) as r:  # each worker waited for its last result before it stopped
        assert r.llen(keys.results) == 20
        assert r.hlen(keys.tasks) == 0


def test_a_missing_replica_costs_one_warning_and_no_task(lone: RedisServer, tmp_path: Path) -> None:
    env = cli_env(REDIS_URL=lone.url, BLPOPQ_NAMESPACE="m", BLPOPQ_KERNEL="hashlib")
    assert (
        run_cli("blpopq-produce", str(instructions(tmp_path / "in.txt", 12)), env=env).returncode
        == 0
    )
    with Daemon("--workers", "1", "--wait-replicas", "1", *FAST, env=env) as daemon:
        daemon.wait_ready()
        done = run_cli(
            "blpopq-collect", "--expect", "12", "--timeout", "60", "--format", "jsonl", env=env
        )
        assert done.returncode == 0, f"{done.stderr}\n{daemon.log}"
        assert daemon.stop() == 0, daemon.log
    clients = Counter(json.loads(line)["client"] for line in done.stdout.splitlines())
    assert clients == Counter(f"c{n}" for n in range(12))  # each task once
    assert daemon.log.count("outcomes not confirmed by 1 replicas") == 1, daemon.log
    assert wait_calls(lone) >= 1
