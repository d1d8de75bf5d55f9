"""The shipped JSON Schemas (README "Wire format") describe what blpopq itself writes, and
agree with the worker's decoder on what a producer may push."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from blpopq import wire
from blpopq.cancelling import cancelled_result
from blpopq.instructions import Request
from blpopq.jsontext import DecodeError
from blpopq.kernels import HASHLIB, Kernel
from blpopq.messages import Task, with_progress
from blpopq.outcomes import DeadLetter
from blpopq.pow import Progress, mine
from blpopq.producer import build_tasks
from blpopq.runner import run_task
from blpopq.tiers import TIERS, Tier


def validator(name: str) -> Draft202012Validator:
    schema = json.loads(wire.schema(name))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


TASK, RESULT, DEAD = validator("task"), validator("result"), validator("dead")
HEX = "0123456789abcdef"

prevs = st.text(HEX, min_size=64, max_size=64)
clients = st.text(st.characters(exclude_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=64)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    tier = draw(st.sampled_from(TIERS))
    client, prev = draw(clients), draw(prevs)
    difficulty = draw(st.integers(0, 6))
    line = draw(st.integers(1, 10**6))
    if draw(st.booleans()):
        nonce = draw(st.integers(0, 2**64 - 1))
        return Request(tier, client, "verify", prev, difficulty, 1, nonce, "f.txt", line)
    count = draw(st.integers(1, 3))
    return Request(tier, client, "mine", prev, difficulty, count, None, "f.txt", line)


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert wire.SCHEMAS == ("task", "result", "dead")
    for name in wire.SCHEMAS:
        Draft202012Validator.check_schema(json.loads(wire.schema(name)))


@settings(max_examples=60, deadline=None)
@given(st.lists(requests(), min_size=1, max_size=5), st.floats(0, 2e9))
def test_every_task_the_producer_writes_validates(batch: list[Request], at: float) -> None:
    for task in build_tasks(batch, "20261202T120000-0123456789abcdef", at):
        TASK.validate(json.loads(task.to_json()))


@settings(max_examples=40, deadline=None)
@given(requests(), st.integers(0, 10**6))
def test_every_result_a_worker_writes_validates(request: Request, position: int) -> None:
    [task] = build_tasks([request], "b", 1.0)
    result = run_task(task, position=position + 1, worker="h:1", max_attempts=2**12)
    RESULT.validate(json.loads(result.to_json()))
    RESULT.validate(json.loads(cancelled_result(task, 2.0).to_json()) | {"position": 1})


def test_error_exhausted_and_resumed_results_validate() -> None:
    prev = "cd" * 32
    [task] = build_tasks([Request(Tier.VIP, "c", "mine", prev, 20, 2, None, "f", 1)], "b", 1.0)
    exhausted = run_task(task, position=1, worker="h:1", max_attempts=1, kernel=HASHLIB)
    assert exhausted.status == "exhausted"
    RESULT.validate(json.loads(exhausted.to_json()))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kernel bug")

    kernel = Kernel("broken", broken, 16)
    error = run_task(task, position=2, worker="h:1", max_attempts=9, kernel=kernel)
    assert error.status == "error"
    RESULT.validate(json.loads(error.to_json()))
    # A task put back with progress and a death in its history, as a stop and the reaper
    # write it, is still a task of the schema.
    blocks = mine(prev, 2, count=1).blocks
    raw = with_progress(task.to_json(), Progress(blocks, 9, 0), task)
    body = json.loads(raw) | {"history": [{"worker": "h:1", "event": "worker died", "at": 1.0}]}
    TASK.validate(body)


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=32).map(str.encode), st.integers(1, 10**9))
def test_every_dead_letter_validates(raw: bytes, seq: int) -> None:
    letter = DeadLetter.for_item(raw, "a reason", tier="vip", worker="h:1")
    body = json.loads(letter.to_json())
    DEAD.validate(body)
    DEAD.validate({"seq": seq, **body})  # as lua/dead.lua numbers it


# --- what a producer may push: the schema and the decoder agree ---------------------------------


@st.composite
def minimal_tasks(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client": draw(clients),
        "op": draw(st.sampled_from(["mine", "verify"])),
        "prev": draw(prevs),
        "difficulty": draw(st.integers(0, 256)),
    }
    if body["op"] == "verify":
        body["nonce"] = draw(st.integers(0, 2**64 - 1))
    optional = {
        "id": st.text(min_size=1, max_size=10).filter(lambda t: t.isprintable()),
        "count": st.integers(1, 1000),
        "batch": st.text(max_size=10),
        "enqueued_at": st.floats(0, 2e9),
        "v": st.just(1),
        "extra": st.integers(),
    }
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        body[name] = draw(optional[name])
    return body


BREAKAGES = {
    "client": [None, 3],
    "op": ["burn", None],
    "prev": ["AB" * 32, "ab" * 31, 7],
    "difficulty": [-1, 257, "3", 1.5, True],
    "count": [0, "2"],
    "nonce": [-1, 2**64, "5"],
    "v": [2],
    "tier": ["gold"],
    "id": [""],
}


@settings(max_examples=120, deadline=None)
@given(minimal_tasks(), st.sampled_from(TIERS))
def test_a_minimal_task_the_schema_accepts_is_one_a_worker_runs(
    body: dict[str, Any], tier: Tier
) -> None:
    TASK.validate(body)
    task = Task.from_json(json.dumps(body), tier=tier, key="auto.1", seen_at=3.0)
    assert task.id == body.get("id", "auto.1") and task.tier is tier
    assert task.enqueued_at == float(body.get("enqueued_at", 3.0))


@settings(max_examples=120, deadline=None)
@given(minimal_tasks(), st.data())
def test_a_field_the_schema_refuses_is_a_dead_letter_naming_it(
    body: dict[str, Any], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(BREAKAGES)))
    if name == "nonce" and body["op"] == "mine":
        body["op"], body["nonce"] = "verify", 0  # a mine task's nonce is checked by op
    if name == "id" and "id" not in body:
        body["id"] = "x"
    body[name] = data.draw(st.sampled_from(BREAKAGES[name]))
    assert not TASK.is_valid(body)
    with pytest.raises(DecodeError, match=rf"field '{name}'|schema version"):
        Task.from_json(json.dumps(body), tier=Tier.VIP, key="auto.1", seen_at=0.0)


def test_a_verify_task_without_a_nonce_is_refused_by_both() -> None:
    body = {"client": "c", "op": "verify", "prev": "ab" * 32, "difficulty": 1}
    assert not TASK.is_valid(body)
    with pytest.raises(DecodeError, match="field 'nonce' is missing"):
        Task.from_json(json.dumps(body), tier=Tier.VIP, key="k", seen_at=0.0)
    mine_with_nonce = {**body, "op": "mine", "nonce": 3}
    assert not TASK.is_valid(mine_with_nonce)
    with pytest.raises(DecodeError, match="field 'nonce'"):
        Task.from_json(json.dumps(mine_with_nonce), tier=Tier.VIP, key="k", seen_at=0.0)
