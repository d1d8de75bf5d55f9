"""blpopq.streamed: a script call sent a piece at a time answers exactly as redis-py's own
call does, against a real Redis: the reply, a flushed script cache, an error reply, and a
connection that dies half-way (closed, never reused with half a command in it)."""

from __future__ import annotations

import pytest
import redis

from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.streamed import call_script

from ..helpers import wait_until

ECHO = "return {#KEYS, #ARGV, ARGV[#ARGV], string.len(table.concat(ARGV))}"


def test_a_large_call_answers_as_the_ordinary_one(client: redis.Redis, namespace: str) -> None:
    script = client.register_script(ECHO)
    args = [f"{n}:" + "é" * 300 for n in range(20_000)]  # ~12 MB: many 64 KB pieces
    keys = [f"{{{namespace}}}:a", f"{{{namespace}}}:b"]
    assert call_script(client, script, keys, args) == script(keys=keys, args=args)


def test_a_flushed_script_cache_is_loaded_again(client: redis.Redis) -> None:
    script = client.register_script(ECHO + " -- flushed")
    client.script_flush()
    assert call_script(client, script, [], [1, 2.5, b"\xff"]) == [0, 3, b"\xff", 5]


def test_an_error_reply_is_raised_and_the_connection_goes_on(client: redis.Redis) -> None:
    script = client.register_script("return redis.error_reply('IDINUSE ' .. ARGV[1])")
    with pytest.raises(redis.ResponseError, match="IDINUSE x"):
        call_script(client, script, [], ["x"])
    assert client.ping() is True
    assert call_script(client, client.register_script("return 7"), [], []) == 7


SLOW = """
local function now() local t = redis.call('TIME') return t[1] * 1000000 + t[2] end
local start = now()
repeat until now() - start > tonumber(ARGV[1])
return ARGV[2]
"""


def test_a_reply_not_read_in_time_closes_the_connection(redis_server: RedisServer) -> None:
    """A reply that outlasts the socket timeout leaves the connection unread: it is closed,
    so the next call gets a fresh one, never the late reply of the call that gave up."""
    impatient = make_client(redis_server.url, socket_timeout=0.2)
    patient = make_client(redis_server.url, socket_timeout=30)
    script = impatient.register_script(SLOW)
    with pytest.raises(redis.TimeoutError):
        call_script(impatient, script, [], [1_000_000, "late"])  # 1 s in Redis
    assert patient.ping() is True  # returns once Redis has finished the slow script
    assert call_script(impatient, script, [], [0, "fresh"]) == b"fresh"
    impatient.close()
    patient.close()


def test_a_pinned_client_keeps_one_connection_and_heals_it(redis_server: RedisServer) -> None:
    """The worker's client (pinned) sends ordinary commands and hand-written calls over one
    connection; one the server closed (CLIENT KILL, a restart) is connected afresh before the
    next command, as redis-py's pool does; and one left with a reply unread (a timeout) is
    closed, so the next call never reads that late reply."""
    pinned = make_client(redis_server.url, socket_timeout=0.2, pinned=True)
    patient = make_client(redis_server.url, socket_timeout=30)
    script = pinned.register_script(SLOW)
    first = pinned.client_id()
    assert call_script(pinned, script, [], [0, "first"]) == b"first"
    assert pinned.client_id() == first
    assert patient.client_kill_filter(_id=first) == 1
    assert call_script(pinned, script, [], [0, "after a kill"]) == b"after a kill"
    second = pinned.client_id()
    assert second != first
    with pytest.raises(redis.TimeoutError):
        call_script(pinned, script, [], [1_000_000, "late"])
    assert patient.ping() is True  # returns once Redis has finished the slow script
    assert call_script(pinned, script, [], [0, "fresh"]) == b"fresh"
    third = pinned.client_id()
    assert third not in (first, second)
    pinned.close()  # closes its one connection: Redis drops it once it reads the close
    wait_until(
        lambda: str(third) not in {str(c["id"]) for c in patient.client_list()},
        "Redis to drop the closed client's connection",
        timeout=10,
    )
    patient.close()
