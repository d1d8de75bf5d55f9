"""``blpopq-collect --summary`` on real results: a daemon serves a small batch on a private
redis-server, and the summary's counts, statuses and times agree with the results it read."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from blpopq.embedded import RedisServer

from ..helpers import Daemon, prev_hash, run_cli
from .test_batches import collect, produce, target


def test_summary_counts_each_tier_and_client_of_the_batch(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    lines = [
        f"vip ana mine {prev_hash(1)} 2",
        f"vip ana mine {prev_hash(2)} 3 2",
        f"alto luis mine {prev_hash(3)} 1",
        f"comun pedro verify {prev_hash(4)} 5 1",
    ]
    path = tmp_path / "four.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Daemon("--workers", "1", "--block-timeout", "0.5", *target(redis_server, namespace)):
        produce(redis_server, namespace, path)
        results_jsonl, _ = collect(
            redis_server, namespace, "--batch", "last", "--expect", "4", "--format", "jsonl"
        )
    results = [json.loads(line) for line in results_jsonl.splitlines()]
    out, _ = collect(redis_server, namespace, "--batch", "last", "--summary", "--format", "jsonl")
    rows = {(r["group"], r["name"]): r for r in map(json.loads, out.splitlines())}
    assert list(rows) == [
        ("tier", "vip"), ("tier", "alto"), ("tier", "comun"),
        ("client", "ana"), ("client", "luis"), ("client", "pedro"),
    ]  # fmt: skip
    assert [rows["tier", t]["tasks"] for t in ("vip", "alto", "comun")] == [2, 1, 1]
    assert rows["tier", "vip"]["statuses"] == {"ok": 2}
    [verify] = [r for r in results if r["op"] == "verify"]
    assert rows["client", "pedro"]["statuses"] == {verify["status"]: 1}
    vip = [r for r in results if r["tier"] == "vip"]
    assert rows["tier", "vip"]["attempts"] == sum(r["attempts"] for r in vip)
    longest_wait = max((r["started_at"] - r["enqueued_at"]) * 1000 for r in vip)
    assert abs(rows["tier", "vip"]["wait_max_ms"] - longest_wait) < 0.01

    scope = ("--batch", "last", "--summary")
    table_csv, _ = collect(redis_server, namespace, *scope, "--format", "csv")
    names = [r["name"] for r in csv.DictReader(io.StringIO(table_csv))]
    assert names[:3] == ["vip", "alto", "comun"]
    table, _ = collect(redis_server, namespace, "--batch", "last", "--summary")
    assert table.splitlines()[0].split()[:3] == ["group", "name", "tasks"]
    assert "ok=2" in table


def test_summary_refuses_follow_and_drain(redis_server: RedisServer, namespace: str) -> None:
    for flag in ("--follow", "--drain"):
        done = run_cli("blpopq-collect", "--summary", flag, *target(redis_server, namespace))
        assert done.returncode == 2, done.stderr
        assert f"cannot be given {flag}" in done.stderr and "Traceback" not in done.stderr
