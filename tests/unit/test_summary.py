"""collect --summary: numbers per tier and per client, from Result values alone (no Redis)."""

from __future__ import annotations

import csv
import io
import json

from blpopq.outcomes import Result
from blpopq.summary import FIELDS, percentile, render, summarize

PREV = "ab" * 32


def result(
    position: int,
    tier: str = "vip",
    client: str = "ana",
    wait: float = 1.0,
    run: float = 0.5,
    status: str = "ok",
    attempts: int = 10,
) -> Result:
    return Result(
        position=position, id=f"b.{position}", batch="b", source="f", line=position, tier=tier,
        client=client, op="mine", status=status, prev=PREV, difficulty=1, nonce=1, hash="0" * 64,
        blocks=(), attempts=attempts, worker="h:1", enqueued_at=100.0,
        started_at=100.0 + wait, finished_at=100.0 + wait + run,
    )  # fmt: skip


def test_percentile_is_nearest_rank_of_a_real_value() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0
    values = [float(v) for v in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 10.0], 0.99) == 10.0  # of 3 tasks, p99 is the slowest


def test_rows_per_tier_in_priority_order_then_per_client_in_attention_order() -> None:
    results = [
        result(3, "comun", "pedro", wait=3.0, run=0.25, status="invalid", attempts=0),
        result(1, "vip", "ana", wait=1.0, run=0.5),
        result(2, "vip", "ana", wait=2.0, run=1.5, attempts=5),
        result(4, "comun", "pedro", wait=4.0, run=0.75, status="ok", attempts=7),
    ]
    rows = summarize(results)
    assert [(r.group, r.name, r.tasks) for r in rows] == [
        ("tier", "vip", 2), ("tier", "alto", 0), ("tier", "comun", 2),
        ("client", "ana", 2), ("client", "pedro", 2),
    ]  # fmt: skip
    vip, alto, comun = rows[:3]
    assert vip.wait_p50_ms == 1000.0 and vip.wait_p99_ms == 2000.0 and vip.wait_max_ms == 2000.0
    assert vip.run_p50_ms == 500.0 and vip.run_max_ms == 1500.0
    assert vip.attempts == 15 and vip.statuses == (("ok", 2),)
    assert alto.wait_p50_ms is None and alto.attempts == 0 and alto.statuses == ()
    assert comun.statuses == (("invalid", 1), ("ok", 1)) and comun.attempts == 7
    assert rows[4].wait_max_ms == 4000.0


def test_a_tier_blpopq_does_not_know_still_gets_a_row() -> None:
    rows = summarize([result(1, "platino")])
    assert [r.name for r in rows if r.group == "tier"] == ["vip", "alto", "comun", "platino"]


def test_jsonl_and_csv_carry_every_field_and_the_table_fits_80_columns() -> None:
    rows = summarize([result(1), result(2, "alto", "Ópticas_Sol", status="valid")])
    objects = [json.loads(line) for line in render(rows, "jsonl").splitlines()]
    assert [list(o) for o in objects] == [list(FIELDS)] * len(rows)
    assert objects[0]["statuses"] == {"ok": 1} and objects[0]["wait_p50_ms"] == 1000.0
    assert objects[2]["wait_p50_ms"] is None  # comun: no task
    table = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert table[1]["name"] == "alto" and table[1]["statuses"] == "valid=1"
    assert table[1]["run_max_ms"] == "500.0" and table[2]["wait_p99_ms"] == ""
    text = render(rows, "table", width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "Ópticas_Sol" in text and "valid=1" in text and "1000.0" in text
