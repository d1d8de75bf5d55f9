"""Log formats: human lines and JSON lines both carry the stable task fields."""

from __future__ import annotations

import json
import logging

from blpopq.logs import HumanFormatter, JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "blpopq.worker", logging.WARNING, "f.py", 1, "task %s died", ("t.1",), None
    )
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_are_one_object_with_the_task_fields() -> None:
    line = JsonFormatter().format(record(task_id="t.1", tier="vip", client="José"))
    body = json.loads(line)
    assert "\n" not in line
    assert body["message"] == "task t.1 died" and body["level"] == "WARNING"
    assert (body["task_id"], body["tier"], body["client"]) == ("t.1", "vip", "José")
    assert body["logger"] == "blpopq.worker" and isinstance(body["pid"], int)


def test_json_lines_omit_fields_a_record_does_not_carry() -> None:
    body = json.loads(JsonFormatter().format(record()))
    assert "task_id" not in body and "tier" not in body


def test_human_lines_end_with_key_value_fields() -> None:
    line = HumanFormatter().format(record(task_id="t.1", tier="alto"))
    assert "task t.1 died" in line and line.endswith("task_id=t.1 tier=alto")
    assert HumanFormatter().format(record()).endswith("task t.1 died")
