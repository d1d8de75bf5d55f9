#!/usr/bin/env python3
"""Proof-of-work speed: the kernel per core, and how a CPU-bound batch scales with workers.

    python scripts/bench_pow.py [--runs 5] [--attempts 1000000] [--tasks 40] [--hashes N]
                                [--kernel auto|native|portable|hashlib]

(a) naive ``hashlib.sha256((prev + str(n)).encode()).digest()`` loop (with the target compare
    a search needs), (b) every kernel (blpopq.kernels: hashlib, and each native path this CPU
    runs) over a range where it cannot succeed, (c) the machine's limit: ``openssl speed -evp
    sha256 -bytes 16`` (one compression per hash, as the kernel's attempts are, plus the EVP
    call overhead) and the raw compression rate (``-bytes 8192``: 129 compressions per
    message); all single-core attempts/s of CPU time.
(d) scaling: ``--tasks`` mine tasks of exactly ``--hashes`` attempts each (difficulty 64 with
    ``--max-attempts`` = hashes: every task ends ``exhausted`` after the same work) through
    blpopq-daemon with 1 and 2 workers on a private redis-server (from enqueue to the last
    result's finished_at, pool already idle in BLPOP), against ``multiprocessing.Pool`` calling
    ``blpopq.pow.mine`` directly (pool already started, from map() to its return), both on
    ``--kernel`` (auto; tasks of 5 M attempts on a native kernel, 50,000 on hashlib).

Prints a table and writes bench-results/bench_pow.json. Every figure is a median of --runs.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _bench as B

from blpopq import kernels
from blpopq import pow as kernel

PREV = B.prev_of(0)
NEVER = 256  # a digest below 2**0 = 1: all 32 bytes zero; never happens
SCALE_DIFFICULTY = 64  # not met within 50,000 attempts (odds ~ 50000 / 2**64)


# --- (a)-(c) per core ---------------------------------------------------------------------------


def naive_rate(attempts: int) -> float:
    target = (1 << (256 - NEVER)).to_bytes(32, "big")  # the compare the kernel does
    prev = PREV
    sha256 = hashlib.sha256
    start = time.thread_time()
    for n in range(attempts):
        digest = sha256((prev + str(n)).encode()).digest()
        if digest < target:
            break
    return attempts / (time.thread_time() - start)


def kernel_rate(kernel: kernels.Kernel, attempts: int) -> float:
    start = time.thread_time()
    found = kernel.search(PREV, NEVER, 0, attempts)
    elapsed = time.thread_time() - start
    if found is not None:
        raise B.BenchError("search found a nonce at difficulty 256?")
    return attempts / elapsed


_OPENSSL_DOING = re.compile(r"(\d+) sha256's in ([\d.]+)s")
_OPENSSL_TABLE = re.compile(r"^sha256\s+([\d.]+)k", re.MULTILINE)


def openssl_rate(seconds: int, size: int) -> float:
    """SHA-256 compressions/s of ``openssl speed`` on ``size``-byte messages: 16 bytes is one
    compression per message (with the EVP call overhead), 8192 bytes 129 (the raw rate)."""
    blocks = size // 64 + 1
    out = subprocess.run(
        ["openssl", "speed", "-evp", "sha256", "-bytes", str(size), "-seconds", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds * 5 + 30,
    )
    text = out.stdout + "\n" + out.stderr
    match = _OPENSSL_DOING.search(text)
    if match:
        return int(match.group(1)) * blocks / float(match.group(2))
    match = _OPENSSL_TABLE.search(text)
    if match:  # "The 'numbers' are in 1000s of bytes per second processed."
        return float(match.group(1)) * 1000 / size * blocks
    raise B.BenchError(f"cannot parse `openssl speed` output: {text[-300:]!r}")


# --- (d) scaling --------------------------------------------------------------------------------


def _mine_one(args: tuple[str, int, str]) -> tuple[int, float]:
    prev, hashes, name = args
    chosen = kernels.by_name(name)
    start = time.perf_counter()
    outcome = kernel.mine(
        prev, SCALE_DIFFICULTY, 1, max_attempts=hashes, chunk=chosen.chunk, search=chosen.search
    )
    return outcome.attempts, time.perf_counter() - start


class PoolRunner:
    """A started multiprocessing.Pool running the batch with pow.mine directly (no queue)."""

    def __init__(self, workers: int, work: list[tuple[str, int, str]]) -> None:
        self.work = work
        self.task_ms: list[float] = []  # mean time in mine() per task, per run
        self.pool = multiprocessing.get_context("fork").Pool(workers)
        self.pool.map(_mine_one, [(PREV, 1000, "hashlib")] * workers, chunksize=1)  # started

    def run(self) -> float:
        start = time.time()
        done = self.pool.map(_mine_one, self.work, chunksize=1)
        elapsed = time.time() - start
        attempts = sum(a for a, _ in done)
        if attempts != sum(h for _, h, _ in self.work):
            raise B.BenchError(f"Pool computed {attempts} attempts, not the planned work")
        self.task_ms.append(sum(t for _, t in done) / len(done) * 1000)
        return elapsed

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


class DaemonRunner:
    """A started, idle blpopq-daemon on a private Redis; each run enqueues the whole batch."""

    def __init__(
        self, url: str, workers: int, text: str, hashes: int, log: Path, kernel_name: str
    ) -> None:
        self.workers = workers
        self.log = log
        self.client = B.connect(url)
        self.client.flushall()
        # Difficulty 64 only makes every task end exhausted after --max-attempts: the work
        # is bounded by that, not by the 2**64 the producer's --max-work check expects.
        self.requests = B.parse_requests(text, max_difficulty=SCALE_DIFFICULTY, max_work=2**70)
        self.protocol = B.blpopq_protocol(url)
        self.daemon = B.spawn(
            B.daemon_command(
                url, workers, "blpopq", "--max-attempts", str(hashes), "--kernel", kernel_name
            ),
            log,
        )
        self.checks: dict[str, Any] = {}
        self.diagnostics: list[dict[str, float]] = []
        try:
            B.wait_idle_workers(self.client, "blpopq", workers)
        except B.BenchError as exc:
            self.close()
            raise B.BenchError(f"{exc}; daemon log: {B.tail(log)}") from None

    def run(self) -> float:
        from blpopq.producer import enqueue

        results_key = self.protocol.keys.results
        self.client.delete(results_key)
        try:
            start = time.time()
            enqueue(self.protocol, self.requests, 50_000)
            B.wait_count(
                lambda: self.client.llen(results_key),
                len(self.requests),
                interval=0.005,
                alive=B.exited(self.daemon),
            )
            _, finished, results = B.results_span(self.client, results_key)
            B.wait_idle_workers(self.client, "blpopq", self.workers)
        except B.BenchError as exc:
            raise B.BenchError(f"{exc}; daemon log: {B.tail(self.log)}") from None
        self.checks = {
            "statuses": sorted({r["status"] for r in results}),
            "attempts": sum(r["attempts"] for r in results),
            "workers_used": len({r["worker"] for r in results}),
        }
        self.diagnostics.append(_where_time_goes(results, start))
        return finished - start

    def close(self) -> None:
        B.stop_process(self.daemon)
        self.protocol.client.close()
        self.client.close()


def _where_time_goes(results: list[dict[str, Any]], start: float) -> dict[str, float]:
    """From the results' timestamps: time in mine() per task, the gap between one task's
    finish and the same worker's next start, the first task's wait, and the tail (how long
    the last worker ran alone)."""
    per_worker: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(results, key=lambda r: r["started_at"]):
        per_worker.setdefault(r["worker"], []).append(r)
    gaps = [
        b["started_at"] - a["finished_at"]
        for done in per_worker.values()
        for a, b in zip(done, done[1:], strict=False)
    ]
    last = [done[-1]["finished_at"] for done in per_worker.values()]
    return {
        "task_ms": sum(r["finished_at"] - r["started_at"] for r in results) / len(results) * 1e3,
        "gap_ms": sum(gaps) / len(gaps) * 1e3 if gaps else 0.0,
        "first_start_ms": (min(r["started_at"] for r in results) - start) * 1e3,
        "tail_ms": (max(last) - min(last)) * 1e3,
    }


# --- main ---------------------------------------------------------------------------------------


PER_CORE_NOTE = (
    "attempts/s of one thread's CPU time (openssl speed reports CPU time too), so other jobs "
    "on the machine shift every figure alike"
)


def per_core(args: argparse.Namespace) -> tuple[dict[str, Any], list[list[str]]]:
    """Median attempts/s of every kernel and of openssl, runs interleaved so that drift in
    machine load hits every figure alike; ratios of the best native path to each."""
    names = ["hashlib", *reversed(kernels.native_paths())]  # slowest first
    runs: dict[str, list[float]] = {name: [] for name in ["naive", *names]}
    ossl: dict[str, list[float]] = {"openssl16": [], "compression": []}
    note = None if shutil.which("openssl") else "openssl not on PATH: machine limit skipped"
    for _ in range(args.runs):
        runs["naive"].append(naive_rate(args.attempts))
        for name in names:
            kernel = kernels.by_name(name)
            runs[name].append(kernel_rate(kernel, max(args.attempts, 40 * kernel.chunk)))
        if note is None:
            try:
                ossl["openssl16"].append(openssl_rate(args.openssl_seconds, 16))
                ossl["compression"].append(openssl_rate(args.openssl_seconds, 8192))
            except (B.BenchError, subprocess.SubprocessError, OSError) as exc:
                note, ossl = f"openssl failed: {exc}", {"openssl16": [], "compression": []}
    med = {k: B.median(v) for k, v in {**runs, **ossl}.items() if v}
    top = names[-1]
    figures: dict[str, Any] = {
        k: {"runs": v, "median": med.get(k), "best": B.best(v) if v else None}
        for k, v in {**runs, **ossl}.items()
    }
    figures.update(
        best_kernel=top,
        note=note,
        native_over_compression=B.ratio(med[top], med.get("compression")),
        native_over_openssl16=B.ratio(med[top], med.get("openssl16")),
        native_over_hashlib=B.ratio(med[top], med["hashlib"]),
        hashlib_over_naive=B.ratio(med["hashlib"], med["naive"]),
        targets={"native_over_compression": 0.7, "native_over_hashlib": 6.0},
    )
    labels = {
        "naive": "naive sha256((prev+str(n)).encode()) loop",
        "hashlib": "hashlib kernel (blpopq.pow.search)",
        "portable": "native, portable C (--kernel portable)",
        "sha-ni-1": "native, SHA-NI, one stream",
        "sha-ni": "native, SHA-NI, two interleaved streams",
        "openssl16": "openssl speed -evp sha256 -bytes 16",
        "compression": "raw compression: openssl -bytes 8192, blocks/s",
    }
    rows = [
        [labels[k], B.fmt_num(med.get(k)), B.spread(v),
         B.fmt_ratio(B.ratio(med.get(k), med.get("compression"))),
         B.fmt_ratio(B.ratio(med.get(k), med["hashlib"]))]
        for k, v in {**runs, **ossl}.items()
    ]  # fmt: skip
    return figures, rows


def main() -> int:
    parser = B.base_parser(__doc__.splitlines()[0], runs=5)
    parser.add_argument("--attempts", type=int, default=1_000_000, help="per-core run (1e6)")
    parser.add_argument("--openssl-seconds", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=40, help="scaling batch: tasks (40)")
    parser.add_argument("--hashes", type=int, help="attempts per task (50000; 5e6 native)")
    parser.add_argument("--kernel", default="auto", choices=kernels.SETTINGS, help="scaling")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()

    load = B.warn_if_busy()
    print(f"per-core attempts/s, median of {args.runs} runs ...")
    cpu = B.MachineCpu()
    figures, rows = per_core(args)
    cpu_text, cores = cpu.describe()
    figures["machine_cpu"] = cores
    B.print_table(
        ["single core", "median/s", "spread", "/compression", "/hashlib"],
        rows,
        title=f"Per-core hashing ({PER_CORE_NOTE}; spread = (max - min) / median)",
    )
    print(cpu_text)
    ratio = figures["native_over_compression"]
    print(
        f"targets (medians): {figures['best_kernel']} / raw compression = {ratio or 0:.2f} "
        f">= 0.70: {B.verdict(ratio, 0.7)}; / hashlib = "
        f"{figures['native_over_hashlib'] or 0:.2f} >= 6: "
        f"{B.verdict(figures['native_over_hashlib'], 6.0)}"
    )
    payload: dict[str, Any] = {
        "benchmark": "bench_pow",
        "runs": args.runs,
        "attempts_per_run": args.attempts,
        "per_core": figures,
        "loadavg_before": load,
    }
    if not args.skip_scaling:
        payload["scaling"] = scaling(args)
    with B.private_redis(args.redis_server) as server:
        payload["machine"] = B.machine_info(B.connect(server.url))
    path = B.write_json("bench_pow", payload, args.json)
    print(f"\nwrote {path}")
    return 0


def scaling(args: argparse.Namespace) -> dict[str, Any]:
    name = kernels.select_kernel(args.kernel).name
    if args.hashes is None:  # tasks long enough that the queue's per-task cost does not dominate
        args.hashes = 50_000 if name == "hashlib" else 5_000_000
    total = args.tasks * args.hashes
    print(
        f"\nscaling: {args.tasks} tasks x {args.hashes:,} attempts = {total:,} hashes, "
        f"median of {args.runs} runs ..."
    )
    work = [(B.prev_of(i), args.hashes, name) for i in range(args.tasks)]
    text = B.instruction_text(args.tasks, SCALE_DIFFICULTY)
    seconds: dict[str, list[float]] = {}
    checks: dict[str, Any] = {}
    diagnostics: dict[str, dict[str, float]] = {}
    cpu = B.MachineCpu()
    with B.private_redis(args.redis_server) as server, tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            # Both started and idle; runs alternate so that drift in machine load hits both.
            pool = PoolRunner(workers, work)
            log = Path(tmp) / f"daemon-{workers}.log"
            try:
                daemon = DaemonRunner(server.url, workers, text, args.hashes, log, args.kernel)
            except B.BenchError:
                pool.close()
                raise
            try:
                for _ in range(args.runs):
                    seconds.setdefault(f"pool_{workers}", []).append(pool.run())
                    seconds.setdefault(f"blpopq_{workers}", []).append(daemon.run())
                checks[f"blpopq_{workers}"] = daemon.checks
                diagnostics[f"blpopq_{workers}"] = {
                    k: B.median([d[k] for d in daemon.diagnostics]) for k in daemon.diagnostics[0]
                }
                diagnostics[f"pool_{workers}"] = {"task_ms": B.median(pool.task_ms)}
            finally:
                daemon.close()
                pool.close()
    cpu_text, cores = cpu.describe()
    med = {k: B.median(v) for k, v in seconds.items()}
    top = {k: B.best(v, high=False) for k, v in seconds.items()}
    rate = {k: total / v for k, v in med.items()}
    speed = {key: B.ratio(med[f"{key}_1"], med[f"{key}_2"]) for key in ("blpopq", "pool")}
    speed_best = {key: B.ratio(top[f"{key}_1"], top[f"{key}_2"]) for key in ("blpopq", "pool")}
    of_pool = {w: B.ratio(med[f"pool_{w}"], med[f"blpopq_{w}"]) for w in (1, 2)}
    of_pool_best = {w: B.ratio(top[f"pool_{w}"], top[f"blpopq_{w}"]) for w in (1, 2)}
    rows = []
    for workers in (1, 2):
        for name, key in (("multiprocessing.Pool + pow.mine", "pool"), ("blpopq-daemon", "blpopq")):
            k = f"{key}_{workers}"
            two = workers == 2
            rows.append(
                [
                    name,
                    workers,
                    f"{med[k]:.3f}",
                    f"{top[k]:.3f}",
                    B.spread(seconds[k]),
                    B.fmt_num(rate[k]),
                    f"{B.fmt_ratio(speed[key])} ({B.fmt_ratio(speed_best[key])})" if two else "",
                    f"{B.fmt_ratio(of_pool[workers])} ({B.fmt_ratio(of_pool_best[workers])})"
                    if key == "blpopq"
                    else "",
                ]
            )
    B.print_table(
        ["system", "workers", "median s", "best s", "spread", "hashes/s", "1->2 (best)",
         "blpopq/Pool (best)"],
        rows,
        title="Scaling of a CPU-bound batch (enqueue -> last result; Pool: map() call)",
    )  # fmt: skip
    print(cpu_text)
    for w in (1, 2):
        d = diagnostics[f"blpopq_{w}"]
        print(
            f"blpopq({w}) where time goes (medians): mine() {d['task_ms']:.2f} ms/task "
            f"(Pool: {diagnostics[f'pool_{w}']['task_ms']:.2f}); gap finish -> next start "
            f"{d['gap_ms']:.3f} ms; enqueue -> first start {d['first_start_ms']:.2f} ms; "
            f"tail {d['tail_ms']:.1f} ms"
        )
    print(
        f"targets (medians): blpopq 1->2 = {speed['blpopq'] or 0:.3f} >= 1.90: "
        f"{B.verdict(speed['blpopq'], 1.9)} (Pool itself: {speed['pool'] or 0:.3f}); "
        f"blpopq(2) / Pool(2) = {of_pool[2] or 0:.3f} >= 0.97: {B.verdict(of_pool[2], 0.97)}"
    )
    return {
        "tasks": args.tasks,
        "attempts_per_task": args.hashes,
        "kernel": name,
        "difficulty": SCALE_DIFFICULTY,
        "seconds": seconds,
        "median_seconds": med,
        "best_seconds": top,
        "hashes_per_second": rate,
        "speedup_1_to_2": speed,
        "speedup_1_to_2_best": speed_best,
        "blpopq_over_pool": {str(w): v for w, v in of_pool.items()},
        "blpopq_over_pool_best": {str(w): v for w, v in of_pool_best.items()},
        "machine_cpu": cores,
        "targets": {"speedup_1_to_2": 1.9, "blpopq_over_pool_2": 0.97},
        "checks": checks,
        "diagnostics": diagnostics,
    }


if __name__ == "__main__":
    sys.exit(main())
