"""Lost replies and reused ids, step by step against a real Redis (issue: hardening).

A reply is lost when Redis ran a command but the worker never heard back (a freeze across
the socket timeout, a cut connection). These tests make that moment exact: the "old
connection" runs the command and its reply is thrown away, then the worker goes on as it
does after a reconnect. Guarantees 1 and 2: after any lost reply a task is adopted or given
back, never both, and it gets exactly one outcome.
"""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from blpopq.client import Queue
from blpopq.config import Settings
from blpopq.connection import make_client
from blpopq.errors import ConfigError, IdInUse
from blpopq.instructions import Request
from blpopq.messages import Task
from blpopq.producer import enqueue
from blpopq.protocol import Protocol, StaleSession
from blpopq.stopping import StopFlag
from blpopq.tiers import Tier
from blpopq.worker import Worker

from ..helpers import prev_hash

WORKER = "host:1"


def request(tier: Tier, n: int) -> Request:
    return Request(tier, f"c{n}", "mine", prev_hash(n), 1, 1, None, "f.txt", n)


@pytest.fixture
def second(settings: Settings) -> Protocol:
    """Another connection, as a worker's next one after a reconnect."""
    return Protocol(make_client(settings.url), settings.keys)


@pytest.fixture(autouse=True)
def joined(protocol: Protocol) -> None:
    protocol.heartbeat(WORKER, "join", lease=60)


def listed(protocol: Protocol) -> int:
    return sum(int(protocol.client.llen(key)) for key in protocol.keys.tiers)


