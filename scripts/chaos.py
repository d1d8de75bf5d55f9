#!/usr/bin/env python3
"""Soak test: keep producing while killing, stopping and cutting off workers and restarting
Redis at random; then check that every enqueued task ended as exactly one outcome.

    python scripts/chaos.py --minutes 10          # prints tasks, kills, restarts, lost, duplicated

Everything runs on a private redis-server (AOF on) in a temporary directory; nothing touches
a Redis you already run. Exit status 0 only when lost = 0 and duplicated = 0.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import redis

from blpopq.client import Queue
from blpopq.connection import make_client
from blpopq.embedded import RedisServer, free_port
from blpopq.instructions import Request
from blpopq.protocol import Keyspace
from blpopq.tiers import TIERS

NAMESPACE = "chaos"
POISON = "poison"


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (the daemon's workers), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found.append(int(stat.parent.name))
    return found


def random_request(rng: random.Random, n: int, poison_rate: float) -> Request:
    tier = rng.choice(TIERS)
    prev = hashlib.sha256(f"chaos-{n}".encode()).hexdigest()
    client = POISON if rng.random() < poison_rate else f"client{rng.randrange(50)}"
    if rng.random() < 0.2:
        return Request(tier, client, "verify", prev, 4, 1, rng.randrange(100), "chaos", n)
    difficulty, count = rng.randrange(0, 13), rng.randrange(1, 3)
    return Request(tier, client, "mine", prev, difficulty, count, None, "chaos", n)


class Chaos:
    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        extra = ("--appendonly", "yes", "--appendfsync", args.appendfsync)
        self.server = RedisServer(port=free_port(), directory=directory, extra_args=extra)
        self.counts: Counter[str] = Counter()
        self.enqueued: list[str] = []
        self.stopped: dict[int, float] = {}
        self.daemon: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.server.start()
        env = {**os.environ, "BLPOPQ_TEST_HOOKS": f"crash-on-client={POISON}"}
        command = [
            sys.executable, "-m", "blpopq", "daemon", "--redis-url", self.server.url,
            "--namespace", NAMESPACE, "--workers", str(self.args.workers), "--lease", "2",
            "--orphan-grace", "0.5", "--reaper-period", "0.5", "--block-timeout", "1",
            "--grace", "2", "--log-level", "ERROR",
        ]  # fmt: skip
        self.daemon = subprocess.Popen(command, env=env)

    def produce(self, n: int) -> None:
        requests = [random_request(self.rng, n + i, self.args.poison_rate) for i in range(20)]
        try:
            with make_client(self.server.url, socket_timeout=5) as client:
                report = Queue(client, NAMESPACE).enqueue(requests)
        except redis.RedisError:
            self.counts["produce failed (not counted)"] += 1
            return
        self.enqueued.extend(report.ids)

    def fault(self) -> None:
        assert self.daemon is not None
        workers = children(self.daemon.pid)
        roll = self.rng.random()
        if roll < 0.45 and workers:
            os.kill(self.rng.choice(workers), signal.SIGKILL)
            self.counts["kills"] += 1
        elif roll < 0.6 and workers:
            pid = self.rng.choice(workers)
            os.kill(pid, signal.SIGSTOP)
            self.stopped[pid] = time.monotonic() + self.rng.uniform(0.5, 4.0)  # past the lease
            self.counts["stops"] += 1
        elif roll < 0.8:
            self.cut_connections()
        else:
            self.restart_redis()

    def cut_connections(self) -> None:
        try:
            with make_client(self.server.url, socket_timeout=5) as client:
                client.client_kill_filter(_type="normal", skipme=True)
            self.counts["connection cuts"] += 1
        except redis.RedisError:
            pass

    def restart_redis(self) -> None:
        # SIGKILL loses the last second under appendfsync everysec, which blpopq does not
        # promise to survive; SIGTERM makes Redis fsync and exit cleanly.
        if self.args.appendfsync == "always" and self.rng.random() < 0.5:
            self.server.kill()
            self.counts["redis kill -9 + restart"] += 1
        else:
            self.server.stop()
            self.counts["redis restarts"] += 1
        self.server.start()

    def resume_stopped(self, force: bool = False) -> None:
        for pid, when in list(self.stopped.items()):
            if force or time.monotonic() >= when:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                del self.stopped[pid]

    def run(self) -> int:
        self.start()
        deadline = time.monotonic() + self.args.minutes * 60
        n = 0
        while time.monotonic() < deadline:
            self.produce(n)
            n += 20
            if self.rng.random() < self.args.fault_rate:
                self.fault()
            self.resume_stopped()
            time.sleep(self.rng.uniform(0.05, 0.3))
        self.resume_stopped(force=True)
        return self.settle_and_report()

    def settle_and_report(self) -> int:
        keys = Keyspace(NAMESPACE)
        wanted = set(self.enqueued)
        deadline = time.monotonic() + self.args.drain_timeout
        with redis.Redis.from_url(self.server.url, socket_timeout=10) as client:
            while True:
                results = [json.loads(r) for r in client.lrange(keys.results, 0, -1)]
                dead = [json.loads(d) for d in client.lrange(keys.dead, 0, -1)]
                seen = Counter(x.get("id") for x in [*results, *dead])
                if wanted <= set(seen) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            open_tasks = client.hlen(keys.tasks)
        self.stop_daemon()
        wrong = [r for r in results if r["status"] == "ok" and not meets(r)]
        report = {
            "tasks": len(wanted),
            **self.counts,
            "results": len(results),
            "dead letters": len(dead),
            "dead letters (poison)": sum(1 for d in dead if '"client":"poison"' in d["raw"]),
            "lost": len(wanted - set(seen)),
            "duplicated": sum(1 for i in wanted if seen[i] > 1),
            "wrong results": len(wrong),
            "open tasks left": open_tasks,
        }
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        ok = report["lost"] == report["duplicated"] == report["wrong results"] == 0
        return 0 if ok else 1

    def stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
        self.server.close()


def meets(result: dict[str, object]) -> bool:
    """Recompute every block of a mine result: each hash right and meeting the difficulty."""
    prev, difficulty = str(result["prev"]), int(result["difficulty"])  # type: ignore[call-overload]
    for block in result["blocks"]:  # type: ignore[attr-defined]
        digest = hashlib.sha256(f"{prev}{block['nonce']}".encode()).digest()
        if digest.hex() != block["hash"] or int.from_bytes(digest, "big") >> (256 - difficulty):
            return False
        prev = block["hash"]
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--appendfsync", choices=["always", "everysec"], default="always")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="faults per produce step")
    parser.add_argument("--poison-rate", type=float, default=0.002)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="blpopq-chaos-") as directory:
        return Chaos(args, Path(directory)).run()


if __name__ == "__main__":
    sys.exit(main())
