"""Producers in any language (README "Wire format"): minimal tasks pushed with a bare RPUSH,
and the lossless enqueue any client may call (FCALL blpopq_enqueue on Redis >= 7, the same
Lua with EVAL everywhere), driven step by step on a real Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from blpopq import wire
from blpopq.messages import Task
from blpopq.protocol import Protocol
from blpopq.recovery import recover
from blpopq.tiers import Tier

from ..helpers import prev_hash

LONG = 60.0
WORKER = "w:a"


def minimal(n: int, **extra: Any) -> str:
    """A task as another client writes it: the required fields, and ``extra``."""
    body = {"client": f"svc{n}", "op": "mine", "prev": prev_hash(n), "difficulty": 1}
    return json.dumps({**body, **extra})


def redis_major(client: redis.Redis) -> int:
    return int(str(client.info("server")["redis_version"]).split(".")[0])


def enqueue_keys(protocol: Protocol, tier: Tier) -> list[str]:
    """The five keys of the calling convention, for one tier."""
    keys = protocol.keys
    return [keys.tier(tier), keys.queued(tier), keys.seq(tier), keys.tasks, keys.inflight]


def submit(protocol: Protocol, how: str, tier: Tier, *tasks: str) -> list[str]:
    """Enqueue through EVAL of the shipped script, or FCALL of the shipped library."""
    keys = enqueue_keys(protocol, tier)
    if how == "eval":
        ids = protocol.client.eval(wire.enqueue_script(), 5, *keys, tier.value, *tasks)
    else:
        ids = protocol.client.fcall(wire.ENQUEUE_FUNCTION, 5, *keys, tier.value, *tasks)
    return [i.decode() for i in ids]


@pytest.fixture(params=["eval", "fcall"])
def how(request: pytest.FixtureRequest, protocol: Protocol) -> str:
    if request.param == "fcall":
        if redis_major(protocol.client) < 7:
            pytest.skip("FCALL needs Redis >= 7: on 6.2 the same Lua is called with EVAL")
        protocol.load_library(replace=True)
    return str(request.param)


def take(protocol: Protocol, worker: str = WORKER) -> Any:
    protocol.heartbeat(worker, "join", lease=LONG)
    return protocol.take(worker)


def reap_until_requeued(protocol: Protocol) -> None:
    """A few reaper passes: an orphan is first suspected, then taken back."""
    for _ in range(3):
        if recover(protocol, orphan_grace=0.0, max_deaths=3, reaper="t").requeued:
            return
    raise AssertionError("nothing was requeued")


# --- minimal tasks on a bare RPUSH --------------------------------------------------------------


def test_a_minimal_task_pushed_raw_is_claimed_under_an_id_of_its_own(protocol: Protocol) -> None:
    """Tier = the list it was on, id = auto.<position> (its claim key), version = current."""
    protocol.client.rpush(protocol.keys.tier(Tier.ALTO), minimal(1), minimal(2))
    first, second = take(protocol), take(protocol)
    assert (first.kind.value, first.key) == ("task", f"auto.{first.position}".encode())
    assert second.key == f"auto.{second.position}".encode() and second.key != first.key
    task = Task.from_json(first.raw, tier=first.tier, key=first.task_id, seen_at=9.0)
    assert (task.id, task.tier, task.client, task.count, task.enqueued_at) == (
        first.task_id, Tier.ALTO, "svc1", 1, 9.0,
    )  # fmt: skip
    assert protocol.settle_result(first.key, first.position, "{}")
    assert protocol.client.hlen(protocol.keys.inflight) == 1  # the second one's claim


def test_a_generated_id_never_takes_one_that_is_open(protocol: Protocol) -> None:
    """Ids beginning auto. are blpopq's, but if another client chose one anyway, the take
    gives the minimal task another."""
    position = int(protocol.client.get(protocol.keys.position) or 0) + 1
    protocol.client.hset(protocol.keys.tasks, f"auto.{position}", "{}")
    protocol.client.rpush(protocol.keys.tier(Tier.VIP), minimal(1))
    taken = take(protocol)
    assert taken.position == position and taken.key == f"auto.{position}.1".encode()


def test_a_minimal_task_put_back_keeps_its_id(protocol: Protocol) -> None:
    """A worker that dies leaves the claim; the reaper puts the task back under the same id,
    so its result names the id it was first given."""
    protocol.client.rpush(protocol.keys.tier(Tier.COMUN), minimal(3))
    taken = take(protocol)
    protocol.heartbeat(WORKER, "join", lease=0.0)  # its lease runs out at once
    reap_until_requeued(protocol)
    again = take(protocol, "w:b")
    assert again.key == taken.key and json.loads(again.raw)["id"] == taken.task_id


# --- the lossless enqueue: FCALL blpopq_enqueue / EVAL -----------------------------------------


def test_load_library_loads_once_and_says_what_it_did(protocol: Protocol) -> None:
    if redis_major(protocol.client) < 7:
        assert protocol.load_library(replace=True) == "unsupported"
        return
    assert protocol.load_library(replace=True) == "loaded"
    assert protocol.load_library(replace=False) == "present"
    assert submit(protocol, "fcall", Tier.VIP) == []  # callable: no tasks, no ids


def test_submit_fills_in_and_registers_each_task_like_the_producer(
    protocol: Protocol, how: str
) -> None:
    """Registered beside its list, in sequence order: what recovery needs."""
    named = minimal(1, id="order-17", nonce=None)
    verify = json.dumps(
        {"client": "c", "op": "verify", "prev": prev_hash(2), "difficulty": 1, "nonce": 2**64 - 1}
    )
    ids = submit(protocol, how, Tier.VIP, named, verify, "  {}")
    seq = int(protocol.client.get(protocol.keys.seq(Tier.VIP)))
    assert ids == ["order-17", f"auto.vip.{seq - 1}", f"auto.vip.{seq}"]
    now = float(protocol.client.time()[0])
    listed = protocol.client.lrange(protocol.keys.tier(Tier.VIP), 0, -1)
    for ident, raw in zip(ids, listed, strict=True):
        assert protocol.client.hget(protocol.keys.tasks, ident) == raw
        assert protocol.client.zscore(protocol.keys.queued(Tier.VIP), ident) is not None
        body = json.loads(raw)
        assert body["id"] == ident and body["tier"] == "vip"
        assert abs(body["enqueued_at"] - now) < 60
    assert listed[1].endswith(b'"nonce": 18446744073709551615}')  # its own text, exact
    assert listed[2].startswith(b'{"id":"auto.vip.') and listed[2].endswith(b"}")
    assert json.loads(listed[2]).keys() == {"id", "tier", "enqueued_at"}


def test_a_task_enqueued_by_submit_survives_a_worker_dying_between_blpop_and_claim(
    protocol: Protocol, how: str
) -> None:
    """README guarantee 1 for any client: the orphan is found by its registration."""
    [ident] = submit(protocol, how, Tier.ALTO, minimal(4))
    protocol.heartbeat(WORKER, "join", lease=LONG)
    assert protocol.block(timeout=1) is not None  # popped, never claimed
    protocol.heartbeat(WORKER, "leave", lease=LONG)  # its worker is gone
    reap_until_requeued(protocol)
    head = protocol.client.lindex(protocol.keys.tier(Tier.ALTO), 0)
    assert json.loads(head)["id"] == ident
    assert json.loads(head)["history"][0]["event"] == "popped but never claimed"


@pytest.mark.parametrize(
    ("tasks", "error"),
    [
        (["[1, 2]"], "BADTASK 1: not a JSON object"),
        ([minimal(1), "not json"], "BADTASK 2: not a JSON object"),
        ([minimal(1, id=5)], "BADTASK 1: field 'id' is not a non-empty string"),
        ([minimal(1, id="")], "BADTASK 1: field 'id' is not a non-empty string"),
        ([minimal(1, tier="comun")], "BADTASK 1: field 'tier' is not vip"),
        ([minimal(1, id="x"), minimal(2, id="x")], "BADTASK 2: id x twice in one call"),
    ],
)
def test_submit_refuses_the_whole_call_naming_the_task(
    protocol: Protocol, how: str, tasks: list[str], error: str
) -> None:
    with pytest.raises(redis.ResponseError, match=error):
        submit(protocol, how, Tier.VIP, *tasks)
    assert protocol.client.llen(protocol.keys.tier(Tier.VIP)) == 0
    assert protocol.client.hlen(protocol.keys.tasks) == 0


def test_submit_refuses_an_id_that_is_open(protocol: Protocol, how: str) -> None:
    submit(protocol, how, Tier.VIP, minimal(1, id="same"))
    with pytest.raises(redis.ResponseError, match="IDINUSE same"):
        submit(protocol, how, Tier.COMUN, minimal(2), minimal(3, id="same"))
    assert protocol.client.llen(protocol.keys.tier(Tier.COMUN)) == 0


def test_submit_refuses_a_wrong_calling_convention(protocol: Protocol, how: str) -> None:
    keys = enqueue_keys(protocol, Tier.VIP)[:3]
    with pytest.raises(redis.ResponseError, match="BADCALL give 5 keys"):
        if how == "eval":
            protocol.client.eval(wire.enqueue_script(), 3, *keys, "vip", minimal(1))
        else:
            protocol.client.fcall(wire.ENQUEUE_FUNCTION, 3, *keys, "vip", minimal(1))
