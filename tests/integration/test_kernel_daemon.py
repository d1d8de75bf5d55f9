"""The daemon on the kernel ``auto`` picks (native where built), as real processes.

Both promises depend on the native search releasing the GIL and being called in short
chunks: the heartbeat thread renews the lease while the main thread searches, and a stop
request is seen between chunks. In a build without the extension (BLPOPQ_NO_NATIVE=1) the
same tests run on the hashlib kernel; otherwise a missing extension is a failure.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import redis

from blpopq import kernels
from blpopq.embedded import RedisServer
from blpopq.protocol import Keyspace
from blpopq.tiers import Tier

from ..helpers import Daemon, cli_env, run_cli, wait_until

NO_NATIVE = os.environ.get("BLPOPQ_NO_NATIVE", "") not in ("", "0")
PREV = "3" * 64
#: Never met within any budget a test runs (odds ~ attempts / 2**64): the task ends
#: ``exhausted`` after exactly --max-attempts nonces.
NEVER = 64
#: Seconds of one worker's search at each kernel's rate: 200 chunks of ~25 ms (kernels.CHUNKS).
SEARCH_CHUNKS = 200


def expected_kernel() -> str:
    if NO_NATIVE:
        return "hashlib"
    paths = kernels.native_paths()
    assert paths, kernels.native_module()[1]  # a broken build must not pass as "tested"
    return paths[0]


def start(server: RedisServer, namespace: str, *extra: str) -> Daemon:
    fast = ["--block-timeout", "0.5", "--lease", "1", "--reaper-period", "0.2"]
    args = ["--workers", "1", *fast, "--redis-url", server.url, "--namespace", namespace]
    return Daemon(*args, *extra, env=cli_env(BLPOPQ_BACKOFF_MAX="0.5"))


def produce_endless(server: RedisServer, namespace: str, tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text(f"vip ana mine {PREV} {NEVER}\n", encoding="utf-8")
    target = ["--redis-url", server.url, "--namespace", namespace, "--max-difficulty", "64"]
    target += ["--max-work", str(2**64)]
    done = run_cli("blpopq-produce", str(path), *target)
    assert done.returncode == 0, done.stderr


def test_a_worker_searching_seconds_on_the_native_kernel_keeps_its_lease(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: a long CPU-bound search never looks stalled. With a 1 s lease, a worker
    searching for ~5 s is never declared dead: one result, from the first worker, and no
    recovery of its task."""
    kernel = expected_kernel()
    budget = SEARCH_CHUNKS * kernels.CHUNKS[kernel]
    keys = Keyspace(namespace)
    with start(redis_server, namespace, "--max-attempts", str(budget)) as daemon:
        daemon.wait_for_line(rf"ready: 1 worker waiting for work \(kernel {kernel}\)")
        produce_endless(redis_server, namespace, tmp_path)
        wait_until(lambda: client.llen(keys.results) == 1, "the result", daemon, timeout=120)
        assert daemon.stop() == 0, daemon.log
    [result] = [json.loads(raw) for raw in client.lrange(keys.results, 0, -1)]
    assert (result["status"], result["attempts"]) == ("exhausted", budget), result
    assert result["worker"].endswith(f":{daemon.worker_pids[0]}"), (result, daemon.log)
    assert len(daemon.worker_pids) == 1, daemon.log
    assert "declared dead" not in daemon.log
    assert "back at the head" not in daemon.log
    assert client.hlen(keys.inflight) == 0


def test_sigterm_during_a_long_native_search_puts_the_task_back_within_grace(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: graceful stop. A search that cannot end within --grace is cancelled
    between chunks: the task goes back to the head of its tier and the daemon exits 0."""
    keys = Keyspace(namespace)
    produce_endless(redis_server, namespace, tmp_path)
    [queued] = client.lrange(keys.tier(Tier.VIP), 0, -1)
    with start(redis_server, namespace, "--grace", "0.5") as daemon:
        daemon.wait_for_line(rf"\(kernel {expected_kernel()}\)")
        wait_until(lambda: client.hlen(keys.inflight) == 1, "task in flight", daemon)
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(30) == 0, daemon.log
    assert client.llen(keys.results) == 0
    [back] = [json.loads(raw) for raw in client.lrange(keys.tier(Tier.VIP), 0, -1)]
    progress = back.pop("progress")  # what the search did is kept: resumed, not redone
    assert back == json.loads(queued) and progress["next_nonce"] == progress["attempts"] > 0
    assert client.hlen(keys.inflight) == 0
    assert "goes back to the head of vip" in daemon.log
