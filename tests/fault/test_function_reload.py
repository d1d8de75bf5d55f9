"""FCALL blpopq_enqueue after a Redis restart without its data (README "Wire format"):
functions live in Redis's data, so such a restart drops the library, and the workers load it
again when they reconnect: other clients' lossless enqueue comes back with no operator action.
"""

from __future__ import annotations

import json

import pytest
import redis

from blpopq import wire
from blpopq.connection import make_client
from blpopq.protocol import Keyspace
from blpopq.tiers import Tier

from ..helpers import prev_hash, wait_until
from .conftest import Daemons, PrivateServers


def fcall(client: redis.Redis, keys: Keyspace, *tasks: str) -> list[bytes]:
    tier = Tier.VIP
    names = [keys.tier(tier), keys.queued(tier), keys.seq(tier), keys.tasks, keys.inflight]
    return list(client.fcall(wire.ENQUEUE_FUNCTION, 5, *names, tier.value, *tasks))


def library_loaded(client: redis.Redis) -> bool:
    try:
        return bool(client.function_list(library=wire.LIBRARY))
    except redis.ConnectionError:
        return False


def test_the_workers_load_the_library_again_after_redis_restarts_empty(
    private_redis: PrivateServers, namespace: str, daemons: Daemons
) -> None:
    server = private_redis.start()
    client = make_client(server.url)
    if int(str(client.info("server")["redis_version"]).split(".")[0]) < 7:
        pytest.skip("functions need Redis >= 7 (6.2 clients EVAL the script, nothing to load)")
    keys = Keyspace(namespace)
    daemon = daemons.start(server.url, namespace, 1, "--lease", "5")
    daemon.wait_ready()
    daemon.wait_for_line(r"function blpopq_enqueue loaded")
    task = {"client": "x", "op": "mine", "prev": prev_hash(1), "difficulty": 2}
    assert fcall(client, keys, json.dumps({**task, "id": "before"})) == [b"before"]
    wait_until(lambda: client.llen(keys.results) == 1, "the first result", daemon)

    server.stop()  # no persistence: data and functions are gone
    server.start()
    client = make_client(server.url)
    wait_until(lambda: library_loaded(client), "the library loaded again", daemon)
    assert fcall(client, keys, json.dumps({**task, "id": "after"})) == [b"after"]
    wait_until(lambda: client.llen(keys.results) == 1, "the result after the restart", daemon)
    assert json.loads(client.lindex(keys.results, 0) or b"{}")["id"] == "after"
    assert daemon.process.poll() is None, daemon.log
