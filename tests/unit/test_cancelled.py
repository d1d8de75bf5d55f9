"""A `cancelled` result (issue 11, item 5): what it holds, and that it is no failure for `run`."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest

from blpopq.cancelling import CANCEL_WORKER, cancelled_result
from blpopq.cli.run import _report
from blpopq.collector import Outcomes
from blpopq.errors import EXIT_OK, EXIT_TASK_FAILED
from blpopq.messages import Task
from blpopq.outcomes import CANCELLED, RESULT_FIELDS
from blpopq.pow import Block, Progress
from blpopq.tiers import Tier


def task(progress: Progress | None = None) -> Task:
    return Task(
        Tier.ALTO, "acme", "mine", "0" * 64, 1, 2, None, "f.txt", 3,
        id="b.3", batch="b", enqueued_at=10.0, progress=progress,
    )  # fmt: skip


def test_a_cancelled_result_has_every_field_and_begins_with_its_position() -> None:
    result = cancelled_result(task(), now=12.5)
    text = result.to_json()
    assert text.startswith('{"position":0,')  # cancel.lua numbers it there
    body = json.loads(text)
    assert list(body) == list(RESULT_FIELDS)
    assert body["status"] == CANCELLED and body["worker"] == CANCEL_WORKER
    assert (body["nonce"], body["hash"], body["blocks"], body["attempts"]) == (None, None, [], 0)
    assert (body["enqueued_at"], body["started_at"], body["finished_at"]) == (10.0, 12.5, 12.5)
    assert (body["id"], body["batch"], body["tier"], body["line"]) == ("b.3", "b", "alto", 3)


def test_a_task_put_back_with_progress_keeps_its_blocks_and_attempts() -> None:
    progress = Progress((Block(7, "ab" * 32),), 99, 0)
    result = cancelled_result(task(progress), now=11.0)
    assert result.blocks == ({"nonce": 7, "hash": "ab" * 32},) and result.attempts == 99


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["cancelled"], EXIT_OK),
        (["ok", "cancelled", "invalid"], EXIT_OK),
        (["cancelled", "error"], EXIT_TASK_FAILED),
    ],
)
def test_run_exits_0_with_cancelled_tasks_unless_another_failed(
    statuses: list[str], expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    base = cancelled_result(task(), now=11.0)
    results = [replace(base, status=s, position=i) for i, s in enumerate(statuses, 1)]
    assert _report(Outcomes(results=results), "jsonl", io.StringIO()) == expected
    assert "cancelled=1" in capsys.readouterr().err
