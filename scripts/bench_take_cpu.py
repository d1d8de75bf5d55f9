#!/usr/bin/env python3
"""Redis CPU per take, from INFO commandstats: what a worker's take costs the server.

    python scripts/bench_take_cpu.py [--tasks 20000] [--runs 5] [--redis-server PATH]

Starts a private redis-server (blpopq.embedded.RedisServer, unix socket only: never any other
Redis). For each kind of task it fills the tiers with --tasks of them, resets the server's
statistics, takes them all with ``Protocol.take`` (take.lua: pop, classify, number, claim),
and reads ``cmdstat_evalsha`` (the script's time inside Redis, in microseconds) from
INFO commandstats. The kinds:

  produced  tasks as blpopq's producer writes them (enqueue.lua: registered)
  minimal   tasks RPUSHed by another client with only client, op, prev, difficulty, count
            (not registered; their id is given by the take)

Prints the median over --runs of usec per take, for each kind.
"""

from __future__ import annotations

import argparse
import json
import statistics

import redis

from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.instructions import Request
from blpopq.producer import enqueue
from blpopq.protocol import Keyspace, Protocol
from blpopq.tiers import TIERS

WORKER = "bench-host:1"
PREV = "ab" * 32


def fill_produced(protocol: Protocol, count: int) -> None:
    requests = [
        Request(TIERS[n % 3], f"client{n % 50}", "mine", PREV, 20, 1, None, "bench.txt", n + 1)
        for n in range(count)
    ]
    enqueue(protocol, requests, 50_000)


def fill_minimal(protocol: Protocol, count: int) -> None:
    with protocol.client.pipeline(transaction=False) as pipe:
        for n in range(count):
            body = {"client": f"client{n % 50}", "op": "mine", "prev": PREV, "difficulty": 20}
            pipe.rpush(protocol.keys.tier(TIERS[n % 3]), json.dumps(body))
        pipe.execute()


def usec_per_take(client: redis.Redis, protocol: Protocol, fill: str, count: int) -> float:
    client.flushall()
    protocol.heartbeat(WORKER, "join", lease=3600)
    protocol.open_session(WORKER)
    (fill_produced if fill == "produced" else fill_minimal)(protocol, count)
    client.config_resetstat()
    taken = 0
    while protocol.take(WORKER) is not None:
        taken += 1
    assert taken == count, (taken, count)
    stats = client.info("commandstats")["cmdstat_evalsha"]
    # The last take found every tier empty: count it among the calls, it is one too.
    return float(stats["usec"]) / float(stats["calls"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--redis-server", default=None)
    args = parser.parse_args()
    server = RedisServer(binary=args.redis_server)
    server.start()
    try:
        client = make_client(server.url)
        protocol = Protocol(client, Keyspace("bench"))
        info = client.info("server")
        print(f"redis {info['redis_version']}, {args.tasks} tasks, median of {args.runs} runs")
        for fill in ("produced", "minimal"):
            runs = [usec_per_take(client, protocol, fill, args.tasks) for _ in range(args.runs)]
            spread = (max(runs) - min(runs)) / statistics.median(runs)
            print(
                f"{fill:<9} {statistics.median(runs):6.2f} usec of Redis CPU per take "
                f"(spread {spread:.0%})"
            )
        client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