def test_a_claim_delayed_from_a_replaced_connection_is_refused(
    protocol: Protocol, second: Protocol
) -> None:
    """A claim still on its way from the old connection (Redis frozen with it in its
    buffer) runs after the worker reconnected: the new session refuses it."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    protocol.open_session(WORKER)
    popped = protocol.block(timeout=1)
    assert popped is not None
    second.open_session(WORKER)  # the reconnect
    with pytest.raises(StaleSession):
        protocol.claim(WORKER, *popped)  # the delayed command arrives
    assert protocol.client.hlen(protocol.keys.inflight) == 0
    taken = second.claim(WORKER, *popped)
    assert Task.from_json(taken.raw).line == 1


def test_a_take_delayed_from_a_replaced_connection_pops_nothing(
    protocol: Protocol, second: Protocol
) -> None:
    enqueue(protocol, [request(Tier.ALTO, 1)], chunk_size=10)
    protocol.open_session(WORKER)
    second.open_session(WORKER)
    with pytest.raises(StaleSession):
        protocol.take(WORKER)
    assert listed(protocol) == 1 and protocol.client.hlen(protocol.keys.inflight) == 0


def test_after_a_lost_claim_reply_the_worker_adopts_the_claim_and_runs_it_once(
    settings: Settings, protocol: Protocol, second: Protocol
) -> None:
    """The reproduced bug: the claim ran, its reply was lost; on reconnect the worker gave
    the claim back AND claimed its kept copy again, so the task ran twice. Now it adopts."""
    enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    worker = Worker(settings, StopFlag(settings.grace), worker_id=WORKER)
    worker._popped = protocol.block(timeout=1)
    assert worker._popped is not None
    lost = protocol.claim(WORKER, *worker._popped)  # ran in Redis; the worker never heard back
    worker._reconcile_claims(second)
    assert worker._popped is None and worker._adopted is not None
    assert listed(protocol) == 0, "given back as well as adopted: it would run twice"
    taken = worker._take(second)
    assert taken is not None and (taken.key, taken.position) == (lost.key, lost.position)
    assert second.settle_result(taken.key, taken.position, '{"r":1}') is True
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == [b'{"r":1}']
    assert protocol.client.hlen(protocol.keys.inflight) == 0


def test_after_a_lost_take_reply_the_claim_is_given_back_once(
    settings: Settings, protocol: Protocol, second: Protocol
) -> None:
    """A take whose reply was lost left a claim the worker knows nothing of: it goes back
    to the head of its tier (queued, not claimed), and the worker takes it again."""
    enqueue(protocol, [request(Tier.ALTO, 1), request(Tier.ALTO, 2)], chunk_size=10)
    worker = Worker(settings, StopFlag(settings.grace), worker_id=WORKER)
    protocol.take(WORKER)  # reply lost
    worker._reconcile_claims(second)
    assert worker._adopted is None
    assert protocol.client.hlen(protocol.keys.inflight) == 0 and listed(protocol) == 2
    taken = second.take(WORKER)
    assert taken is not None and Task.from_json(taken.raw).line == 1


def test_an_enqueue_reusing_an_open_id_is_refused_whole(protocol: Protocol) -> None:
    """Ids must be unique: a chunk naming an id that is queued or running writes nothing
    and the library raises, naming the id."""
    first = enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10, batch="b1")
    before = {key: protocol.client.llen(key) for key in protocol.keys.tiers}
    with pytest.raises(IdInUse) as refused:
        enqueue(protocol, [request(Tier.COMUN, 5), request(Tier.VIP, 6)], 10, batch="b1")
    assert refused.value.task_id == first.ids[0]
    assert {key: protocol.client.llen(key) for key in protocol.keys.tiers} == before
    taken = protocol.take("host:1")
    assert taken is not None
    with pytest.raises(IdInUse):  # running now: still open
        enqueue(protocol, [request(Tier.VIP, 7)], 10, batch="b1")
    assert protocol.client.hlen(protocol.keys.tasks) == 1


def test_an_enqueue_onto_a_key_of_another_kind_is_refused_whole(protocol: Protocol) -> None:
    """The tiers a chunk writes to are each checked before anything is written: a tier key
    that holds a string refuses the whole chunk, naming the key. A tier the chunk does not
    write to is not looked at: the next chunk, for vip alone, goes in."""
    comun = protocol.keys.tier(Tier.COMUN)
    protocol.client.set(comun, "not a list")
    with pytest.raises(redis.ResponseError, match=f"{comun} holds a string, not a list"):
        enqueue(protocol, [request(Tier.VIP, 1), request(Tier.COMUN, 2)], 10, batch="b1")
    assert listed_without(protocol, comun) == 0
    assert protocol.client.hlen(protocol.keys.tasks) == 0
    assert protocol.client.zcard(protocol.keys.queued(Tier.VIP)) == 0
    report = enqueue(protocol, [request(Tier.VIP, 3)], 10, batch="b2")
    assert len(report.ids) == 1 and listed_without(protocol, comun) == 1
    assert protocol.client.get(comun) == b"not a list"


def listed_without(protocol: Protocol, skipped: str) -> int:
    return sum(int(protocol.client.llen(k)) for k in protocol.keys.tiers if k != skipped)


def test_batch_ids_carry_64_random_bits(protocol: Protocol) -> None:
    """A second plus 24 random bits collided for ~1,000 batches a second."""
    ids = {enqueue(protocol, [request(Tier.VIP, 1)], 10).batch for _ in range(200)}
    assert len(ids) == 200
    assert all(len(batch.rsplit("-", 1)[1]) == 16 for batch in ids)


def test_a_library_client_that_retries_by_itself_is_refused(settings: Settings) -> None:
    """redis-py resends a command whose reply was lost (an enqueue would run twice)."""
    with pytest.raises(ConfigError, match="retries"):
        Queue(redis.Redis.from_url(settings.url, retry_on_timeout=True, retry=_retries(3)))
    with pytest.raises(ConfigError, match="decode_responses"):
        Queue(redis.Redis.from_url(settings.url, decode_responses=True, retry=_retries(0)))
    Queue(make_client(settings.url))  # blpopq's own client is accepted


def _retries(n: int) -> Retry:
    return Retry(NoBackoff(), n)
