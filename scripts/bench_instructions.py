#!/usr/bin/env python3
"""Instructions per no-op task, counted by valgrind: a code comparison that VM noise cannot move.

    python scripts/bench_instructions.py TREE [TREE ...] [--tasks 1000] [--part worker,redis]

Timings on a shared VM drift by 10-30 % between runs (bench_ab.py pairs them, and still needs
many pairs to see a 5 % change). Instructions executed do not drift: the same code on the
same input runs the same instructions, so a change of a few percent shows at once. What they
leave out is as important: the kernel's side of every syscall (valgrind counts user space
only), cache misses and waits. Use them to compare code, timings to claim speed.

For each TREE (a directory holding a blpopq/ package: a checkout, or a `git worktree` with
the native kernel built or copied in):

  worker  one blpopq Worker in a process run under `valgrind --tool=callgrind`, serving
          no-op tasks (mine at difficulty 0) from a private redis-server: the process's
          instructions for --tasks tasks, less those of a run of a few tasks (start-up,
          enqueue and shutdown cancel out), per task. valgrind runs no SHA extensions, so
          the native kernel takes its portable path here: its few thousand instructions
          per task are part of the count.
  redis   a private redis-server run under callgrind, sent --tasks finish.lua calls (write
          a result, take the next task: a busy worker's one call per task) by a client in
          this tree; the server's instructions per call, by the same difference.

Needs valgrind (Debian: `apt install valgrind`). Prints a table (the first TREE is the base
of the ratios) and writes bench-results/bench_instructions.json.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _bench as B
import redis

FEW = 100  # tasks of the run whose count is subtracted
NS = "blpopq"
WORKER = "bench-host:1"
RESULT = (
    '{"position":1,"id":"20261206T000000-0123456789abcdef.1","batch":"20261206T000000-'
    '0123456789abcdef","source":"bench.txt","line":1,"tier":"vip","client":"c0","op":"mine",'
    '"status":"ok","prev":"' + "ab" * 32 + '","difficulty":0,"nonce":0,"hash":"' + "cd" * 32
    + '","blocks":[],"attempts":1,"worker":"host:1","enqueued_at":1796594011.0962524,'
    '"started_at":1796594011.1,"finished_at":1796594011.2,"error":null}'
)  # fmt: skip


# --- the children: run with PYTHONPATH=TREE, cwd outside every checkout ----------------------


def _imported_from(tree: str) -> None:
    import blpopq

    where = Path(blpopq.__file__).resolve()
    if not where.is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"blpopq imported from {where}, not from {tree}")


def worker_child(url: str, tree: str, tasks: int, total: int) -> None:
    """Serve exactly ``tasks`` no-op tasks of ``total`` enqueued ones in this process."""
    _imported_from(tree)
    from blpopq.config import Settings
    from blpopq.producer import enqueue
    from blpopq.stopping import StopFlag
    from blpopq.worker import Worker

    B.connect(url).flushall()
    protocol = B.blpopq_protocol(url, NS)
    enqueue(protocol, B.parse_requests(B.instruction_text(total, 0)), 50_000)
    settings = Settings(redis_url=url, namespace=NS, workers=1, block_timeout=0.05)
    stop = StopFlag(settings.grace)
    finished, done = Worker._finished, [0]

    def counted(self: Worker, *args: Any) -> Any:  # stop after exactly `tasks`: no poller
        done[0] += 1
        if done[0] >= tasks:
            stop.request()
        return finished(self, *args)

    Worker._finished = counted  # type: ignore[method-assign, assignment]
    Worker(settings, stop, WORKER).serve()


def redis_child(url: str, tree: str, tasks: int, total: int) -> None:
    """Enqueue ``total`` tasks, take one, then ``tasks`` finish.lua calls (settle + take)."""
    _imported_from(tree)
    from blpopq.producer import enqueue

    protocol = B.blpopq_protocol(url, NS)
    enqueue(protocol, B.parse_requests(B.instruction_text(total, 0)), 50_000)
    protocol.heartbeat(WORKER, "join", 60, 0.0)
    taken = protocol.take(WORKER)
    for _ in range(tasks):
        assert taken is not None
        written, taken = protocol.settle_and_take(WORKER, taken.key, taken.position, RESULT)
        assert written


# --- the parent ---------------------------------------------------------------------------


def _total_instructions(path: Path) -> int:
    """The Ir total of a callgrind output file (its `summary:` or `totals:` line)."""
    text = path.read_text(errors="replace")
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if found is None:
        raise B.BenchError(f"no instruction total in {path}")
    return int(found.group(1))


def _child(part: str, url: str, tree: str, tasks: int, total: int) -> list[str]:
    script = str(Path(__file__).resolve())
    return [sys.executable, script, f"{part}-child", url, tree, str(tasks), str(total)]


def _env(tree: str) -> dict[str, str]:
    # A fixed hash seed: str hashes, hence dict probes, are then the same run after run.
    return {**os.environ, "PYTHONPATH": str(Path(tree).resolve()), "PYTHONHASHSEED": "0"}


def count_worker(tree: str, tasks: int, tmp: Path) -> float:
    counts = []
    with B.private_redis() as server:
        for n in (FEW, FEW + tasks):
            out = tmp / f"worker.{n}.out"
            valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            command = valgrind + _child("worker", server.url, tree, n, FEW + tasks + 10)
            _run(command, tree, tmp)
            counts.append(_total_instructions(out))
    return (counts[1] - counts[0]) / tasks


def count_redis(tree: str, tasks: int, tmp: Path) -> float:
    counts = []
    for n in (FEW, FEW + tasks):
        port = B.loopback_port()
        out = tmp / f"redis.{n}.out"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "redis-server",
             "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        try:
            _wait_ping(url, server)
            _run(_child("redis", url, tree, n, FEW + tasks + 10), tree, tmp)
            redis.Redis.from_url(url).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection as it exits
        finally:
            server.wait(60)
        counts.append(_total_instructions(out))
    return (counts[1] - counts[0]) / tasks


def _wait_ping(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # valgrind starts redis-server slowly
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise B.BenchError("redis-server under valgrind exited at start")
        try:
            redis.Redis.from_url(url, socket_timeout=5).ping()
            return
        except redis.ConnectionError:
            time.sleep(0.2)
    raise B.BenchError("redis-server under valgrind did not answer within 60 s")


def _run(command: list[str], tree: str, cwd: Path) -> None:
    done = subprocess.run(command, env=_env(tree), cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise B.BenchError(f"{' '.join(command[:4])}...: {done.stderr[-1500:]}")


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] in ("worker-child", "redis-child"):
        child = worker_child if sys.argv[1] == "worker-child" else redis_child
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="checkouts to compare (the first: the base)")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks counted (1000)")
    parser.add_argument("--part", default="worker,redis", help="worker, redis or both")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("needs valgrind (Debian: apt install valgrind)", file=sys.stderr)
        return 2
    parts = [p for p in args.part.split(",") if p]
    counters = {"worker": count_worker, "redis": count_redis}
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        for tree in args.trees:
            rows[tree] = {p: counters[p](tree, args.tasks, Path(tmp)) for p in parts}
            print(f"{tree}: " + ", ".join(f"{p} {rows[tree][p]:,.0f}" for p in parts))
    base = rows[args.trees[0]]
    headers = ["tree"] + [f"{p} instructions/task" for p in parts] + [f"{p} / base" for p in parts]
    table = [
        [tree, *(f"{row[p]:,.0f}" for p in parts), *(f"{row[p] / base[p]:.3f}" for p in parts)]
        for tree, row in rows.items()
    ]
    B.print_table(headers, table, f"Instructions per no-op task (valgrind, {args.tasks:,} tasks)")
    B.write_json("bench_instructions", {"tasks": args.tasks, "per_task": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
