"""`blpopq dead list|show|requeue|purge` through the installed CLI, against a real Redis.

Dead letters are made the ways blpopq makes them: a poison task recovered from a worker that
died with it (the reaper, max_deaths=1), a worker's letter for a task it could not decode, and
a real daemon dead-lettering garbage RPUSHed into a tier.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from blpopq.deadletters import parse, plan
from blpopq.embedded import RedisServer
from blpopq.instructions import Request
from blpopq.outcomes import DeadLetter
from blpopq.producer import enqueue
from blpopq.protocol import Protocol
from blpopq.recovery import recover
from blpopq.tiers import Tier

from ..helpers import Daemon, cli_env, prev_hash, run_cli


def request(tier: Tier, n: int) -> Request:
    return Request(tier, f"c{n}", "mine", prev_hash(n), 1, 1, None, "f.txt", n)


def target(server: RedisServer, namespace: str) -> list[str]:
    return ["--redis-url", server.url, "--namespace", namespace]


def dead(server: RedisServer, namespace: str, *args: str, columns: int | None = None) -> Any:
    env = cli_env(COLUMNS=str(columns)) if columns else None
    return run_cli("blpopq", "dead", *args, *target(server, namespace), env=env)


def letters(client: redis.Redis, protocol: Protocol) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(protocol.keys.dead, 0, -1)]


def poison(protocol: Protocol, tier: Tier, n: int) -> tuple[str, str]:
    """Enqueue two tasks in ``tier`` and have the first kill its worker once with
    max_deaths=1: it is dead-lettered with its history. Returns (dead id, the other id)."""
    report = enqueue(protocol, [request(tier, n), request(tier, n + 1)], chunk_size=10)
    assert protocol.heartbeat(f"w:{n}", "join", lease=0)  # a lease that has run out already
    taken = protocol.take(f"w:{n}")  # (takes the highest tier: poison lower tiers first)
    assert taken is not None and json.loads(taken.raw)["id"] == report.ids[0]
    done = recover(protocol, orphan_grace=0.0, max_deaths=1, reaper="test")
    assert (done.requeued, done.dead_lettered) == (0, 1)
    return report.ids[0], report.ids[1]


def start_daemon(server: RedisServer, namespace: str) -> Daemon:
    return Daemon("--workers", "1", "--block-timeout", "0.5", *target(server, namespace))


def expect(server: RedisServer, namespace: str, count: int, *args: str) -> Any:
    """blpopq-collect --expect: waits until ``count`` results and dead letters exist."""
    return run_cli(
        "blpopq-collect", "--expect", str(count), "--timeout", "60", "--format", "jsonl",
        *args, *target(server, namespace),
    )  # fmt: skip


def garbage_letter(protocol: Protocol, raw: str = "not json {", reason: str = "bad") -> str:
    """Push a letter; returns it as stored (Redis numbers it: a leading "seq" field)."""
    letter = DeadLetter(reason, raw, None, None, "alto", "w:9", time.time()).to_json()
    seq = protocol.dead_letter_unclaimed(letter)
    return f'{{"seq":{seq},' + letter[1:]


# --- list and show ------------------------------------------------------------------------------


def test_list_of_no_dead_letters(redis_server: RedisServer, namespace: str) -> None:
    done = dead(redis_server, namespace, "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no dead letters\n"


def test_list_shows_id_tier_batch_time_and_a_truncated_reason(
    redis_server: RedisServer, namespace: str, protocol: Protocol
) -> None:
    task_id, _ = poison(protocol, Tier.VIP, 1)
    garbage_letter(protocol, reason="x" * 200)
    done = dead(redis_server, namespace, "list", columns=200)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["#", "id", "tier", "batch", "at", "reason"]
    first, second = lines[1].split(maxsplit=5), lines[2].split(maxsplit=5)
    assert first[:4] == ["@1", task_id, "vip", task_id.rsplit(".", 1)[0]]
    assert first[5].startswith("its worker died 1 time while")
    assert second[:4] == ["@2", "-", "alto", "-"]
    assert second[5] == "x" * 59 + "…"  # truncated to 60 characters
    assert lines[3] == "2 dead letters"
    # Piped, with no COLUMNS: fitted to 80 columns, the batch left out (issue 11, item 10).
    narrow = dead(redis_server, namespace, "list").stdout.splitlines()
    assert max(len(line) for line in narrow) <= 80
    assert narrow[0].split() == ["#", "id", "tier", "at", "reason"]
    assert narrow[3] == "(batch left out to fit 80 columns)"


def test_show_prints_the_full_letter_as_pretty_json(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    task_id, _ = poison(protocol, Tier.ALTO, 1)
    done = dead(redis_server, namespace, "show", task_id)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == letters(client, protocol)[0]
    assert done.stdout.startswith("{\n  ")  # indented
    assert json.loads(json.loads(done.stdout)["raw"])["history"][0]["worker"] == "w:1"


def test_show_unknown_id_exits_2(redis_server: RedisServer, namespace: str) -> None:
    done = dead(redis_server, namespace, "show", "no-such-id")
    assert done.returncode == 2
    assert "no dead letter no-such-id" in done.stderr
    assert done.stdout == ""


# --- requeue ----------------------------------------------------------------------------------


def test_requeue_puts_the_task_at_the_tail_registered_without_its_history(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    keys = protocol.keys
    task_id, other = poison(protocol, Tier.COMUN, 1)
    done = dead(redis_server, namespace, "requeue", task_id)
    assert done.returncode == 0, done.stderr
    assert f"requeued {task_id} at the tail of comun" in done.stdout
    assert client.llen(keys.dead) == 0
    # At the tail, behind the task that was waiting, and registered like a new task.
    queue = [json.loads(raw) for raw in client.lrange(keys.tier(Tier.COMUN), 0, -1)]
    assert [task["id"] for task in queue] == [other, task_id]
    assert "history" not in queue[1]
    assert json.loads(client.hget(keys.tasks, task_id)) == queue[1]
    seq_other = client.zscore(keys.queued(Tier.COMUN), other)
    seq_requeued = client.zscore(keys.queued(Tier.COMUN), task_id)
    assert seq_other is not None and seq_requeued is not None and seq_requeued > seq_other


def test_requeued_task_runs_again_and_gets_exactly_one_result(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    task_id, other = poison(protocol, Tier.VIP, 1)
    assert dead(redis_server, namespace, "requeue", task_id).returncode == 0
    with start_daemon(redis_server, namespace) as daemon:
        collect = expect(redis_server, namespace, 2, "--batch", task_id.rsplit(".", 1)[0])
        assert daemon.stop() == 0, daemon.log
    assert collect.returncode == 0, collect.stderr
    results = [json.loads(line) for line in collect.stdout.splitlines()]
    assert sorted(r["id"] for r in results) == sorted([task_id, other])
    assert all(r["status"] == "ok" for r in results)
    assert client.llen(protocol.keys.dead) == 0
    assert client.hlen(protocol.keys.tasks) == 0  # both closed


def test_requeue_of_a_task_that_is_not_json_with_an_id_exits_2_and_changes_nothing(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    keys = protocol.keys
    task_id, _ = poison(protocol, Tier.VIP, 1)
    garbage_letter(protocol)
    before = (client.lrange(keys.dead, 0, -1), client.lrange(keys.tier(Tier.VIP), 0, -1))
    done = dead(redis_server, namespace, "requeue", task_id, "@2")
    assert done.returncode == 2
    assert "cannot requeue @2: its task is not a JSON object with an id" in done.stderr
    assert "nothing was requeued" in done.stderr
    after = (client.lrange(keys.dead, 0, -1), client.lrange(keys.tier(Tier.VIP), 0, -1))
    assert after == before


def test_requeue_unknown_id_exits_2(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    task_id, _ = poison(protocol, Tier.VIP, 1)
    done = dead(redis_server, namespace, "requeue", task_id, "nope")
    assert done.returncode == 2
    assert "no dead letter nope" in done.stderr
    assert client.llen(protocol.keys.dead) == 1


def test_requeue_all_requeues_what_it_can_and_leaves_the_rest(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    keys = protocol.keys
    first, _ = poison(protocol, Tier.ALTO, 1)
    junk = garbage_letter(protocol)
    second, _ = poison(protocol, Tier.VIP, 3)
    done = dead(redis_server, namespace, "requeue", "--all")
    assert done.returncode == 0, done.stderr
    assert "requeued 2 dead letters" in done.stdout
    assert "cannot requeue @2" in done.stderr
    assert client.lrange(keys.dead, 0, -1) == [junk.encode()]
    assert client.hexists(keys.tasks, first) and client.hexists(keys.tasks, second)


def test_requeue_refuses_a_task_that_is_open_already(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    """A letter whose task is queued again (say, re-produced) must not make a second copy."""
    report = enqueue(protocol, [request(Tier.VIP, 1)], chunk_size=10)
    raw = client.lindex(protocol.keys.tier(Tier.VIP), 0).decode()
    letter = DeadLetter("copy", raw, report.ids[0], report.batch, "vip", "w:1", time.time())
    protocol.dead_letter_unclaimed(letter.to_json())
    done = dead(redis_server, namespace, "requeue", report.ids[0])
    assert done.returncode == 2
    assert "a task with this id is queued or running" in done.stderr
    assert client.llen(protocol.keys.tier(Tier.VIP)) == 1
    assert client.llen(protocol.keys.dead) == 1


def test_requeue_of_a_letter_someone_else_removed_pushes_nothing(
    protocol: Protocol, client: redis.Redis
) -> None:
    """The letter is checked under WATCH: one gone meanwhile is not requeued twice."""
    poison(protocol, Tier.VIP, 1)
    [entry] = parse(protocol.dead_letters())
    step = plan(entry)
    assert protocol.purge_dead([entry.raw]) == 1
    assert protocol.requeue_dead(entry.raw, step.tier, step.task_id, step.task) == "gone"
    assert client.llen(protocol.keys.tier(Tier.VIP)) == 1  # only the other task
    assert not client.hexists(protocol.keys.tasks, step.task_id)


def test_a_daemons_dead_letters_can_be_requeued_once_fixed_or_purged(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    """Garbage RPUSHed by other code: the daemon dead-letters it; requeue runs a letter whose
    task has an id again (and it dies again: it is still bad), garbage can only be purged."""
    keys = protocol.keys
    client.rpush(keys.tier(Tier.COMUN), "garbage", json.dumps({"id": "x.1", "op": "dance"}))
    with start_daemon(redis_server, namespace) as daemon:
        assert expect(redis_server, namespace, 2).returncode == 0, daemon.log
        listing = dead(redis_server, namespace, "list")
        assert listing.returncode == 0
        assert [line.split()[1] for line in listing.stdout.splitlines()[1:3]] == ["-", "x.1"]
        assert dead(redis_server, namespace, "requeue", "@1").returncode == 2
        before = letters(client, protocol)[1]
        assert dead(redis_server, namespace, "requeue", "x.1").returncode == 0
        # It runs again and is dead-lettered again (it is still not a valid task).
        assert expect(redis_server, namespace, 2).returncode == 0, daemon.log
        assert daemon.stop() == 0, daemon.log
    after = letters(client, protocol)
    assert [entry["id"] for entry in after] == [None, "x.1"]
    assert after[1]["at"] > before["at"]  # a new letter: the task was taken and run again
    assert daemon.log.count("dead-lettering task x.1") == 2
    assert daemon.log.count("dead-lettering an item without an id from comun") == 1
    assert "task None" not in daemon.log  # issue 11, item 11
    purged = dead(redis_server, namespace, "purge", "@1")
    assert purged.returncode == 0, purged.stderr
    assert [entry["id"] for entry in letters(client, protocol)] == ["x.1"]


# --- purge ------------------------------------------------------------------------------------


def test_purge_by_id_leaves_the_others(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    first, _ = poison(protocol, Tier.ALTO, 1)
    junk = garbage_letter(protocol)
    second, _ = poison(protocol, Tier.VIP, 3)
    done = dead(redis_server, namespace, "purge", first)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"purged {first}", "purged 1 dead letter"]
    remaining = letters(client, protocol)
    assert [entry["id"] for entry in remaining] == [None, second]
    assert client.lindex(protocol.keys.dead, 0) == junk.encode()


def test_purge_all_and_bad_input(
    redis_server: RedisServer, namespace: str, protocol: Protocol, client: redis.Redis
) -> None:
    poison(protocol, Tier.VIP, 1)
    garbage_letter(protocol)
    for args, message in [
        ((), "give the dead letters' IDs, or --all"),
        (("--all", "@1"), "give IDs or --all, not both"),
        (("@1", "@7"), "no dead letter @7"),
    ]:
        done = dead(redis_server, namespace, "purge", *args)
        assert done.returncode == 2, args
        assert message in done.stderr
        assert client.llen(protocol.keys.dead) == 2  # nothing removed on bad input
    done = dead(redis_server, namespace, "purge", "--all")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "purged 2 dead letters"
    assert client.llen(protocol.keys.dead) == 0
    assert client.llen(protocol.keys.tier(Tier.VIP)) == 1  # queued work is untouched
