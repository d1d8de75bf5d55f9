"""Commands scoped to a batch (issue 11, items 3, 4 and 12), as real processes against a
private redis-server: ``--batch last`` names the batch produced most recently (recorded in
Redis by its first chunk), a batch's rows are numbered 1..N in the table and csv while jsonl
keeps the namespace-wide position, ``run`` on a shared namespace reports only its own batch
and says when its pool served others', and every command that reaches Redis names it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from blpopq.embedded import RedisServer

from ..helpers import Daemon, prev_hash, run_cli

SUMMARY = re.compile(r"batch=(\S+)$", re.MULTILINE)


def target(server: RedisServer, namespace: str) -> list[str]:
    return ["--redis-url", server.url, "--namespace", namespace]


def instructions(tmp_path: Path, name: str, tiers: list[str], first: int = 0) -> Path:
    """One easy mine request per tier given, clients c<first>, c<first+1>, ..."""
    path = tmp_path / name
    lines = [f"{t} c{first + n} mine {prev_hash(first + n)} 2" for n, t in enumerate(tiers)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def produce(server: RedisServer, namespace: str, path: Path) -> str:
    done = run_cli("blpopq-produce", str(path), *target(server, namespace))
    assert done.returncode == 0, done.stderr
    match = SUMMARY.search(done.stdout)
    assert match, done.stdout
    return match.group(1)


def collect(server: RedisServer, namespace: str, *args: str) -> tuple[str, str]:
    done = run_cli("blpopq-collect", *args, "--timeout", "60", *target(server, namespace))
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_collect_batch_last_numbers_the_newest_batch_alone(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """``--batch last`` waits for and prints only the batch produced last, numbered 1..N in
    attention order in the table and csv; jsonl keeps the global position; without a batch,
    ``--expect`` counts every batch's results, old ones included."""
    with Daemon("--workers", "1", "--block-timeout", "0.5", *target(redis_server, namespace)):
        older = produce(redis_server, namespace, instructions(tmp_path, "a.txt", ["vip"] * 2))
        collect(redis_server, namespace, "--batch", older, "--expect", "2")
        newest = produce(
            redis_server, namespace, instructions(tmp_path, "b.txt", ["comun", "vip", "alto"], 10)
        )
        table_csv, stderr = collect(
            redis_server, namespace, "--batch", "last", "--expect", "3", "--format", "csv"
        )
    rows = list(csv.DictReader(io.StringIO(table_csv)))
    assert [r["position"] for r in rows] == ["1", "2", "3"], table_csv
    assert [r["client"] for r in rows] == ["c11", "c12", "c10"]  # vip, alto, comun

    lines, _ = collect(redis_server, namespace, "--batch", "last", "--format", "jsonl")
    results = [json.loads(line) for line in lines.splitlines()]
    assert {r["batch"] for r in results} == {newest}
    assert [r["position"] for r in results] == [3, 4, 5]  # after the older batch's 1 and 2

    everything, _ = collect(redis_server, namespace, "--expect", "5", "--format", "jsonl")
    assert [json.loads(line)["position"] for line in everything.splitlines()] == [1, 2, 3, 4, 5]

    table, _ = collect(redis_server, namespace, "--batch", "last")
    numbers = [line.split()[0] for line in table.splitlines()[1:] if not line.startswith("(")]
    assert numbers == ["1", "2", "3"], table
    assert f"Redis {redis_server.url}, namespace {namespace}" in stderr


def test_last_names_no_batch_before_one_is_produced(
    redis_server: RedisServer, namespace: str
) -> None:
    """A clear error, exit 2, for collect and cancel: nothing to guess at."""
    for command in (["blpopq-collect", "--batch", "last"], ["blpopq", "cancel", "last"]):
        done = run_cli(*command, *target(redis_server, namespace))
        assert done.returncode == 2, done.stderr
        assert f"no batch has been produced in namespace {namespace} yet" in done.stderr
        assert "Traceback" not in done.stderr


def test_cancel_last_cancels_the_newest_batch_only(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    older = produce(redis_server, namespace, instructions(tmp_path, "a.txt", ["alto"] * 2))
    newest = produce(redis_server, namespace, instructions(tmp_path, "b.txt", ["vip"] * 3, 5))
    done = run_cli("blpopq", "cancel", "last", *target(redis_server, namespace))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"cancelled 3 waiting tasks of batch {newest}\n"
    lines, _ = collect(redis_server, namespace, "--format", "jsonl")
    assert {(r["batch"], r["status"]) for r in map(json.loads, lines.splitlines())} == {
        (newest, "cancelled")
    }
    done = run_cli("blpopq", "cancel", older, *target(redis_server, namespace))
    assert done.stdout == f"cancelled 2 waiting tasks of batch {older}\n"


def test_run_on_a_shared_namespace_reports_its_own_batch_and_says_it_served_others(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """Another batch waits in the namespace ahead of the run's (same tier, queued first):
    the run's one worker serves it too, prints only its own rows, numbered 1..N, keeps the
    global positions in jsonl, and its summary says how many others' tasks it served."""
    other = produce(redis_server, namespace, instructions(tmp_path, "other.txt", ["vip"] * 3))
    mine = instructions(tmp_path, "mine.txt", ["alto", "vip"], 20)
    common = ["--workers", "1", "--block-timeout", "0.5", *target(redis_server, namespace)]
    done = run_cli("blpopq", "run", str(mine), "--format", "csv", *common)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["position"], r["client"]) for r in rows] == [("1", "c21"), ("2", "c20")]
    assert "also served 3 tasks of other batches queued in namespace" in done.stderr
    assert f"blpopq run: using Redis {redis_server.url}, namespace {namespace}" in done.stderr

    lines, _ = collect(redis_server, namespace, "--batch", other, "--format", "jsonl")
    assert [json.loads(line)["position"] for line in lines.splitlines()] == [1, 2, 3]
    again = run_cli("blpopq", "run", str(mine), "--format", "jsonl", *common)
    assert again.returncode == 0, again.stderr
    assert [json.loads(line)["position"] for line in again.stdout.splitlines()] == [6, 7]
    assert "also served" not in again.stderr  # nothing else was waiting


def test_produce_names_the_redis_and_namespace_it_uses(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    done = run_cli(
        "blpopq-produce", str(instructions(tmp_path, "a.txt", ["vip"])),
        *target(redis_server, namespace),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"blpopq produce: using Redis {redis_server.url}, namespace {namespace}\n"
