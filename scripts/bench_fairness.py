#!/usr/bin/env python3
"""Fairness under overload: each policy with vip arriving faster than the pool serves.

For each policy (strict, weighted, aging) a private redis-server and a blpopq daemon; this
script produces vip tasks at ``--overload`` times the pool's measured capacity plus a steady
trickle of alto and comun, for ``--seconds``. Per tier it prints the tasks served in that
window, their wait (enqueue to start) p50/p99/max, their share of what was served and the
tasks still waiting at the end; and the total throughput of each policy beside strict's,
measured in the same run (target: weighted and aging cost <= 5 %). Medians of ``--runs``.

    scripts/bench_fairness.py [--runs 3] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _bench as B

NS = "fair"
POLICIES = ("strict", "weighted:vip=6,alto=3,comun=1", "aging:alto=1,comun=2")
DIFFICULTY = 14  # ~16k attempts: a few ms per task on one core, so the pool, not Redis, is full


def requests_for(tier: str, start: int, count: int) -> list[Any]:
    text = "".join(
        f"{tier} {tier[0]}{i} mine {B.prev_of(i)} {DIFFICULTY}\n"
        for i in range(start, start + count)
    )
    return B.parse_requests(text, f"{tier}.txt")


def capacity(url: str, workers: int, tmp: Path) -> float:
    """Tasks/s the pool serves on a vip backlog: what 'faster than the pool' is measured by."""
    from blpopq.producer import enqueue

    client = B.connect(url)
    client.flushall()
    protocol = B.blpopq_protocol(url, NS)
    enqueue(protocol, requests_for("vip", 0, 600), 50_000)
    daemon = B.spawn(B.daemon_command(url, workers, NS), tmp / "capacity.log")
    try:
        first_at, first_n, done_at = B.wait_count(
            lambda: client.llen(protocol.keys.results), 600, alive=B.exited(daemon)
        )
    finally:
        B.stop_process(daemon)
    return (600 - first_n) / max(1e-6, done_at - first_at)


def one_run(url: str, policy: str, args: Any, rate: float, tmp: Path) -> dict[str, Any]:
    from blpopq.producer import enqueue

    client = B.connect(url)
    client.flushall()
    protocol = B.blpopq_protocol(url, NS)
    log = tmp / f"{policy.split(':')[0]}.log"
    daemon = B.spawn(B.daemon_command(url, args.workers, NS, "--policy", policy), log)
    B.wait_idle_workers(client, NS, args.workers)
    step, counts, start = 0.1, {"vip": 0, "alto": 0, "comun": 0}, time.time()
    per_step = {"vip": args.overload * rate * step, "alto": args.trickle * rate * step}
    per_step["comun"] = per_step["alto"]
    owed = dict.fromkeys(counts, 0.0)
    try:
        while (now := time.time()) < start + args.seconds:
            batch: list[Any] = []
            for tier, amount in per_step.items():
                owed[tier] += amount
                whole = int(owed[tier])
                owed[tier] -= whole
                batch += requests_for(tier, counts[tier], whole)
                counts[tier] += whole
            if batch:
                enqueue(protocol, batch, 50_000)
            time.sleep(max(0.0, start + step * (1 + round((now - start) / step)) - time.time()))
        end = time.time()
        waiting = {t: int(client.llen(f"{{{NS}}}:{t}")) for t in counts}
    finally:
        B.stop_process(daemon, sig=0)
    results = [r for r in B.results_span(client, protocol.keys.results)[2] if r["started_at"] < end]
    client.close()
    return summarize(results, waiting, end - start)


def summarize(
    results: list[dict[str, Any]], waiting: dict[str, int], span: float
) -> dict[str, Any]:
    tiers: dict[str, Any] = {}
    for tier in B.TIERS:
        waits = [r["started_at"] - r["enqueued_at"] for r in results if r["tier"] == tier]
        tiers[tier] = {
            "served": len(waits),
            "share": len(waits) / max(1, len(results)),
            "wait_p50": B.percentile(waits, 50) if waits else None,
            "wait_p99": B.percentile(waits, 99) if waits else None,
            "wait_max": max(waits) if waits else None,
            "waiting_at_end": waiting[tier],
        }
    return {"throughput": len(results) / span, "tiers": tiers}


def median_of(runs: list[dict[str, Any]], tier: str | None, key: str) -> float | None:
    values = [r["tiers"][tier][key] if tier else r[key] for r in runs]
    present = [v for v in values if v is not None]
    return B.median(present) if present else None


def report(all_runs: dict[str, list[dict[str, Any]]]) -> list[list[object]]:
    strict = median_of(all_runs["strict"], None, "throughput")
    rows: list[list[object]] = []
    for policy, runs in all_runs.items():
        total = median_of(runs, None, "throughput")
        for tier in B.TIERS:
            cell = [median_of(runs, tier, k) for k in ("wait_p50", "wait_p99", "wait_max")]
            rows.append([
                policy if tier == "vip" else "", tier,
                B.fmt_num(median_of(runs, tier, "served")),
                *("-" if v is None else f"{v:.2f} s" for v in cell),
                f"{median_of(runs, tier, 'share') or 0:.0%}",
                B.fmt_num(median_of(runs, tier, "waiting_at_end")),
                f"{B.fmt_num(total, 1)}/s ({B.fmt_ratio(B.ratio(total, strict))})"
                if tier == "vip" else "",
            ])  # fmt: skip
    return rows


def main() -> int:
    parser = B.base_parser(__doc__.splitlines()[0], runs=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="producing window (10)")
    parser.add_argument("--workers", type=int, default=2, help="daemon workers (2)")
    parser.add_argument("--overload", type=float, default=3.0, help="vip rate / capacity (3)")
    parser.add_argument("--trickle", type=float, default=0.05, help="alto, comun rate each (0.05)")
    args = parser.parse_args()
    payload: dict[str, Any] = {"benchmark": "bench_fairness", "loadavg_before": B.warn_if_busy()}
    with B.private_redis(args.redis_server) as server, tempfile.TemporaryDirectory() as tmp:
        payload["machine"] = B.machine_info(B.connect(server.url))
        rate = capacity(server.url, args.workers, Path(tmp))
        print(
            f"pool capacity: {rate:.0f} tasks/s ({args.workers} workers, difficulty {DIFFICULTY})"
        )
        all_runs: dict[str, list[dict[str, Any]]] = {p: [] for p in POLICIES}
        for run in range(args.runs):
            for policy in POLICIES:  # interleaved: a disturbance hits every policy alike
                all_runs[policy].append(one_run(server.url, policy, args, rate, Path(tmp)))
            print(f"run {run + 1}/{args.runs} done")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload.update(capacity=rate, args=settings, runs=all_runs)
    headers = ["policy", "tier", "served", "wait p50", "p99", "max", "share", "left", "total"]
    B.print_table(
        headers, report(all_runs), f"medians of {args.runs} runs, {args.seconds:g} s each"
    )
    print(f"\nwrote {B.write_json('bench_fairness', payload, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
