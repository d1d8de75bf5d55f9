"""Task/Result/DeadLetter codecs: JSON only, strict on what a worker will run."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blpopq.jsontext import DecodeError
from blpopq.messages import Task
from blpopq.outcomes import RESULT_FIELDS, DeadLetter, Result, peek_identity
from blpopq.tiers import Tier

PREV = "ab" * 32


def task(**changes: object) -> Task:
    base = dict(
        id="b.1", batch="b", tier=Tier.VIP, client="José", op="mine", prev=PREV, difficulty=8,
        count=2, nonce=None, source="f.txt", line=3, enqueued_at=1763900000.123456,
    )  # fmt: skip
    base.update(changes)
    return Task(**base)  # type: ignore[arg-type]


def test_task_round_trips_through_json_exactly() -> None:
    original = task()
    encoded = original.to_json()
    assert json.loads(encoded)["v"] == 1 and "José" in encoded  # UTF-8, not \\u escapes
    assert Task.from_json(encoded) == original
    assert Task.from_json(encoded.encode()) == original


def test_verify_task_round_trips() -> None:
    original = task(op="verify", nonce=2**64 - 1, count=1)
    assert Task.from_json(original.to_json()) == original


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: "not json", "not valid JSON"),
        (lambda b: "[1, 2]", "not a JSON object"),
        (lambda b: {**b, "v": 99}, "schema version"),
        (lambda b: {**b, "tier": "gold"}, "field 'tier' is 'gold', an unknown tier"),
        (lambda b: {**b, "op": "burn"}, "field 'op' is 'burn', not one of mine, verify"),
        (lambda b: {**b, "prev": "AB" * 32}, "field 'prev' must be 64 lower-case"),
        (lambda b: {**b, "prev": "ab" * 31}, "field 'prev'"),
        (lambda b: {**b, "prev": 7}, "field 'prev' is not a string"),
        (lambda b: {**b, "difficulty": 257}, "field 'difficulty' is 257"),
        (lambda b: {**b, "difficulty": True}, "field 'difficulty' is not a whole number"),
        (lambda b: {**b, "count": 0}, "field 'count' is 0, below 1"),
        (lambda b: {**b, "nonce": 5}, "no nonce"),
        (lambda b: {**b, "op": "verify"}, "field 'nonce' is not a whole number"),
        (lambda b: {**b, "op": "verify", "nonce": 2**64}, "field 'nonce'"),
        (lambda b: {k: v for k, v in b.items() if k != "id"}, "field 'id' is missing"),
        (lambda b: {k: v for k, v in b.items() if k != "prev"}, "field 'prev' is missing"),
        (lambda b: {k: v for k, v in b.items() if k != "client"}, "field 'client' is missing"),
        (lambda b: {k: v for k, v in b.items() if k != "tier"}, "field 'tier' is missing"),
        (lambda b: {**b, "enqueued_at": "now"}, "field 'enqueued_at' is not a number"),
        # The fast paths (a dict lookup of the tier, one class test per field) refuse what
        # the full checks refused, with the same reasons:
        (lambda b: {**b, "tier": ["vip"]}, r"field 'tier' is \['vip'\], an unknown tier"),
        (lambda b: {**b, "tier": "VIP"}, "field 'tier' is 'VIP', an unknown tier"),
        (lambda b: {**b, "line": False}, "field 'line' is not a whole number"),
        (lambda b: {**b, "count": 2.0}, "field 'count' is not a whole number"),
        (lambda b: {**b, "client": None}, "field 'client' is not a string"),
        (lambda b: {**b, "enqueued_at": True}, "field 'enqueued_at' is not a number"),
    ],
)
def test_bad_tasks_raise_decode_error_with_a_reason(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    body = json.loads(task().to_json())
    mutated = mutate(body)
    raw = mutated if isinstance(mutated, str) else json.dumps(mutated)
    with pytest.raises(DecodeError, match=reason):
        Task.from_json(raw)


def test_result_keeps_every_contract_key_in_order_and_extra_keys() -> None:
    result = Result(
        position=4, id="b.1", batch="b", source="f", line=1, tier="vip", client="c", op="mine",
        status="ok", prev=PREV, difficulty=1, nonce=7, hash="00" * 32,
        blocks=({"nonce": 7, "hash": "00" * 32},), attempts=8, worker="h:1",
        enqueued_at=1.0, started_at=2.0, finished_at=2.5,
    )  # fmt: skip
    body = json.loads(result.to_json())
    assert tuple(body) == RESULT_FIELDS
    body["future_key"] = "kept"
    decoded = Result.from_json(json.dumps(body))
    assert decoded == result and decoded.extra == {"future_key": "kept"}
    assert decoded.wait_ms == 1000.0 and decoded.run_ms == 500.0


def test_dead_letter_round_trips_and_identity_is_best_effort() -> None:
    letter = DeadLetter("bad", "raw", None, None, "vip", "h:1", 1.0)
    assert DeadLetter.from_json(letter.to_json()) == letter
    assert peek_identity('{"id": "x", "batch": "y"}') == ("x", "y")
    assert peek_identity('{"id": 5}') == (None, None)
    assert peek_identity("garbage") == (None, None)


def test_progress_travels_with_a_task_and_is_checked() -> None:
    """A stopped mine task carries the blocks it finished; foreign or damaged progress is a
    reason for a dead letter, never a wrong result."""
    from blpopq.messages import with_progress
    from blpopq.pow import Block, Progress, mine

    prev = "cd" * 32
    blocks = mine(prev, 4, count=2).blocks
    raw = json.dumps({**_task_body(prev, count=3), "history": [{"event": "worker died"}]})
    again = with_progress(raw, Progress(blocks, 77, 5), Task.from_json(raw))
    task = Task.from_json(again)
    assert task.progress == Progress(blocks, 77, 5)
    assert json.loads(again)["history"] == [{"event": "worker died"}]  # kept as it was
    wrong = Progress((Block(blocks[0].nonce + 1, blocks[0].hash),), 1, 0)
    with pytest.raises(DecodeError, match="progress"):
        Task.from_json(with_progress(raw, wrong, task))
    with pytest.raises(DecodeError, match="progress"):
        Task.from_json(json.dumps({**_task_body(prev, count=3), "progress": {"blocks": 1}}))


def _task_body(prev: str, count: int) -> dict[str, object]:
    return {
        "v": 1, "id": "b.1", "batch": "b", "tier": "vip", "client": "c", "op": "mine",
        "prev": prev, "difficulty": 4, "count": count, "nonce": None, "source": "f",
        "line": 1, "enqueued_at": 1.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [b'{"id":"\\ud800"}', b'{"id":"ok","client":"\\udfff"}', b'{"x":["\\uDBFF"]}'],
)
def test_a_lone_surrogate_is_not_text_and_names_no_id(raw: bytes) -> None:
    """JSON may spell a lone UTF-16 surrogate; a str holding one cannot be written back as
    UTF-8, and such an id once crashed every process that read it (property test)."""
    with pytest.raises(DecodeError, match="surrogate"):
        Task.from_json(raw)
    assert peek_identity(raw) == (None, None)
    letter = DeadLetter.for_item(raw, "r", tier="vip", worker="w")
    assert letter.id is None and json.loads(letter.to_json())["raw"].encode() == raw


def test_a_surrogate_pair_is_an_ordinary_character() -> None:
    assert peek_identity(b'{"id":"\\ud83d\\ude00"}') == ("\U0001f600", None)


MINIMAL = {"client": "svc", "op": "mine", "prev": PREV, "difficulty": 3}


def test_a_minimal_task_takes_the_rest_from_where_it_was_found() -> None:
    """README "Wire format": client, op, prev, difficulty (and nonce for verify) are enough;
    the tier is the list's, the id the claim's, the enqueue time when blpopq first saw it."""
    found = Task.from_json(json.dumps(MINIMAL), tier=Tier.ALTO, key="auto.7", seen_at=5.0)
    assert found == Task(
        id="auto.7", batch="", tier=Tier.ALTO, client="svc", op="mine", prev=PREV,
        difficulty=3, count=1, nonce=None, source="", line=0, enqueued_at=5.0,
    )  # fmt: skip
    verify = {**MINIMAL, "op": "verify", "nonce": 2**64 - 1, "id": "mine-1"}
    task = Task.from_json(json.dumps(verify), tier=Tier.VIP, key="mine-1", seen_at=5.0)
    assert (task.id, task.nonce, task.count) == ("mine-1", 2**64 - 1, 1)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**MINIMAL, "v": 2}, "unsupported task schema version 2"),
        ({**MINIMAL, "tier": "vip"}, "field 'tier' is 'vip', but the task was on alto"),
        ({k: v for k, v in MINIMAL.items() if k != "difficulty"}, "field 'difficulty' is missing"),
        ({**MINIMAL, "op": "verify"}, "field 'nonce' is missing"),
        ({**MINIMAL, "count": "2"}, "field 'count' is not a whole number"),
        ({**MINIMAL, "batch": 3}, "field 'batch' is not a string"),
    ],
)
def test_whatever_else_is_wrong_with_a_minimal_task_is_named(
    body: dict[str, object], reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason):
        Task.from_json(json.dumps(body), tier=Tier.ALTO, key="auto.1", seen_at=1.0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "task is not valid JSON"),
        (b"[1]", "task is not a JSON object"),
        (b'{"id": 5}', "field 'id' is not a non-empty string"),
        (b'{"id": ""}', "field 'id' is not a non-empty string"),
        (b'{"id": null}', "field 'id' is not a non-empty string"),
    ],
)
def test_an_unreadable_item_says_why(raw: bytes, reason: str) -> None:
    from blpopq.messages import unreadable_reason

    assert unreadable_reason(raw).startswith(reason)


def test_a_task_with_an_escaped_lone_surrogate_is_refused_and_a_pair_is_read() -> None:
    """load_json looks for the escape with a plain substring test before its search."""
    body = json.loads(task().to_json())
    lone = json.dumps({**body, "client": "x"}).replace('"x"', '"\\ud800"')
    with pytest.raises(DecodeError, match="lone UTF-16 surrogate"):
        Task.from_json(lone)
    pair = json.dumps({**body, "client": "x"}).replace('"x"', '"\\ud83d\\ude00"')
    assert Task.from_json(pair).client == "\U0001f600"


def test_a_float_enqueue_time_and_a_whole_one_both_decode() -> None:
    body = json.loads(task().to_json())
    assert Task.from_json(json.dumps({**body, "enqueued_at": 17})).enqueued_at == 17.0
    assert Task.from_json(json.dumps(body)).enqueued_at == 1763900000.123456


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["vip", "alto", "comun", "mine", "verify", "", "ab" * 32]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_FIELDS = (
    "v", "id", "batch", "tier", "client", "op", "prev", "difficulty", "count", "nonce",
    "source", "line", "enqueued_at", "progress",
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_FIELDS), _JSON, st.booleans())
def test_any_value_in_any_field_is_refused_with_a_reason_or_decodes_checked(
    name: str, value: object, remove: bool
) -> None:
    """An attack on the decoder's fast paths (one class test per field, the tier by a dict
    lookup): whatever JSON a field holds, a task decodes only into what a worker may run,
    and anything else is a DecodeError with a reason, never another exception."""
    body = json.loads(task().to_json())
    if remove:
        body.pop(name, None)
    else:
        body[name] = value
    try:
        decoded = Task.from_json(json.dumps(body))
    except DecodeError as exc:
        assert str(exc)
        return
    assert isinstance(decoded.tier, Tier) and decoded.op in ("mine", "verify")
    assert type(decoded.id) is str and decoded.id and type(decoded.client) is str
    assert type(decoded.difficulty) is int and 0 <= decoded.difficulty <= 256
    assert type(decoded.count) is int and decoded.count >= 1
    assert type(decoded.line) is int and type(decoded.enqueued_at) is float
    assert type(decoded.batch) is str and type(decoded.source) is str
    assert len(decoded.prev) == 64 and set(decoded.prev) <= set("0123456789abcdef")
