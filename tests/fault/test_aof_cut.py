"""A crash that cuts Redis's AOF inside a script's effects (README guarantee 3).

A SIGKILL while Redis appends to its AOF can leave the write cut short. Redis's loader (6.2
and 7.0 alike; Valkey fixed it in 2026, valkey-io/valkey#4342) truncates the file to its
last whole command, which may lie inside the MULTI ... EXEC block that holds one script's
effects: that half block is not applied at this start, but stays in the file, glued to the
next transaction written, and the next start applies it. Found by the fault test of SIGKILL
restarts on Redis 6.2: a second, byte-identical result. The worker had rightly written its
result again after the first restart (its claim was still there); the second restart
replayed the cut half of its first write. blpopq cannot undo effects replayed outside any
script, so the README asks for ``redis-check-aof --fix`` after a crash (a drop-in in
``systemd/`` does it), which cuts before the MULTI. The cut is made here by hand, where
the crash put it, so that the moment is exact.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.instructions import Request
from blpopq.producer import enqueue
from blpopq.protocol import Keyspace, Protocol
from blpopq.tiers import Tier

from ..helpers import prev_hash
from .conftest import PrivateServers

RESULT = b'{"id":"the-result","status":"ok"}'
AOF = ("--appendonly", "yes", "--appendfsync", "always")


def aof_file(server: RedisServer) -> Path:
    """The file Redis appends to: the newest INCR file (Redis >= 7), else appendonly.aof."""
    incr = sorted((server.directory / "appendonlydir").glob("*.incr.aof"))
    return incr[-1] if incr else server.directory / "appendonly.aof"


def cut_inside_last_transaction(server: RedisServer) -> None:
    """Leave the AOF as a crash in mid-write would: the last MULTI block ends a few bytes
    into the command after the result's RPUSH (the rest of the finish never reached it)."""
    path = aof_file(server)
    data = path.read_bytes()
    multi = data.rindex(b"MULTI")
    after_push = data.index(RESULT, multi) + len(RESULT) + len(b"\r\n")
    assert after_push + 5 < len(data), "the finish wrote nothing after its RPUSH"
    path.write_bytes(data[: after_push + 5])


def restart(server: RedisServer, repaired: bool) -> Protocol:
    if repaired:
        assert server.repair_aof(), "no AOF found to repair"
    server.start()
    return protocol_of(server)


def request(n: int) -> Request:
    return Request(Tier.ALTO, f"c{n}", "mine", prev_hash(n), 1, 1, None, "f.txt", n)


def protocol_of(server: RedisServer) -> Protocol:
    return Protocol(make_client(server.url), Keyspace("aofcut"))


@pytest.mark.parametrize("repaired", [True, False], ids=["check-aof", "as-loaded"])
def test_a_finish_cut_short_in_the_aof_and_written_again_stays_one_result(
    private_redis: PrivateServers, repaired: bool
) -> None:
    server = private_redis.start(*AOF)
    protocol = protocol_of(server)
    requests = [
        Request(Tier.ALTO, f"c{n}", "mine", prev_hash(n), 1, 1, None, "f", n) for n in (1, 2)
    ]
    enqueue(protocol, requests, chunk_size=10)
    protocol.heartbeat("w:1", "join", lease=600)
    taken = protocol.take("w:1")
    assert taken is not None
    written, _ = protocol.settle_and_take("w:1", taken.key, taken.position, RESULT)
    assert written
    protocol.client.close()

    server.kill()  # its reply lost with the connection, and its AOF write cut short
    cut_inside_last_transaction(server)
    protocol = restart(server, repaired)
    # Loaded either way without the cut finish: the claim is still the worker's, so it
    # writes its result again, as after any lost reply.
    assert [k for k, _ in protocol.claims_of("w:1")] == [taken.key]
    assert protocol.client.lrange(protocol.keys.results, 0, -1) == []
    assert protocol.settle_result(taken.key, taken.position, RESULT)
    protocol.client.close()

    server.kill()  # a second crash, after nothing was cut this time
    protocol = restart(server, repaired)
    results = protocol.client.lrange(protocol.keys.results, 0, -1)
    protocol.client.close()
    if repaired:
        assert results == [RESULT]
    else:
        # What the README warns of: the cut half of the first finish, applied now.
        assert results == [RESULT, RESULT], (
            "this redis-server no longer replays a transaction cut by a crash: README "
            "guarantee 3 and systemd/redis-aof-repair.conf may say so"
        )


def drop_in_command(data_dir: Path) -> str:
    """The shell command of systemd/redis-aof-repair.conf's ExecStartPre, for ``data_dir``."""
    unit = Path(__file__).parents[2] / "systemd" / "redis-aof-repair.conf"
    [line] = [x for x in unit.read_text().splitlines() if x.startswith("ExecStartPre=")]
    command = line.removeprefix("ExecStartPre=/bin/sh -c '").removesuffix("'")
    return command.replace("/var/lib/redis", str(data_dir))


def test_the_systemd_drop_in_cuts_the_half_transaction_before_redis_starts(
    private_redis: PrivateServers, tmp_path: Path
) -> None:
    server = private_redis.start(*AOF)
    protocol = protocol_of(server)
    enqueue(protocol, [request(1)], chunk_size=10)
    protocol.heartbeat("w:1", "join", lease=600)
    taken = protocol.take("w:1")
    assert taken is not None
    protocol.settle_and_take("w:1", taken.key, taken.position, RESULT)
    protocol.client.close()
    server.kill()
    cut_inside_last_transaction(server)
    before = aof_file(server).read_bytes()
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "redis-check-aof").symlink_to(server.binary)  # redis-server, by its argv[0]
    env = {"PATH": f"{tools}:/usr/bin:/bin"}
    done = subprocess.run(
        ["/bin/sh", "-c", drop_in_command(server.directory)], env=env, check=False
    )
    assert done.returncode == 0
    after = aof_file(server).read_bytes()
    assert before.startswith(after) and after.rindex(b"MULTI") < after.rindex(b"EXEC")
    again = subprocess.run(
        ["/bin/sh", "-c", drop_in_command(server.directory)], env=env, check=False
    )
    assert again.returncode == 0 and aof_file(server).read_bytes() == after  # valid: unchanged
