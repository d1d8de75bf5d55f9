#!/usr/bin/env python3
"""Soak test: keep producing while killing, stopping and cutting off workers, restarting,
freezing and busying Redis, squeezing its memory and pushing garbage, at random; then check
that every enqueued task ended as exactly one outcome and every foreign item as one letter.

    python scripts/chaos.py --minutes 10          # prints tasks, each fault, lost, duplicated

Everything runs on a private redis-server (AOF on) in a temporary directory; nothing touches
a Redis you already run. Exit status 0 only when lost, duplicated and healthy tasks
dead-lettered are 0 and every foreign item has exactly one dead letter. Each new fault kind
has a --no-<kind> flag (freeze, busy, memory, garbage).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _chaos as lib

from blpopq.client import Queue
from blpopq.connection import make_client
from blpopq.embedded import RedisServer, free_port
from blpopq.keyspace import Keyspace
from blpopq.producer import build_tasks, enqueue, new_batch_id

NAMESPACE = "chaos"
POISON_REASON = re.compile(r"its worker died \d+ times? while it ran")
#: Fault kinds and their weights; the first four are the original ones, in their old shares.
FAULTS = {
    "kill": 45, "stop": 15, "cut": 20, "restart": 20,
    "freeze": 3, "busy": 4, "memory": 4, "garbage": 25,
}  # fmt: skip
#: A produce sent to a frozen Redis gives up after this, and runs when Redis thaws.
PRODUCE_TIMEOUT = 2.0
REDIS_EPISODES = ("restart", "freeze", "busy", "memory")  # one at a time: they touch Redis


class Chaos:
    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        extra: tuple[str, ...] = ("--appendonly", "yes", "--appendfsync", args.appendfsync)
        extra += ("--lua-time-limit", "50")  # others get BUSY 50 ms into a long script
        self.server = RedisServer(port=free_port(), directory=directory, extra_args=extra)
        self.keys = Keyspace(NAMESPACE)
        self.counts: Counter[str] = Counter()
        self.enqueued: list[str] = []
        self.unknown: list[list[str]] = []  # chunks whose enqueue raised: landed or not
        self.client_of: dict[str, str] = {}
        self.unknown_why: dict[str, str] = {}  # first id of such a chunk -> when, what raised
        self.foreign = lib.Ledger()
        self.stopped: dict[int, float] = {}
        self.episode: tuple[str, float] | None = None  # a Redis fault under way, until when
        self.busy: threading.Thread | None = None
        self.queue: Queue | None = None
        self.daemon: subprocess.Popen[bytes] | None = None
        self.weights: dict[str, float] = {
            k: w for k, w in FAULTS.items() if not getattr(args, f"no_{k}", False)
        }
        for item in filter(None, args.weights.split(",")):
            kind, _, weight = item.partition("=")
            self.weights[kind.strip()] = float(weight)

    def start(self) -> None:
        self.server.start()
        env = dict(os.environ)
        # The poison task kills its worker through the tests' hook launcher: blpopq has none.
        hooked = Path(__file__).resolve().parents[1] / "tests" / "hooked_daemon.py"
        command = [
            sys.executable, str(hooked), "--crash-on-client", lib.POISON, "--",
            "--redis-url", self.server.url,
            "--namespace", NAMESPACE, "--workers", str(self.args.workers), "--lease", "2",
            "--orphan-grace", "0.5", "--reaper-period", "0.5",
            "--block-timeout", str(self.args.block_timeout), "--grace", "2",
            "--log-level", self.args.log_level,
        ]  # fmt: skip
        log = open(self.args.daemon_log, "ab") if self.args.daemon_log else None  # noqa: SIM115
        self.daemon = subprocess.Popen(command, env=env, stderr=log)

    @property
    def socket_timeout(self) -> float:
        """The daemon's: a freeze longer than this loses replies (Settings.socket_timeout)."""
        return float(self.args.block_timeout) + 10.0

    def client(self, timeout: float = 5.0) -> redis.Redis:
        return make_client(self.server.url, socket_timeout=timeout)

    def frozen_for(self) -> float | None:
        if self.episode is not None and self.episode[0] == "freeze":
            return max(0.0, self.episode[1] - time.monotonic())
        return None

    def produce(self, n: int) -> None:
        frozen = self.frozen_for()
        if frozen is not None and frozen < PRODUCE_TIMEOUT + 0.2:
            return  # it would hold the thaw back
        requests = [lib.random_request(self.rng, n + i, self.args.poison_rate) for i in range(20)]
        batch = new_batch_id()
        tasks = build_tasks(requests, batch, 0.0)
        ids = [t.id for t in tasks]
        self.client_of.update((t.id, t.client) for t in tasks)
        try:
            queue = self.producer()
            report = enqueue(queue.protocol, requests, queue.chunk_size, batch)
        except redis.RedisError as exc:
            self.counts[lib.refusal(exc)] += 1
            self.unknown.append(ids)
            self.unknown_why[ids[0]] = f"{time.strftime('%H:%M:%S')} {exc!r}"
            self.drop_producer()
            return
        self.enqueued.extend(report.ids)

    def producer(self) -> Queue:
        """One connection kept open, so that a produce during a freeze is sent, and runs
        when Redis thaws, after we gave up on its reply (a new connection would not even
        get through redis-py's handshake)."""
        if self.queue is None:
            client = self.client(PRODUCE_TIMEOUT)
            client.ping()
            self.queue = Queue(client, NAMESPACE)
        return self.queue

    def fault(self) -> None:
        assert self.daemon is not None
        workers = lib.children(self.daemon.pid)
        kind = self.rng.choices(list(self.weights), list(self.weights.values()))[0]
        if kind in REDIS_EPISODES and self.episode is not None:
            return  # one Redis episode at a time
        if kind in ("cut", "garbage") and self.episode and self.episode[0] != "memory":
            return  # a frozen or busy Redis would leave us not knowing what was done
        if kind == "kill" and workers:
            os.kill(self.rng.choice(workers), signal.SIGKILL)
            self.counts["kills"] += 1
        elif kind == "stop" and workers:
            pid = self.rng.choice(workers)
            os.kill(pid, signal.SIGSTOP)
            self.stopped[pid] = time.monotonic() + self.rng.uniform(0.5, 4.0)  # past the lease
            self.counts["stops"] += 1
        elif kind == "cut":
            self.cut_connections()
        elif kind == "restart":
            self.restart_redis()
        elif kind == "freeze":
            self.freeze_redis()
        elif kind == "busy":
            self.busy_redis()
        elif kind == "memory":
            self.squeeze_memory()
        elif kind == "garbage":
            self.inject_garbage()

    def drop_producer(self) -> None:
        """Forget a connection a fault has cut, so that the next produce opens a new one."""
        if self.queue is not None:
            self.queue.protocol.client.close()
        self.queue = None

    def cut_connections(self) -> None:
        self.drop_producer()
        try:
            with self.client() as client:
                client.client_kill_filter(_type="normal", skipme=True)
            self.counts["connection cuts"] += 1
        except redis.RedisError:
            pass

    def restart_redis(self) -> None:
        # SIGKILL loses the last second under appendfsync everysec, which blpopq does not
        # promise to survive; SIGTERM makes Redis fsync and exit cleanly.
        self.drop_producer()
        if self.args.appendfsync == "always" and self.rng.random() < 0.5:
            self.server.kill()
            self.server.repair_aof()  # README guarantee 3: what an operator does after a crash
            self.counts["redis kill -9 + restart"] += 1
        else:
            self.server.stop()
            self.counts["redis restarts"] += 1
        self.server.start()

    def freeze_redis(self) -> None:
        """SIGSTOP redis-server; half the time past the daemon's socket timeout."""
        if self.rng.random() < 0.5:
            seconds = self.rng.uniform(2.0, self.socket_timeout - 1.0)
        else:
            seconds = self.rng.uniform(self.socket_timeout + 0.5, self.socket_timeout + 3.0)
            self.counts["freezes past the socket timeout"] += 1
        self.server.signal(signal.SIGSTOP)
        self.episode = ("freeze", time.monotonic() + seconds)
        self.counts["redis freezes"] += 1

    def busy_redis(self) -> None:
        """Another client runs a script for 1-3 s: everyone else gets BUSY meanwhile."""
        micros = int(self.rng.uniform(1.0, 3.0) * 1e6)

        def hog() -> None:
            with contextlib.suppress(redis.RedisError), self.client(30.0) as client:
                client.eval(lib.BUSY_SCRIPT, 0, micros)

        self.busy = threading.Thread(target=hog, daemon=True)
        self.busy.start()
        self.episode = ("busy", time.monotonic() + micros / 1e6)
        self.counts["BUSY episodes"] += 1

    def squeeze_memory(self) -> None:
        """maxmemory a bit below what Redis uses, noeviction, for a few seconds."""
        try:
            with self.client() as client:
                used = int(client.info("memory")["used_memory"])
                client.config_set("maxmemory-policy", "noeviction")
                client.config_set("maxmemory", max(1, used - self.rng.randrange(0, 65536)))
        except redis.RedisError:
            return
        self.episode = ("memory", time.monotonic() + self.rng.uniform(1.0, 5.0))
        self.counts["memory episodes"] += 1

    def inject_garbage(self) -> None:
        """RPUSH foreign items onto tiers, forge a reused id, or write junk into the claims."""
        roll = self.rng.random()
        try:
            with self.client() as client:
                if roll < 0.15:
                    key, item = lib.claim_junk(self.rng)
                    self.push(client.hset, item, self.keys.inflight, key, item.raw)
                elif roll < 0.35:
                    self.forge(client)
                else:
                    for _ in range(self.rng.randrange(1, 4)):
                        item = lib.garbage(self.rng)
                        tier = self.rng.choice(self.keys.tiers)
                        self.push(client.rpush, item, tier, item.raw)
        except redis.RedisError:
            pass

    def push(self, command: Any, item: Any, *args: Any) -> None:
        try:
            command(*args)
        except (redis.ConnectionError, redis.TimeoutError):
            self.foreign.add(item, sure=False)  # sent; whether it ran is unknown
            raise
        except redis.ResponseError as exc:
            self.counts[lib.refusal(exc).replace("produce", "garbage")] += 1
            raise
        self.foreign.add(item)
        self.counts[f"foreign: {item.kind}"] += 1

    def forge(self, client: redis.Redis) -> None:
        for tier in self.rng.sample(self.keys.tiers, len(self.keys.tiers)):
            try:
                copy = client.eval(lib.FORGE_SCRIPT, 2, tier, self.keys.tasks)
            except (redis.ConnectionError, redis.TimeoutError):
                self.counts["forgeries with no reply (not counted)"] += 1
                raise
            if copy:
                self.foreign.add(lib.forged(copy))
                self.counts["foreign: reused id"] += 1
                return

    def end_episode(self, force: bool = False) -> None:
        if self.episode is None:
            return
        kind, until = self.episode
        if kind == "busy" and self.busy is not None:
            self.busy.join(None if force else 0)
            if not self.busy.is_alive():
                self.episode = None
        elif force or time.monotonic() >= until:
            if kind == "freeze":
                self.server.signal(signal.SIGCONT)
                self.episode = None
            elif kind == "memory":
                with contextlib.suppress(redis.RedisError), self.client() as client:
                    client.config_set("maxmemory", 0)
                    self.episode = None

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
            self.end_episode()
            time.sleep(self.rng.uniform(0.05, 0.3))
        self.resume_stopped(force=True)
        for _ in range(100):
            self.end_episode(force=True)
            if self.episode is None:
                break
            time.sleep(0.2)  # a memory episode whose CONFIG SET failed: try again
        return self.settle_and_report()

    def read(self, client: redis.Redis, key: str, into: list[dict[str, Any]]) -> None:
        """Append what ``key`` (a list that only grows) holds past what was read."""
        into.extend(json.loads(raw) for raw in client.lrange(key, len(into), -1))

    def settle_and_report(self) -> int:
        keys = self.keys
        wanted = set(self.enqueued)
        real = wanted.union(*self.unknown)
        results: list[dict[str, Any]] = []
        dead: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.args.drain_timeout
        with self.client(10.0) as client:
            while True:
                with contextlib.suppress(redis.RedisError):
                    self.read(client, keys.results, results)
                    self.read(client, keys.dead, dead)
                    seen = {x.get("id") for x in [*results, *dead]}
                    busy = client.hlen(keys.tasks) + client.hlen(keys.inflight)
                    busy += sum(client.llen(tier) for tier in keys.tiers)
                    if wanted <= seen and busy == 0:
                        break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            foreign, letters = self.foreign.match(dead)
            seen_ids = Counter(x.get("id") for x in [*results, *letters])
            report = self.report(wanted, real, results, letters, foreign, seen_ids, client)
            ok = lib.passed(report)
            if not ok:
                others = [d for d in letters if d.get("id") not in real]
                partial = [c for c in self.unknown if 0 < sum(1 for i in c if seen_ids[i]) < 20]
                missing = {i for c in partial for i in c if not seen_ids[i]}
                for chunk in partial:
                    print(f"partial chunk {self.unknown_why[chunk[0]]}: {chunk}", file=sys.stderr)
                lib.dump(client, self.keys, (wanted - set(seen_ids)) | missing, others)
        pool = lib.children(self.daemon.pid) if self.daemon else []
        report["worker processes at the end"] = len(pool)
        report["daemon stop"] = self.stop_daemon()
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        print(f"seed  {self.args.seed}  ({'ok' if ok else 'FAILED'})")
        return 0 if ok else 1

    def report(
        self,
        wanted: set[str],
        real: set[str],
        results: list[dict[str, Any]],
        letters: list[dict[str, Any]],
        foreign: Counter[str],
        seen: Counter[str | None],
        client: redis.Redis,
    ) -> dict[str, object]:
        wrong = [r for r in results if r["status"] == "ok" and not lib.meets(r)]
        real_letters = [d for d in letters if d.get("id") in real]
        poison = [
            d
            for d in real_letters
            if self.client_of.get(d["id"]) == lib.POISON and POISON_REASON.search(d["reason"])
        ]
        landed = [sum(1 for i in chunk if seen[i]) for chunk in self.unknown]
        return {
            "tasks": len(wanted),
            **dict(sorted(self.counts.items())),
            "failed produces: tasks that landed": sum(landed),
            "failed produces: tasks that did not": sum(len(c) for c in self.unknown) - sum(landed),
            "failed produces: partial chunks": sum(1 for n in landed if 0 < n < 20),
            "results": len(results),
            "dead letters": len(letters) + foreign["foreign dead letters"],
            "dead letters (poison)": len(poison),
            "healthy tasks dead-lettered": len(real_letters) - len(poison),
            "foreign items injected": len(self.foreign.sure),
            "foreign items maybe injected": len(self.foreign.maybe),
            **{k: foreign[k] for k in sorted(foreign)},
            "other dead letters": len(letters) - len(real_letters),
            "results of foreign items": sum(1 for r in results if r.get("id") not in real),
            "lost": len(wanted - set(seen)),
            "duplicated": sum(1 for i in real if seen[i] > 1),
            "wrong results": len(wrong),
            "open tasks left": client.hlen(self.keys.tasks),
            "claims left": client.hlen(self.keys.inflight),
            "daemon": "running" if self.daemon and self.daemon.poll() is None else "EXITED",
        }

    def stop_daemon(self) -> str:
        """SIGTERM, then SIGKILL after 30 s; says which it took."""
        how = "not running"
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                how = f"exited {self.daemon.wait(30)} on SIGTERM"
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                how = "KILLED: still running 30 s after SIGTERM"
        self.server.close()
        return how


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    parser.add_argument("--appendfsync", choices=["always", "everysec"], default="always")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="faults per produce step")
    parser.add_argument("--poison-rate", type=float, default=0.002)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument(
        "--block-timeout", type=float, default=0.5,
        help="the daemon's; its socket timeout is this + 10 s, which half the freezes pass",
    )  # fmt: skip
    parser.add_argument("--daemon-log", help="append the daemon's stderr to this file")
    parser.add_argument("--log-level", default="ERROR", help="the daemon's")
    parser.add_argument(
        "--weights", default="", help=f"override fault weights, e.g. freeze=20 (of {FAULTS})"
    )
    for kind in ("freeze", "busy", "memory", "garbage"):
        parser.add_argument(f"--no-{kind}", action="store_true", help=f"no {kind} faults")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(2**32)
    with tempfile.TemporaryDirectory(prefix="blpopq-chaos-") as directory:
        return Chaos(args, Path(directory)).run()


if __name__ == "__main__":
    sys.exit(main())
