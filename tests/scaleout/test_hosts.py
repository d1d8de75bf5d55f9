"""Many hosts on one queue: two daemons with different BLPOPQ_HOST_IDs share a namespace;
one "host" dies whole (SIGKILL to its supervisor and workers at once) while it runs tasks;
the other recovers them. Every task ends as exactly one result."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blpopq.embedded import RedisServer
from blpopq.identity import WorkerId, host_of, pid_of
from blpopq.keyspace import Keyspace

from ..helpers import Daemon, cli_env, prev_hash, run_cli, wait_until
from .conftest import start

pytestmark = pytest.mark.redis

NS = "hosts"
#: ~6.6 M hashes on the hashlib kernel: seconds, so a host can die while running it.
SLOW = f"mine {prev_hash(27)} 22"
FAST = (
    "--workers", "2", "--block-timeout", "0.5", "--lease", "1", "--orphan-grace", "0.3",
    "--reaper-period", "0.2",
)  # fmt: skip


@pytest.fixture(scope="module")
def server(redis7: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start(redis7, tmp_path_factory.mktemp("hosts"))
    yield server
    server.stop()


def host_env(server: RedisServer, host: str) -> dict[str, str]:
    return cli_env(
        REDIS_URL=server.url, BLPOPQ_NAMESPACE=NS, BLPOPQ_HOST_ID=host, BLPOPQ_KERNEL="hashlib",
        BLPOPQ_BACKOFF_MAX="0.5",
    )  # fmt: skip


def claims(client: redis.Redis) -> dict[str, dict[str, object]]:
    return {
        key.decode(): json.loads(record)
        for key, record in client.hgetall(Keyspace(NS).inflight).items()
    }


def test_worker_ids_differ_across_starts_with_the_same_host_and_pid() -> None:
    first, second = WorkerId.new("box", 7), WorkerId.new("box", 7)
    assert first.shown == second.shown == "box:7"  # what results say
    assert first.key != second.key  # what leases, claims and client names say
    assert (host_of(first.key), pid_of(first.key)) == ("box", 7)
    assert (host_of("box:7"), pid_of("box:7")) == ("box", 7)  # a claim of blpopq 0.1


def test_a_host_dies_and_the_other_recovers_its_tasks(server: RedisServer, tmp_path: Path) -> None:
    """Guarantee: two hosts share the queue; `status` shows each; when one dies whole, its
    claims are given back by the other's reaper and every task gets exactly one result."""
    client = redis.Redis(unix_socket_path=str(server.socket_path))
    lines = [f"vip slow{n} {SLOW}" for n in range(4)]
    lines += [f"comun fast{n} mine {prev_hash(n)} 4" for n in range(8)]
    path = tmp_path / "hosts.txt"
    path.write_text("\n".join(lines) + "\n")
    a = Daemon(*FAST, env=host_env(server, "host-a"), new_session=True)
    b = Daemon(*FAST, env=host_env(server, "host-b"))
    with a, b:
        a.wait_ready()
        b.wait_ready()
        produced = run_cli("blpopq-produce", str(path), env=host_env(server, "producer"))
        assert produced.returncode == 0, produced.stderr

        def held_by_a() -> list[str]:
            return [k for k, c in claims(client).items() if host_of(str(c["worker"])) == "host-a"]

        wait_until(lambda: bool(held_by_a()), "a task running on host-a", a)
        status = run_cli("blpopq-status", "--json", env=host_env(server, "x"))
        table = run_cli("blpopq-status", env=host_env(server, "x"))
        os.killpg(a.process.pid, signal.SIGKILL)  # the whole host: supervisor and workers
        lost = held_by_a()
        a.process.wait(10)

        done = run_cli(
            "blpopq-collect", "--batch", "last", "--expect", str(len(lines)), "--timeout", "90",
            "--format", "jsonl", env=host_env(server, "x"),
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stderr}\n{b.log}"
        assert b.stop() == 0, b.log

    snapshot = json.loads(status.stdout)
    assert snapshot["hosts"] == {
        "host-a": {"workers": 2, "alive": 2},
        "host-b": {"workers": 2, "alive": 2},
    }, snapshot
    assert "host host-a: 2 alive of 2" in table.stdout and "host host-b: 2" in table.stdout
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["client"] for r in results) == sorted(line.split()[1] for line in lines)
    assert client.llen(Keyspace(NS).results) == len(lines), "a duplicate result"
    by_id = {r["id"]: r for r in results}
    assert lost, "host-a held nothing when it died"
    for task_id in lost:  # recovered by host-b, HOST:PID as documented
        assert by_id[task_id]["worker"].startswith("host-b:"), by_id[task_id]
        assert pid_of(by_id[task_id]["worker"]) is not None
        back = rf"task {re.escape(task_id)} back at the head of \w+ \(worker died: host-a:\d+/"
        assert re.search(back, b.log), b.log
    client.close()
