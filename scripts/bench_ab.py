#!/usr/bin/env python3
"""Two checkouts of blpopq, paired: the daemon of each in turn (A B, then B A, ...), same Redis.

    python scripts/bench_ab.py OLD_TREE NEW_TREE [--pairs 4] [--part throughput|latency]

Each pair runs bench_queue.py's throughput (1 and 2 workers, steady tasks/s) or idle latency
(wait and round trip, p50 and p99 of 200 samples) for both trees, alternating which goes
first, with the raw BLPOP+RPUSH loop once per pair beside them. Prints each pair's NEW / OLD
ratio and the medians. A tree is a directory holding a blpopq/ package (a git worktree:
`git worktree add /tmp/old <commit>`, with the native kernel built or copied into it).

Only the daemons differ: the producing side (bench_queue's enqueue, in this process) is the
blpopq this interpreter imports, the same for both. The daemons run with PYTHONPATH set to
the tree and their working directory outside both:
`python -m blpopq` puts the working directory first on sys.path, so a daemon started from
inside a checkout runs that checkout's code whatever PYTHONPATH says.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import _bench as B
import bench_queue as Q


def _tree(path: str) -> str:
    tree = Path(path).resolve()
    if not (tree / "blpopq" / "__init__.py").is_file():
        raise SystemExit(f"{tree}: no blpopq package there")
    return str(tree)


def _one(part: str, url: str, tmp: Path, workers: int) -> dict[str, float]:
    if part == "throughput":
        text = B.instruction_text(20_000, 0)
        return {"steady": Q.blpopq_throughput(url, workers, text, tmp / "d.log")["steady"]}
    sample = Q.latency_blpopq(url, 200, tmp / "d.log")
    return _percentiles(sample)


def _raw(part: str, url: str, tmp: Path, workers: int) -> dict[str, float]:
    count = 20_000 if part == "throughput" else 1
    tasks = B.blpopq_task_jsons(B.parse_requests(B.instruction_text(count, 0)))
    if part == "throughput":
        return {"steady": Q.raw_throughput(url, workers, tasks, tmp / "r.log")["steady"]}
    return _percentiles(Q.latency_raw(url, 200, tasks[0], tmp / "r.log"))


def _percentiles(sample: dict[str, list[float]]) -> dict[str, float]:
    return {
        f"{metric} p{q} ms": B.percentile(sample[metric], q) * 1000
        for metric in ("wait", "round_trip")
        for q in (50, 99)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--part", choices=("throughput", "latency"), default="throughput")
    parser.add_argument("--redis-server", default=None)
    args = parser.parse_args()
    trees = {"old": _tree(args.old), "new": _tree(args.new)}
    os.chdir(tempfile.gettempdir())  # outside both trees: see the module's docstring
    worker_counts = (1, 2) if args.part == "throughput" else (2,)
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    with B.private_redis(args.redis_server) as server, tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            for workers in worker_counts:
                order = ["old", "new"] if pair % 2 == 0 else ["new", "old"]
                for name in order:
                    os.environ["PYTHONPATH"] = trees[name]
                    runs.setdefault((name, workers), []).append(
                        _one(args.part, server.url, Path(tmp), workers)
                    )
                os.environ.pop("PYTHONPATH", None)
                runs.setdefault(("raw", workers), []).append(
                    _raw(args.part, server.url, Path(tmp), workers)
                )
                print(f"pair {pair + 1}/{args.pairs}, {workers} worker(s) done", flush=True)
    _report(runs, worker_counts)
    return 0


def _report(runs: dict[tuple[str, int], list[dict[str, float]]], worker_counts: Any) -> None:
    for workers in worker_counts:
        for metric in runs[("old", workers)][0]:
            old = [r[metric] for r in runs[("old", workers)]]
            new = [r[metric] for r in runs[("new", workers)]]
            raw = [r[metric] for r in runs[("raw", workers)]]
            pairs = ", ".join(f"{n / o:.3f}" for n, o in zip(new, old, strict=True))
            print(
                f"{workers} worker(s) {metric}: old {statistics.median(old):,.3f}, "
                f"new {statistics.median(new):,.3f}, raw {statistics.median(raw):,.3f}; "
                f"new/old per pair: {pairs}"
            )


if __name__ == "__main__":
    sys.exit(main())
