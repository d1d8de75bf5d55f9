"""Half-done work leaves a trace: what a failed or interrupted command had already done is
reported, never thrown away, and a Redis that lost its data is named as the cause.

Each test runs the real console scripts against a redis-server of its own (it is filled up,
killed or restarted), and checks what was printed against what is actually in Redis.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.protocol import Keyspace

from ..conftest import start_server
from ..helpers import BIN, Daemon, cli_env, prev_hash, run_cli, wait_until

PARTIAL = re.compile(r"^enqueued (\d+) of (\d+) \(batch=(\S+)\)", re.MULTILINE)
#: No nonce below 150 M meets difficulty 28 for this prev (see test_cli.py): runs for minutes.
ENDLESS = f"comun zed mine {prev_hash(7)} 28"


@pytest.fixture
def own_redis(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone: it may be filled up, killed and restarted."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = start_server(redis_binary, directory)
    try:
        yield server
    finally:
        server.stop()


def write_requests(path: Path, count: int, *extra: str) -> Path:
    lines = [f"vip c{n} mine {prev_hash(n)} 1" for n in range(count)]
    path.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return path


def open_tasks(client: redis.Redis, namespace: str) -> int:
    """Tasks registered in Redis: what an enqueue really wrote."""
    return int(client.hlen(Keyspace(namespace).tasks))


def assert_partial_report(stderr: str, landed: int, total: int) -> str:
    match = PARTIAL.search(stderr)
    assert match, stderr
    assert (int(match.group(1)), int(match.group(2))) == (landed, total), stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("blpopq produce: "), stderr  # the cause comes last
    return match.group(3)


# --- produce ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_produce_reports_how_many_tasks_landed_and_the_batch(
    signum: int, own_redis: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """Ctrl-C or SIGTERM mid-enqueue: the chunk under way finishes, no other is sent, and
    stderr says `enqueued K of N (batch=B)` with K exactly what is in Redis; exit 130."""
    total = 6000
    path = write_requests(tmp_path / "big.txt", total)
    client = make_client(own_redis.url)
    producer = subprocess.Popen(
        [str(BIN / "blpopq-produce"), str(path), "--chunk-size", "1"]
        + ["--redis-url", own_redis.url, "--namespace", namespace],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: open_tasks(client, namespace) >= 50, "the first chunks", poll=0.001)
        producer.send_signal(signum)
        stdout, stderr = producer.communicate(timeout=60)
    finally:
        if producer.poll() is None:
            producer.kill()
    assert producer.returncode == 130, stderr
    landed = open_tasks(client, namespace)
    assert 50 <= landed < total, "the signal came too late to prove anything"
    batch = assert_partial_report(stderr, landed, total)
    assert stdout == ""  # the success line is for a complete batch only
    ids = {raw.decode().rsplit(".", 1)[0] for raw in client.hkeys(Keyspace(namespace).tasks)}
    assert ids == {batch}
    client.close()


def test_produce_refused_midway_by_full_memory_reports_what_landed(
    own_redis: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """Redis refuses a chunk (OOM under maxmemory, noeviction): the chunks before it stay,
    stderr says how many and in which batch, and produce exits 3 (Redis failing)."""
    client = make_client(own_redis.url)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(used + 400_000))
    total = 4000
    path = write_requests(tmp_path / "big.txt", total)
    done = run_cli(
        "blpopq-produce", str(path), "--chunk-size", "100",
        "--redis-url", own_redis.url, "--namespace", namespace,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    landed = open_tasks(client, namespace)
    assert 0 < landed < total and landed % 100 == 0, landed
    assert_partial_report(done.stderr, landed, total)
    assert "OOM" in done.stderr or "memory" in done.stderr, done.stderr
    client.close()


def test_produce_refused_by_acl_exits_5_and_says_nothing_landed(
    own_redis: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """A user that may not run scripts: the first chunk is refused, `enqueued 0 of N`, exit 5."""
    client = make_client(own_redis.url)
    client.acl_setuser(
        "producer", enabled=True, passwords=["+pw"], keys=["*"],
        commands=["+@all", "-evalsha", "-eval"],
    )  # fmt: skip
    url = own_redis.url.replace("redis://", "redis://producer:pw@", 1)
    done = run_cli(
        "blpopq-produce", str(write_requests(tmp_path / "f.txt", 3)),
        "--redis-url", url, "--namespace", namespace,
    )  # fmt: skip
    assert done.returncode == 5, done.stderr
    assert_partial_report(done.stderr, 0, 3)
    assert open_tasks(client, namespace) == 0
    client.close()


# --- run ----------------------------------------------------------------------------------------


def test_run_prints_the_outcomes_it_read_before_a_redis_error(
    own_redis: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """Redis dies while `run` waits: the results it already read are printed (table on
    stdout, summary on stderr), then the error line; exit 3."""
    path = write_requests(tmp_path / "f.txt", 3, ENDLESS)
    client = make_client(own_redis.url)
    keys = Keyspace(namespace)
    run = subprocess.Popen(
        [str(BIN / "blpopq"), "run", str(path), "--workers", "1", "--block-timeout", "0.5"]
        + ["--grace", "1", "--redis-url", own_redis.url, "--namespace", namespace],
        env=cli_env(BLPOPQ_KERNEL="hashlib"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: client.llen(keys.results) >= 3, "three results", poll=0.01)
        wait_until(lambda: client.hlen(keys.inflight) == 1, "the endless task running")
        time.sleep(0.3)  # run reads results every 0.1 s at most: it has read all three
        own_redis.kill()
        stdout, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 3, stderr
    header, *rows = stdout.splitlines()
    assert header.split()[:3] == ["position", "tier", "client"], stdout
    assert sorted(row.split()[2] for row in rows) == ["c0", "c1", "c2"], stdout
    lines = stderr.splitlines()
    [summary] = [n for n, line in enumerate(lines) if line.startswith("vip: 3 served")]
    [error] = [n for n, line in enumerate(lines) if line.startswith("blpopq run: error:")]
    assert summary < error, stderr


# --- Redis lost its data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persistence", "busy"),
    [(False, False), (False, True), (True, False)],
    ids=["no-persistence-idle", "no-persistence-busy", "aof-idle"],
)
def test_a_redis_restarted_without_its_data_is_named_as_the_cause(
    persistence: bool, busy: bool, redis_binary: str, namespace: str, tmp_path: Path
) -> None:
    """A Redis restarted empty has lost every queued and running task. The worker says so in
    one ERROR line, so the "declared dead" and "fenced off" lines that follow have a cause.
    It does this whether it was waiting in BLPOP (it reconnects) or running a task (its
    heartbeat finds its lease gone). A restart that kept the data (AOF) gets no such line,
    and the pool goes on serving."""
    extra = ("--appendonly", "yes", "--appendfsync", "always") if persistence else ()
    server = start_server(redis_binary, tmp_path, extra)
    client = make_client(server.url)
    keys = Keyspace(namespace)
    target = ["--redis-url", server.url, "--namespace", namespace]
    try:
        with Daemon(
            "--workers", "1", "--block-timeout", "0.5", "--lease", "3", *target,
            env=cli_env(BLPOPQ_KERNEL="hashlib", BLPOPQ_BACKOFF_MAX="0.5"),
        ) as daemon:  # fmt: skip
            daemon.wait_ready()
            path = write_requests(tmp_path / "f.txt", 2, *([ENDLESS] if busy else []))
            assert run_cli("blpopq-produce", str(path), *target).returncode == 0
            wait_until(lambda: client.llen(keys.results) == 2, "two results", daemon)
            if busy:
                wait_until(lambda: client.hlen(keys.inflight) == 1, "the endless task", daemon)
            server.stop()
            server.start()
            if persistence:  # served after the restart: the worker has reconnected
                later = write_requests(tmp_path / "later.txt", 1)
                assert run_cli("blpopq-produce", str(later), *target).returncode == 0
                wait_until(lambda: client.llen(keys.results) == 3, "a third result", daemon)
            else:
                daemon.wait_for_line(r"ERROR .*Redis at \S+ lost its data")
            assert daemon.stop() == 0, daemon.log
        assert daemon.log.count("lost its data") == (0 if persistence else 1), daemon.log
    finally:
        client.close()
        server.stop()
