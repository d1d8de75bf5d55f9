#!/usr/bin/env python3
"""Produce in bounded memory: peak RSS and rate of `blpopq-produce` on a big file.

    python scripts/bench_produce.py [--lines 1000000] [--runs 3] [--chunk-size N]

Writes a --lines instruction file (tiers round-robin, mine at difficulty 20), starts a
private redis-server, and runs, --runs times each, alternating, two processes against it:

  blpopq     `blpopq-produce FILE` (its own process, as a user runs it): check the file a
             line at a time, spool it by tier, enqueue chunk by chunk (enqueue.lua)
  raw        a Python process that reads the same file line by line and pushes the same
             task JSON with one RPUSH per task in a redis-py pipeline, 10,000 per round trip
             (no validation, no registration, no atomicity: the floor of what produce costs)

Peak memory is each process's own maximum resident set (os.wait4's ru_maxrss), so it counts
the interpreter and its imports too. The server is flushed between runs. Prints medians and
the blpopq/raw rate ratio; writes bench-results/bench_produce.json.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _bench as B

RAW_PRODUCER = r"""
import json, sys, time, redis
url, path = sys.argv[1], sys.argv[2]
client = redis.Redis.from_url(url, socket_timeout=60)
batch, at, n = "20260101T000000-0000000000000000", time.time(), 0
pipe = client.pipeline(transaction=False)
with open(path, encoding="utf-8") as lines:
    for number, line in enumerate(lines, start=1):
        tier, name, op, prev, difficulty = line.split()
        n += 1
        task = {"v": 1, "id": f"{batch}.{n}", "batch": batch, "tier": tier, "client": name,
                "op": op, "prev": prev, "difficulty": int(difficulty), "count": 1,
                "nonce": None, "source": path, "line": number, "enqueued_at": at}
        pipe.rpush("raw:" + tier, json.dumps(task, ensure_ascii=False, separators=(",", ":")))
        if n % 10000 == 0:
            pipe.execute()
pipe.execute()
"""


def measured(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process run to its end; BenchError if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise B.BenchError(f"{command[0]} exited {proc.returncode}: {stderr[-600:]}")
    return elapsed, usage.ru_maxrss / 1024  # KB on Linux


def write_file(path: Path, lines: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, lines, 100_000):
            out.write(B.instruction_text(min(100_000, lines - start), 20, start))


def main() -> int:
    parser = B.base_parser(__doc__.splitlines()[1], runs=3)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, help="produce's --chunk-size (its default)")
    args = parser.parse_args()
    busy = B.warn_if_busy()
    with tempfile.TemporaryDirectory() as tmp, B.private_redis(args.redis_server) as server:
        path = Path(tmp) / "instrucciones.txt"
        write_file(path, args.lines)
        client = B.connect(server.url)
        bin_dir = Path(sys.executable).parent
        blpopq = [str(bin_dir / "blpopq-produce"), str(path), "--redis-url", server.url]
        blpopq += ["--chunk-size", str(args.chunk_size)] if args.chunk_size else []
        raw = [sys.executable, "-c", RAW_PRODUCER, server.url, str(path)]
        runs: dict[str, list[tuple[float, float]]] = {"blpopq": [], "raw": []}
        for _ in range(args.runs):
            for name, command in (("blpopq", blpopq), ("raw", raw)):
                client.flushall()
                runs[name].append(measured(command))
                queued = sum(int(client.llen(k)) for k in _lists(client))
                if queued != args.lines:
                    raise B.BenchError(f"{name} left {queued} of {args.lines} tasks queued")
        machine = B.machine_info(client)
        client.flushall()
    return report(args, runs, machine, busy)


def _lists(client: Any) -> list[bytes]:
    return [k for k in client.keys("*") if client.type(k) == b"list"]


def report(args: Any, runs: dict[str, list[tuple[float, float]]], machine: Any, busy: Any) -> int:
    med = {
        name: (B.median([s for s, _ in r]), B.median([m for _, m in r])) for name, r in runs.items()
    }
    rate = {name: args.lines / seconds for name, (seconds, _) in med.items()}
    ratio = B.ratio(rate["blpopq"], rate["raw"])
    B.print_table(
        ["producer", "seconds", "tasks/s", "peak RSS MB", "blpopq / raw (rate)"],
        [
            [name, f"{seconds:.2f}", B.fmt_num(rate[name]), f"{mb:.0f}",
             B.fmt_ratio(ratio) if name == "blpopq" else ""]
            for name, (seconds, mb) in med.items()
        ],
        title=f"Produce, {args.lines:,} lines (medians of {args.runs})",
    )  # fmt: skip
    print(f"targets: peak RSS <= 150 MB: {B.verdict(150 / med['blpopq'][1], 1.0)}; "
          f"rate >= 0.5x raw: {B.verdict(ratio, 0.5)}")  # fmt: skip
    B.write_json(
        "bench_produce",
        {"lines": args.lines, "runs": runs, "medians": med, "rates": rate, "ratio": ratio,
         "machine": machine, "load_before": busy},
        args.json,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
