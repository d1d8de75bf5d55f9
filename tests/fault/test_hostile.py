"""Hostile input and unfriendly Redis replies against a real daemon (issue: hardening).

Every test ends with the same promise as the other fault tests (``assert_lossless``): each
real task has exactly one correct outcome and nothing is left in flight. On top of it: each
foreign item is exactly one dead letter, and no worker process ever exited, since one that
did would count as a death of the healthy task it held.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.protocol import Keyspace
from blpopq.tiers import Tier

from ..helpers import prev_hash, run_cli
from .conftest import Daemons, PrivateServers
from .test_faults import Req, assert_lossless, collect, produce

#: Items other code might push onto a tier list. Each must become one dead letter.
FOREIGN: dict[str, bytes] = {
    "id and a non-UTF-8 byte": b'{"id":"bad-utf8","client":"\xff","v":1}',
    "deep nesting with an id": b'{"id":"deep","x":' + b"[" * 985 + b"]" * 985 + b"}",
    "nesting beyond cjson's limit": b"[" * 1200 + b"]" * 1200,
    "empty string": b"",
    "non-UTF-8 without id": b"\x80\x81\xfe\xff garbage",
    "JSON that is not an object": b"[1,2,3]",
    "an object with a numeric id": b'{"id":7}',
}


def restarts(log: str) -> int:
    return log.count("exited with status")


def letters(client: redis.Redis, namespace: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(Keyspace(namespace).dead, 0, -1)]


def real_requests(n: int) -> list[Req]:
    return [Req("alto", f"c{i}", "mine", prev_hash(i), 4) for i in range(n)]


def test_foreign_items_each_become_one_dead_letter_and_no_worker_stops(
    redis_server: RedisServer, daemons: Daemons, tmp_path: Path
) -> None:
    """Any bytes in a tier list: exactly one dead letter each (with the exact bytes where
    they are not UTF-8), the real tasks around them one result each, no worker exits."""
    namespace = f"h{uuid.uuid4().hex[:10]}"
    keys = Keyspace(namespace)
    client = make_client(redis_server.url)
    daemon = daemons.start(redis_server.url, namespace, 2)
    daemon.wait_ready()
    produced = produce(client, namespace, tmp_path / "a.txt", real_requests(5))
    for raw in FOREIGN.values():
        client.rpush(keys.tier(Tier.ALTO), raw)
    produced |= produce(client, namespace, tmp_path / "b.txt", real_requests(5))
    collect(redis_server.url, namespace, len(produced) + len(FOREIGN), daemon, client)

    foreign = [letter for letter in letters(client, namespace) if letter["id"] not in produced]
    assert len(foreign) == len(FOREIGN)
    exact = {
        base64.b64decode(letter["raw_b64"]) if "raw_b64" in letter else letter["raw"].encode()
        for letter in foreign
    }
    assert exact == set(FOREIGN.values())
    bad_utf8 = next(letter for letter in foreign if letter.get("id") == "bad-utf8")
    assert "UTF-8" in bad_utf8["reason"] and "\\xff" in bad_utf8["raw"]
    deep = next(d for d in foreign if d["raw"].encode() == FOREIGN["deep nesting with an id"])
    assert "nests deeper" in deep["reason"]
    named = {"bad-utf8", None}  # the one readable foreign id, and the unreadable ones
    assert_lossless(client, namespace, produced, dead_ok=lambda d: d["id"] in named)
    assert restarts(daemon.log) == 0, daemon.log
    assert daemon.process.poll() is None


def test_a_foreign_task_reusing_an_open_id_is_refused_without_touching_it(
    redis_server: RedisServer, daemons: Daemons, tmp_path: Path
) -> None:
    """A push that reuses the id of a queued task becomes a dead letter naming no id; the
    real task keeps its claim and gets its one result."""
    namespace = f"h{uuid.uuid4().hex[:10]}"
    keys = Keyspace(namespace)
    client = make_client(redis_server.url)
    produced = produce(client, namespace, tmp_path / "a.txt", real_requests(3))
    victim = next(iter(produced))
    forged = json.loads(client.lindex(keys.tier(Tier.ALTO), 0))
    forged["client"] = "thief"
    client.lpush(keys.tier(Tier.ALTO), json.dumps(forged))
    daemon = daemons.start(redis_server.url, namespace, 1)
    collect(redis_server.url, namespace, len(produced) + 1, daemon, client)
    [letter] = [d for d in letters(client, namespace) if d["id"] is None]
    assert victim in letter["reason"] and "already open" in letter["reason"]
    results, _ = assert_lossless(client, namespace, produced, dead_ok=lambda d: d["id"] is None)
    assert results[victim]["client"] != "thief"


def test_an_unreadable_claim_record_is_dead_lettered_and_status_still_works(
    redis_server: RedisServer, daemons: Daemons, tmp_path: Path
) -> None:
    """Bytes written into the in-flight hash by other code: `blpopq status` shows them, the
    reaper replaces them with one dead letter, the pool keeps serving."""
    namespace = f"h{uuid.uuid4().hex[:10]}"
    keys = Keyspace(namespace)
    client = make_client(redis_server.url)
    client.hset(keys.inflight, "junk", b"\xff{not a claim")
    client.hset(keys.inflight, "junk2", json.dumps({"position": 1, "worker": 5, "tier": 9}))
    shown = run_cli("blpopq", "status", "--redis-url", redis_server.url, "--namespace", namespace)
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    daemon = daemons.start(redis_server.url, namespace, 1)
    produced = produce(client, namespace, tmp_path / "a.txt", real_requests(3))
    collect(redis_server.url, namespace, len(produced) + 2, daemon, client)
    junk = {d["id"]: d for d in letters(client, namespace) if d["id"] not in produced}
    assert set(junk) == {"junk", "junk2"}
    assert base64.b64decode(junk["junk"]["raw_b64"]) == b"\xff{not a claim"
    assert_lossless(client, namespace, produced, dead_ok=lambda d: d["id"] in junk)
    assert restarts(daemon.log) == 0, daemon.log


def test_busy_redis_is_waited_out_without_a_worker_death(
    private_redis: PrivateServers, daemons: Daemons, tmp_path: Path
) -> None:
    """BUSY (another client's long script) is weather: workers retry, never crash, and no
    healthy task is counted as a death."""
    server = private_redis.start("--lua-time-limit", "50")  # busy-reply-threshold in 7.0
    namespace = "busy"
    client = make_client(server.url)
    daemon = daemons.start(server.url, namespace, 2)
    daemon.wait_ready()
    produced = produce(client, namespace, tmp_path / "a.txt", real_requests(20))
    # The hog spins until the daemon has met BUSY, then is killed: a fixed-length script
    # could end between two of the workers' commands (CI saw that), so the test would not
    # know whether BUSY was ever met.
    hog = _Hog(server.url)
    hog.start()
    try:
        daemon.wait_for_line(r"Redis unavailable \(.*BUSY", timeout=60)
    finally:
        hog.kill()
    collect(server.url, namespace, len(produced), daemon, client)
    assert_lossless(client, namespace, produced)
    assert restarts(daemon.log) == 0, daemon.log


class _Hog(threading.Thread):
    """A read-only script that never ends on its own, run from a thread; SCRIPT KILL ends it."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ended_by: Exception | None = None
        # Connected now: once the script runs, a new connection's handshake gets BUSY too.
        self.admin = redis.Redis.from_url(url, socket_timeout=10)
        self.admin.ping()

    def run(self) -> None:
        with make_client(self.url, socket_timeout=120) as hog:
            try:
                hog.eval("while true do end", 0)
            except redis.ResponseError as error:
                self.ended_by = error

    def kill(self) -> None:
        """SCRIPT KILL until it takes (the script may not have started yet), then join."""
        with self.admin:
            while self.is_alive():
                try:
                    self.admin.script_kill()
                except redis.ResponseError as error:  # NOTBUSY: not started yet, or gone
                    if "NOTBUSY" not in str(error):
                        raise
                self.join(timeout=0.1)
        assert "killed" in str(self.ended_by).lower(), self.ended_by


def test_a_permission_refused_by_acl_exits_5_with_one_line(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """NOPERM is permanent: the daemon stops with exit 5 and says what was refused, instead
    of restarting workers for ever."""
    user = f"u{uuid.uuid4().hex[:8]}"
    admin = make_client(redis_server.url)
    admin.execute_command(
        "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-evalsha", "-eval"
    )
    url = redis_server.url.replace("redis://", f"redis://{user}:pw@")
    try:
        done = run_cli("blpopq-daemon", "--workers", "1", "--redis-url", url, "--namespace", user)
    finally:
        admin.execute_command("ACL", "DELUSER", user)
    assert done.returncode == 5, done.stderr
    assert "refuses what blpopq needs" in done.stderr
    assert "Traceback" not in done.stderr


def test_produce_with_a_wrong_password_exits_5(redis_server: RedisServer, tmp_path: Path) -> None:
    """A wrong password is a refusal (exit 5), not an unreachable Redis (exit 3)."""
    path = tmp_path / "one.txt"
    path.write_text(f"vip ana mine {prev_hash(1)} 1\n", encoding="utf-8")
    url = redis_server.url.replace("redis://", "redis://nobody:wrong@")
    done = run_cli("blpopq-produce", str(path), "--redis-url", url)
    assert done.returncode == 5, done.stderr
    assert "refuses what blpopq needs" in done.stderr


def test_a_pool_drains_a_redis_over_its_memory_limit_while_producers_are_refused(
    private_redis: PrivateServers, daemons: Daemons, tmp_path: Path
) -> None:
    """maxmemory with noeviction, Redis already over it: a daemon started now still joins,
    renews its leases and drains every queued task (each script removes before it adds),
    while an enqueue is refused whole."""
    server = private_redis.start("--maxmemory-policy", "noeviction")
    namespace = "full"
    client = make_client(server.url)
    produced = produce(client, namespace, tmp_path / "a.txt", real_requests(30))
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used - 50_000)
    with pytest.raises(redis.ResponseError, match="maxmemory"):  # OOM (6.2: inside a script error)
        produce(client, namespace, tmp_path / "b.txt", real_requests(3))
    assert client.hlen(Keyspace(namespace).tasks) == len(produced)  # nothing of it written
    daemon = daemons.start(server.url, namespace, 2)
    collect(server.url, namespace, len(produced), daemon, client)
    assert int(client.info("memory")["used_memory"]) > int(
        client.config_get("maxmemory")["maxmemory"]
    )
    assert_lossless(client, namespace, produced)
    assert restarts(daemon.log) == 0, daemon.log
