#!/usr/bin/env python3
"""Queue overhead with no-op tasks (mine at difficulty 0: one hash), against raw redis-py.

    python scripts/bench_queue.py [--runs 5] [--tasks 20000] [--produce-lines 100000]
                                  [--latency-samples 200] [--only throughput,produce,...]

(a) throughput: --tasks tasks produced into a private redis-server first, then blpopq-daemon
    with 1 and 2 workers is started and timed until LLEN {ns}:results reaches --tasks.
    Baseline in the same run: as many raw worker processes, each a one-by-one BLPOP + RPUSH
    loop over a list pre-filled with the same task JSON (json.loads, one sha256, json.dumps of
    a small result). Two figures each: "wall" (from starting the processes, so it includes
    their start-up) and "steady" (earliest started_at to latest finished_at in the results),
    and redis-server's CPU per task beside them (INFO used_cpu_sys+user over the whole run:
    the daemon's start-up and the poller's LLEN included).
(b) produce: a --produce-lines instruction file through blpopq-produce's library path (read +
    decode + parse, then blpopq.producer.enqueue), each part timed, against a redis-py
    pipeline of one RPUSH per task with json.dumps of an equivalent dict.
(c) latency on an idle 2-worker pool: single tasks enqueued one at a time; wait =
    started_at - enqueued_at of each result (p50, p99), beside a raw BLPOP worker pair.
(d) profile: one blpopq Worker in this process under cProfile over no-op tasks: top costs
    and Redis round trips per task (once, diagnostic; not a median).

Prints tables and writes bench-results/bench_queue.json. Every figure is a median of --runs.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _bench as B

NS = "blpopq"
RAW_SRC, RAW_DST = "raw:tasks", "raw:results"


# --- (a) throughput ---------------------------------------------------------------------------


def blpopq_throughput(url: str, workers: int, text: str, log: Path) -> dict[str, Any]:
    from blpopq.producer import enqueue

    client = B.connect(url)
    client.flushall()
    protocol = B.blpopq_protocol(url, NS)
    requests = B.parse_requests(text)
    enqueue(protocol, requests, 50_000)
    protocol.client.close()
    results_key = protocol.keys.results
    before, cpu_before = B.command_stats(client), _redis_cpu(client)
    start = time.time()
    daemon = B.spawn(B.daemon_command(url, workers, NS), log)
    try:
        first_at, first_n, done_at = B.wait_count(
            lambda: client.llen(results_key), len(requests), alive=B.exited(daemon)
        )
    except B.BenchError as exc:
        raise B.BenchError(f"{exc}; daemon log: {B.tail(log)}") from None
    finally:
        B.stop_process(daemon)
    redis_cpu = _redis_cpu(client) - cpu_before
    stats = B.stats_delta(before, B.command_stats(client))
    began, finished, results = B.results_span(client, results_key)
    client.close()
    n = len(requests)
    return {
        "wall": n / (done_at - start),
        "steady": n / (finished - began),
        "redis_cpu_us": redis_cpu / n * 1e6,
        "statuses": sorted({r["status"] for r in results}),
        "commands_per_task": {k: round(v / n, 3) for k, v in stats.items()},
    }


def raw_throughput(url: str, workers: int, task_jsons: list[str], log: Path) -> dict[str, Any]:
    client = B.connect(url)
    client.flushall()
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(task_jsons), 10_000):
            pipe.rpush(RAW_SRC, *task_jsons[start : start + 10_000])
        pipe.rpush(RAW_SRC, *[B.STOP] * workers)
        pipe.execute()
    cpu_before = _redis_cpu(client)
    start = time.time()
    procs = [B.spawn(B.raw_worker_command(url, RAW_SRC, RAW_DST), log) for _ in range(workers)]
    try:
        _, _, done_at = B.wait_count(lambda: client.llen(RAW_DST), len(task_jsons))
        for proc in procs:
            proc.wait(30)
    except B.BenchError as exc:
        raise B.BenchError(f"raw workers: {exc}; log: {B.tail(log)}") from None
    finally:
        for proc in procs:
            B.stop_process(proc)
    redis_cpu = _redis_cpu(client) - cpu_before
    began, finished, _ = B.results_span(client, RAW_DST)
    client.close()
    n = len(task_jsons)
    return {
        "wall": n / (done_at - start),
        "steady": n / (finished - began),
        "redis_cpu_us": redis_cpu / n * 1e6,
    }


def throughput(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    n = args.tasks
    print(f"(a) throughput: {n:,} no-op tasks, 1 and 2 workers, {args.runs} runs ...")
    text = B.instruction_text(n, 0)
    task_jsons = B.blpopq_task_jsons(B.parse_requests(text))
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.runs):
        for workers in (1, 2):
            runs.setdefault(f"blpopq_{workers}", []).append(
                blpopq_throughput(url, workers, text, tmp / "daemon.log")
            )
            runs.setdefault(f"raw_{workers}", []).append(
                raw_throughput(url, workers, task_jsons, tmp / "raw.log")
            )
    med = {
        key: {m: B.median([r[m] for r in rs]) for m in ("wall", "steady", "redis_cpu_us")}
        for key, rs in runs.items()
    }
    rows = []
    for workers in (1, 2):
        b, r = med[f"blpopq_{workers}"], med[f"raw_{workers}"]
        rows.append(
            [
                workers,
                B.fmt_num(b["wall"]),
                B.fmt_num(r["wall"]),
                B.fmt_ratio(B.ratio(b["wall"], r["wall"])),
                B.fmt_num(b["steady"]),
                B.fmt_num(r["steady"]),
                B.fmt_ratio(B.ratio(b["steady"], r["steady"])),
                f"{b['redis_cpu_us']:.1f} / {r['redis_cpu_us']:.1f}",
                B.fmt_ratio(B.ratio(b["redis_cpu_us"], r["redis_cpu_us"])),
            ]
        )
    B.print_table(
        ["workers", "blpopq wall/s", "raw wall/s", "ratio", "blpopq steady/s", "raw steady/s",
         "ratio", "Redis CPU us/task", "ratio"],
        rows,
        title=(
            f"(a) Throughput, {n:,} no-op tasks (tasks/s; ratio = blpopq / raw BLPOP+RPUSH;"
            " Redis CPU = used_cpu_sys+user over the run, blpopq / raw)"
        ),
    )  # fmt: skip
    commands = runs["blpopq_2"][-1]["commands_per_task"]
    print(
        "    Redis commands per task (blpopq, 2 workers, last run; includes commands run inside"
        " Lua and the poller's LLEN): "
        + ", ".join(f"{k}={v}" for k, v in list(commands.items())[:12])
    )
    return {
        "tasks": n,
        "runs": runs,
        "median": med,
        "ratio_wall": {
            w: B.ratio(med[f"blpopq_{w}"]["wall"], med[f"raw_{w}"]["wall"]) for w in (1, 2)
        },
        "ratio_steady": {
            w: B.ratio(med[f"blpopq_{w}"]["steady"], med[f"raw_{w}"]["steady"]) for w in (1, 2)
        },
        "ratio_redis_cpu": {
            w: B.ratio(med[f"blpopq_{w}"]["redis_cpu_us"], med[f"raw_{w}"]["redis_cpu_us"])
            for w in (1, 2)
        },
    }


# --- (b) produce ------------------------------------------------------------------------------


def produce_blpopq(url: str, path: Path) -> dict[str, float]:
    from blpopq.cli.common import read_requests
    from blpopq.producer import enqueue

    client = B.connect(url)
    client.flushall()
    protocol = B.blpopq_protocol(url, NS)
    t0 = B.clock()
    requests = read_requests(str(path), "text", 32)
    t1 = B.clock()
    report = enqueue(protocol, requests, 50_000)
    t2 = B.clock()
    queued = sum(client.llen(k) for k in protocol.keys.tiers)
    protocol.client.close()
    client.close()
    if queued != len(requests) or len(report.ids) != len(requests):
        raise B.BenchError(f"blpopq enqueued {queued} of {len(requests)} tasks")
    return {"parse": t1 - t0, "enqueue": t2 - t1, "total": t2 - t0}


def produce_raw(url: str, rows: list[tuple[str, str, str, int, int]]) -> float:
    """One RPUSH per task in a redis-py pipeline, encoding an equivalent dict per task."""
    client = B.connect(url)
    client.flushall()
    dumps = json.dumps
    batch = "20260101T000000-000000"
    t0 = B.clock()
    enqueued_at = time.time()
    with client.pipeline(transaction=False) as pipe:
        for n, (tier, name, prev, difficulty, line) in enumerate(rows, start=1):
            body = {
                "v": 1, "id": f"{batch}.{n}", "batch": batch, "tier": tier, "client": name,
                "op": "mine", "prev": prev, "difficulty": difficulty, "count": 1, "nonce": None,
                "source": "bench.txt", "line": line, "enqueued_at": enqueued_at,
            }  # fmt: skip
            pipe.rpush(f"raw:{tier}", dumps(body, ensure_ascii=False, separators=(",", ":")))
        pipe.execute()
    elapsed = B.clock() - t0
    queued = sum(client.llen(f"raw:{t}") for t in B.TIERS)
    client.close()
    if queued != len(rows):
        raise B.BenchError(f"raw pipeline enqueued {queued} of {len(rows)} tasks")
    return elapsed


def produce(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    n = args.produce_lines
    print(f"(b) produce: {n:,}-line instruction file, {args.runs} runs ...")
    path = tmp / "instrucciones.txt"
    path.write_text(B.instruction_text(n, 0))
    rows = [(B.TIERS[i % 3], f"c{i}", B.prev_of(i), 0, i + 1) for i in range(n)]
    blpopq_runs, raw_runs = [], []
    for _ in range(args.runs):
        blpopq_runs.append(produce_blpopq(url, path))
        raw_runs.append(produce_raw(url, rows))
    B.connect(url).flushall()
    med = {part: B.median([r[part] for r in blpopq_runs]) for part in ("parse", "enqueue", "total")}
    raw = B.median(raw_runs)
    rate = {part: n / s for part, s in med.items()}
    raw_rate = n / raw
    B.print_table(
        ["step", "seconds", "tasks/s", "raw pipeline tasks/s", "blpopq / raw"],
        [
            ["blpopq parse (read+decode+parse)", f"{med['parse']:.3f}", B.fmt_num(rate["parse"]),
             "", ""],
            ["blpopq enqueue (tasks+JSON+MULTI/EXEC)", f"{med['enqueue']:.3f}",
             B.fmt_num(rate["enqueue"]), B.fmt_num(raw_rate),
             B.fmt_ratio(B.ratio(rate["enqueue"], raw_rate))],
            ["blpopq parse + enqueue", f"{med['total']:.3f}", B.fmt_num(rate["total"]),
             B.fmt_num(raw_rate), B.fmt_ratio(B.ratio(rate["total"], raw_rate))],
            ["raw: json.dumps + pipelined RPUSH", f"{raw:.3f}", B.fmt_num(raw_rate), "", ""],
        ],
        title=f"(b) Produce, {n:,} requests",
    )  # fmt: skip
    return {
        "lines": n,
        "blpopq_seconds": blpopq_runs,
        "raw_seconds": raw_runs,
        "median_seconds": {**med, "raw": raw},
        "tasks_per_second": {**rate, "raw": raw_rate},
        "ratio_enqueue_over_raw": B.ratio(rate["enqueue"], raw_rate),
        "ratio_total_over_raw": B.ratio(rate["total"], raw_rate),
    }


# --- (c) latency ------------------------------------------------------------------------------


def _pause() -> None:
    time.sleep(random.uniform(0.01, 0.02))  # let the pool settle back into BLPOP


def latency_blpopq(url: str, samples: int, log: Path) -> dict[str, list[float]]:
    from blpopq.producer import enqueue

    client = B.connect(url)
    client.flushall()
    protocol = B.blpopq_protocol(url, NS)
    requests = B.parse_requests(B.instruction_text(1, 0))
    daemon = B.spawn(B.daemon_command(url, 2, NS), log)
    waits, round_trips, enqueue_calls = [], [], []
    try:
        B.wait_idle_workers(client, NS, 2)
        for _ in range(samples):
            _pause()
            t0 = time.time()
            enqueue(protocol, requests, 50_000)
            t1 = time.time()
            popped = client.blpop([protocol.keys.results], timeout=30)
            t2 = time.time()
            if popped is None:
                raise B.BenchError(f"no result within 30 s; daemon log: {B.tail(log)}")
            result = json.loads(popped[1])
            waits.append(result["started_at"] - result["enqueued_at"])
            round_trips.append(t2 - t0)
            enqueue_calls.append(t1 - t0)
    finally:
        B.stop_process(daemon)
        protocol.client.close()
        client.close()
    return {"wait": waits, "round_trip": round_trips, "enqueue_call": enqueue_calls}


def latency_raw(url: str, samples: int, task_json: str, log: Path) -> dict[str, list[float]]:
    client = B.connect(url)
    client.flushall()
    procs = [B.spawn(B.raw_worker_command(url, RAW_SRC, RAW_DST), log) for _ in range(2)]
    task = json.loads(task_json)
    waits, round_trips, enqueue_calls = [], [], []
    try:
        deadline = time.monotonic() + 30
        while len([c for c in client.client_list() if c.get("cmd") == "blpop"]) < 2:
            if time.monotonic() > deadline:
                raise B.BenchError(f"raw workers not idle; log: {B.tail(log)}")
            time.sleep(0.02)
        for _ in range(samples):
            _pause()
            t0 = time.time()
            task["enqueued_at"] = t0
            client.rpush(RAW_SRC, json.dumps(task, separators=(",", ":")))
            t1 = time.time()
            popped = client.blpop([RAW_DST], timeout=30)
            t2 = time.time()
            if popped is None:
                raise B.BenchError(f"raw: no result within 30 s; log: {B.tail(log)}")
            result = json.loads(popped[1])
            waits.append(result["started_at"] - result["enqueued_at"])
            round_trips.append(t2 - t0)
            enqueue_calls.append(t1 - t0)
        client.rpush(RAW_SRC, B.STOP, B.STOP)
        for proc in procs:
            proc.wait(10)
    finally:
        for proc in procs:
            B.stop_process(proc)
        client.close()
    return {"wait": waits, "round_trip": round_trips, "enqueue_call": enqueue_calls}


def latency(url: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    samples = args.latency_samples
    print(f"(c) latency: {samples} single tasks on an idle 2-worker pool, {args.runs} runs ...")
    task_json = B.blpopq_task_jsons(B.parse_requests(B.instruction_text(1, 0)))[0]
    per_run: dict[str, list[dict[str, float]]] = {"blpopq": [], "raw": []}
    for _ in range(args.runs):
        for name, sample in (
            ("blpopq", latency_blpopq(url, samples, tmp / "daemon.log")),
            ("raw", latency_raw(url, samples, task_json, tmp / "raw.log")),
        ):
            per_run[name].append(
                {
                    f"{metric}_{q}": B.percentile(values, q) * 1000
                    for metric, values in sample.items()
                    for q in (50, 99)
                }
            )
    med = {
        name: {k: B.median([r[k] for r in runs]) for k in runs[0]} for name, runs in per_run.items()
    }
    rows = []
    labels = {
        "wait": "wait: started_at - enqueued_at",
        "enqueue_call": "producer call (enqueue / RPUSH)",
        "round_trip": "client round trip to result",
    }
    for metric, label in labels.items():
        for q in (50, 99):
            key = f"{metric}_{q}"
            b, r = med["blpopq"][key], med["raw"][key]
            rows.append([f"{label} p{q}", f"{b:.3f}", f"{r:.3f}", B.fmt_ratio(B.ratio(b, r))])
    B.print_table(
        ["ms (median of runs)", "blpopq", "raw BLPOP", "blpopq / raw"],
        rows,
        title=f"(c) Latency on an idle 2-worker pool ({samples} samples per run)",
    )
    return {"samples_per_run": samples, "runs_ms": per_run, "median_ms": med}


# --- (d) profile ------------------------------------------------------------------------------


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _worker_pass(url: str, n: int, prof: cProfile.Profile | None = None) -> dict[str, Any]:
    """``n`` no-op tasks through one blpopq Worker running in this thread (under ``prof``)."""
    from blpopq.config import Settings
    from blpopq.producer import enqueue
    from blpopq.stopping import StopFlag
    from blpopq.worker import Worker

    client = B.connect(url)
    client.flushall()
    protocol = B.blpopq_protocol(url, NS)
    enqueue(protocol, B.parse_requests(B.instruction_text(n, 0)), 50_000)
    results_key = protocol.keys.results
    protocol.client.close()
    settings = Settings(redis_url=url, namespace=NS, workers=1, block_timeout=0.05)
    stop = StopFlag(settings.grace)
    watcher = B.connect(url)

    def watch() -> None:
        with contextlib.suppress(B.BenchError):
            B.wait_count(lambda: watcher.llen(results_key), n, interval=0.02)
        stop.request()

    thread = threading.Thread(target=watch, daemon=True)
    before, redis_cpu = B.command_stats(client), _redis_cpu(client)
    cpu = time.process_time()
    thread.start()
    if prof is not None:
        prof.enable()
    Worker(settings, stop).serve()
    if prof is not None:
        prof.disable()
    cpu = time.process_time() - cpu
    redis_cpu = _redis_cpu(client) - redis_cpu
    thread.join(5)
    commands = B.stats_delta(before, B.command_stats(client))
    began, finished, results = B.results_span(client, results_key)
    client.close()
    watcher.close()
    done = len(results)
    return {
        "done": done,
        "wall_us": (finished - began) / done * 1e6,
        "worker_cpu_us": cpu / done * 1e6,
        "redis_cpu_us": redis_cpu / done * 1e6,
        "commands": {k: v / done for k, v in commands.items()},
    }


def _raw_pass(url: str, n: int) -> dict[str, Any]:
    """The same tasks through the raw BLPOP + RPUSH loop, in this thread."""
    client = B.connect(url)
    client.flushall()
    task_jsons = B.blpopq_task_jsons(B.parse_requests(B.instruction_text(n, 0)))
    client.rpush(RAW_SRC, *task_jsons, B.STOP)
    redis_cpu = _redis_cpu(client)
    cpu = time.process_time()
    B.raw_worker(url, RAW_SRC, RAW_DST)
    cpu = time.process_time() - cpu
    redis_cpu = _redis_cpu(client) - redis_cpu
    began, finished, results = B.results_span(client, RAW_DST)
    client.close()
    done = len(results)
    return {
        "done": done,
        "wall_us": (finished - began) / done * 1e6,
        "worker_cpu_us": cpu / done * 1e6,
        "redis_cpu_us": redis_cpu / done * 1e6,
    }


def profile(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Where a no-op task's time goes: one worker in this process, then under cProfile."""
    n = args.profile_tasks
    print(f"(d) per-task costs: one in-process worker, {n:,} no-op tasks, {args.runs} runs ...")
    passes: dict[str, list[dict[str, Any]]] = {"blpopq": [], "raw": []}
    for _ in range(args.runs):
        passes["blpopq"].append(_worker_pass(url, n))
        passes["raw"].append(_raw_pass(url, n))
    metrics = ("wall_us", "worker_cpu_us", "redis_cpu_us")
    costs = {
        name: {m: B.median([r[m] for r in runs]) for m in metrics} for name, runs in passes.items()
    }
    labels = {
        "wall_us": "wall per task (first start -> last finish)",
        "worker_cpu_us": "worker process CPU per task",
        "redis_cpu_us": "redis-server CPU per task",
    }
    B.print_table(
        ["us per task (1 worker, median)", "blpopq", "raw", "blpopq - raw"],
        [
            [label, f"{costs['blpopq'][m]:.1f}", f"{costs['raw'][m]:.1f}",
             f"{costs['blpopq'][m] - costs['raw'][m]:+.1f}"]
            for m, label in labels.items()
        ],
        title="(d) Where a no-op task's time goes",
    )  # fmt: skip

    prof = cProfile.Profile()
    profiled = _worker_pass(url, n, prof)
    done = profiled["done"]
    stats_delta = {k: v * done for k, v in profiled["commands"].items()}
    stats = pstats.Stats(prof)
    raw_stats: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    round_trips = sum(
        v[1]
        for (file, _, func), v in raw_stats.items()
        if func == "read_response" and file.replace("\\", "/").endswith("redis/connection.py")
    )
    sends = sum(
        v[1]
        for (file, _, func), v in raw_stats.items()
        if func == "send_packed_command" and file.replace("\\", "/").endswith("redis/connection.py")
    )
    total_tt = sum(v[2] for v in raw_stats.values())
    elapsed = total_tt
    top = sorted(raw_stats.items(), key=lambda kv: -kv[1][2])[: args.profile_top]
    top_rows = [
        {
            "function": f"{Path(file).name}:{line}({func})",
            "calls_per_task": round(v[1] / done, 2),
            "tottime_us_per_task": round(v[2] / done * 1e6, 2),
            "share": round(v[2] / total_tt, 4) if total_tt else None,
        }
        for (file, line, func), v in top
    ]
    cumulative = io.StringIO()
    pstats.Stats(prof, stream=cumulative).sort_stats("cumulative").print_stats(25)
    B.print_table(
        ["function (by own time)", "calls/task", "us/task", "share"],
        [
            [r["function"], r["calls_per_task"], r["tottime_us_per_task"], f"{r['share']:.1%}"]
            for r in top_rows
        ],
        title=(
            f"(d) cProfile of one worker: {done:,} tasks, {elapsed:.2f} s profiled "
            f"({elapsed / max(done, 1) * 1e6:.0f} us/task); redis-py round trips/task "
            f"{round_trips / max(done, 1):.2f} (sends {sends / max(done, 1):.2f})"
        ),
    )
    print(
        "    Redis commands per task (commands inside Lua scripts counted too): "
        + ", ".join(f"{k}={v / max(done, 1):.2f}" for k, v in list(stats_delta.items())[:12])
    )
    return {
        "tasks": n,
        "per_task_us": costs,
        "passes": passes,
        "done": done,
        "seconds_under_profiler": elapsed,
        "round_trips_per_task": round_trips / max(done, 1),
        "sends_per_task": sends / max(done, 1),
        "redis_commands_per_task": {k: v / max(done, 1) for k, v in stats_delta.items()},
        "top_by_tottime": top_rows,
        "cumulative_text": cumulative.getvalue().splitlines()[:60],
    }


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = B.base_parser(__doc__.splitlines()[0], runs=5)
    parser.add_argument("--tasks", type=int, default=20_000, help="throughput tasks (20000)")
    parser.add_argument("--produce-lines", type=int, default=100_000)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--profile-tasks", type=int, default=5_000)
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument(
        "--only",
        default="throughput,produce,latency,profile",
        help="comma-separated parts to run (throughput,produce,latency,profile)",
    )
    args = parser.parse_args()
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    payload: dict[str, Any] = {
        "benchmark": "bench_queue",
        "runs": args.runs,
        "loadavg_before": B.warn_if_busy(),
    }
    steps = {"throughput": throughput, "produce": produce, "latency": latency}
    with B.private_redis(args.redis_server) as server, tempfile.TemporaryDirectory() as tmp:
        payload["machine"] = B.machine_info(B.connect(server.url))
        print(f"private redis-server {payload['machine']['redis_server']} at {server.url}")
        for name, step in steps.items():
            if name in parts:
                cpu = B.MachineCpu()
                payload[name] = step(server.url, args, Path(tmp))
                text, payload[name]["machine_cpu"] = cpu.describe()
                print(f"    {text}")
        if "profile" in parts:
            cpu = B.MachineCpu()
            try:
                payload["profile"] = profile(server.url, args)
            except Exception as exc:  # noqa: BLE001 - diagnostic only; report, do not crash
                print(f"(d) profile failed: {type(exc).__name__}: {exc}")
                payload["profile"] = {"failed": f"{type(exc).__name__}: {exc}"}
            text, payload["profile"]["machine_cpu"] = cpu.describe()
            print(f"    {text}")
    path = B.write_json("bench_queue", payload, args.json)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
