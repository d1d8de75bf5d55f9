"""Pure parts of producing and collecting: task building, priority chunks, rendering."""

from __future__ import annotations

import csv
import io
import json

from blpopq.collector import COLUMNS, attention_order, render, summary
from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.outcomes import Result
from blpopq.producer import build_tasks, chunks, priority_order
from blpopq.tiers import TIERS, Tier

PREV = "cd" * 32


def req(tier: Tier, line: int) -> Request:
    return Request(tier, f"c{line}", "mine", PREV, 1, 1, None, "f.txt", line)


def result(position: int, tier: str = "vip", status: str = "ok") -> Result:
    return Result(
        position=position, id=f"b.{position}", batch="b", source="f", line=position, tier=tier,
        client="ana", op="mine", status=status, prev=PREV, difficulty=1, nonce=3, hash="0" * 64,
        blocks=({"nonce": 3, "hash": "0" * 64},), attempts=4, worker="h:1",
        enqueued_at=10.0, started_at=10.5, finished_at=10.75,
    )  # fmt: skip


def test_tasks_get_ids_in_file_order_and_priority_order_is_stable() -> None:
    reqs = [req(Tier.COMUN, 1), req(Tier.VIP, 2), req(Tier.ALTO, 3), req(Tier.VIP, 4)]
    tasks = build_tasks(reqs, "b", 5.0)
    assert [t.id for t in tasks] == ["b.1", "b.2", "b.3", "b.4"]
    assert all(Task.from_json(t.to_json()) == t for t in tasks)
    ordered = priority_order(tasks)
    assert [(t.tier, t.line) for t in ordered] == [
        (Tier.VIP, 2), (Tier.VIP, 4), (Tier.ALTO, 3), (Tier.COMUN, 1),
    ]  # fmt: skip


def test_chunks_cover_every_task_once_in_order_grouped_by_tier() -> None:
    reqs = [req(TIERS[n % 3], n) for n in range(10)]
    ordered = priority_order(build_tasks(reqs, "b", 0.0))
    pieces = list(chunks(ordered, 4))
    assert [sum(len(v) for _, v in piece) for piece in pieces] == [4, 4, 2]
    flat = [Task.from_json(raw) for piece in pieces for _, pairs in piece for _, raw in pairs]
    assert flat == ordered
    for piece in pieces:
        for tier, pairs in piece:
            assert {Task.from_json(raw).tier for _, raw in pairs} == {tier}
            assert all(Task.from_json(raw).id == task_id for task_id, raw in pairs)


def test_attention_order_sorts_by_position() -> None:
    assert [r.position for r in attention_order([result(3), result(1), result(2)])] == [1, 2, 3]


def test_render_formats() -> None:
    rows = [result(1), result(2, "alto", "invalid")]
    table = render(rows, "table", width=200).splitlines()
    assert table[0].split() == list(COLUMNS) and len(table) == 3
    assert "invalid" in table[2] and table[1].split()[-2:] == ["500.0", "250.0"]
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert [p["position"] for p in parsed] == ["1", "2"] and parsed[0]["wait_ms"] == "500.0"
    lines = render(rows, "jsonl").splitlines()
    assert [json.loads(line)["position"] for line in lines] == [1, 2]
    assert render(rows, "table", header=False).count("\n") == 2


def test_summary_counts_per_tier_and_statuses() -> None:
    text = summary([result(1), result(2, "comun", "exhausted")], [])
    assert "vip: 1 served, mean wait 500.0 ms" in text
    assert "alto: 0 served" in text and "exhausted=1" in text and "dead letters: 0" in text
