"""Sentinel: one primary, one replica and three sentinels on loopback; the daemon, producer and
collector reach the primary through ``redis+sentinel://``; the primary is SIGKILLed mid-run.
The pool follows the failover like a restart (reconnect with backoff, each new connection
asking the sentinels where the primary is), and every task ends as exactly one outcome."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blpopq.embedded import RedisServer
from blpopq.keyspace import Keyspace

from ..helpers import Daemon, wait_until
from .conftest import (
    FAILOVER_DAEMON,
    FAILOVER_TASKS,
    check_every_task_once,
    collect_failover_batch,
    failover_env,
    port,
    produce_failover_batch,
    start,
)  # fmt: skip

pytestmark = pytest.mark.redis

NS = "sentinel"
SERVICE = "main"


class SentinelProcess:
    """``redis-server sentinel.conf --sentinel`` watching ``SERVICE`` at ``primary_port``:
    down after 1 s without a reply, failover attempts bounded by 3 s."""

    def __init__(self, binary: str, directory: Path, primary_port: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = port()
        conf = directory / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {directory}\n"
            f"logfile {directory / 'sentinel.log'}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.process = subprocess.Popen([binary, str(conf), "--sentinel"], stdin=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, socket_timeout=2.0, decode_responses=True)

    def knows_everyone(self) -> bool:
        """It has found the replica and both other sentinels (through the primary's hello
        channel): only then can a quorum agree that the primary is down."""
        try:
            others = self.client.execute_command("SENTINEL", "SENTINELS", SERVICE)
            replicas = self.client.execute_command("SENTINEL", "REPLICAS", SERVICE)
        except redis.RedisError:
            return False
        return len(others) == 2 and len(replicas) == 1

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def role(server: RedisServer) -> str:
    with redis.Redis(unix_socket_path=str(server.socket_path), socket_timeout=2.0) as client:
        return str(client.info("replication")["role"])


def written(client: redis.Redis) -> int:
    return int(client.get(Keyspace(NS).results_written) or 0)


@pytest.fixture
def deployment(redis7: str, tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, str]]:
    """(primary, replica, the redis+sentinel:// URL of the service), all in sync."""
    primary = start(redis7, tmp_path / "primary")
    replica = start(redis7, tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary.port))
    sentinels: list[SentinelProcess] = []
    try:
        with redis.Redis(unix_socket_path=str(replica.socket_path)) as r:
            wait_until(lambda: r.info("replication")["master_link_status"] == "up", "replica")
        sentinels = [
            SentinelProcess(redis7, tmp_path / f"sentinel{i}", primary.port or 0) for i in range(3)
        ]
        wait_until(lambda: all(s.knows_everyone() for s in sentinels), "sentinels", timeout=60)
        nodes = ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
        yield primary, replica, f"redis+sentinel://{nodes}/{SERVICE}/0"
    finally:
        for sentinel in sentinels:
            sentinel.stop()
        replica.stop()
        primary.stop()


def test_a_failover_mid_run_loses_and_repeats_nothing(
    deployment: tuple[RedisServer, RedisServer, str], tmp_path: Path
) -> None:
    """Guarantee: with the primary SIGKILLed mid-run, the pool follows the sentinels to the
    promoted replica and every task ends as exactly one result or dead letter, both in Redis
    and as `collect --batch` prints them. Reports tasks, lost, duplicated, dead letters and
    the time to recover (kill to promotion, kill to the first result written after)."""
    primary, replica, url = deployment
    env = failover_env(url, NS)
    path = produce_failover_batch(tmp_path, env)
    keys = Keyspace(NS)
    new_primary = redis.Redis(unix_socket_path=str(replica.socket_path), socket_timeout=5.0)
    assert new_primary.hlen(keys.tasks) == FAILOVER_TASKS  # WAIT: on the replica at once

    with Daemon(*FAILOVER_DAEMON, env=env) as daemon:
        daemon.wait_ready()
        with redis.Redis(unix_socket_path=str(primary.socket_path)) as old:
            tenth = FAILOVER_TASKS // 10
            wait_until(lambda: written(old) >= tenth, "a tenth of the results", daemon)
        killed_at = time.monotonic()
        primary.kill()
        at_kill = written(new_primary)  # what had reached the replica
        wait_until(lambda: role(replica) == "master", "the promotion", daemon, timeout=60)
        promoted = time.monotonic() - killed_at
        wait_until(lambda: written(new_primary) > at_kill, "a result after", daemon, timeout=60)
        recovered = time.monotonic() - killed_at
        printed = collect_failover_batch(env, daemon)
        assert daemon.stop() == 0, daemon.log

    times = (
        f"results before the kill {at_kill}, promoted after {promoted:.1f} s, "
        f"first result after {recovered:.1f} s"
    )
    check_every_task_once("sentinel failover", path, new_primary, keys, printed, times)
    new_primary.close()
