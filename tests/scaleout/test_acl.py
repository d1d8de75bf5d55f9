"""Least privilege on a real Redis 7: each role's user, made with exactly the rules `blpopq acl
ROLE` prints, runs that role end to end; Redis's own ACL LOG proves nothing was refused on
the way (a refusal the code rides out, such as a reaper step, would leave an entry there).
A producer's user running the daemon fails with exit 5 and a line naming the command."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blpopq.access import ROLES, script_commands
from blpopq.embedded import RedisServer
from blpopq.identity import pid_of
from blpopq.keyspace import Keyspace
from blpopq.protocol import SCRIPTS
from blpopq.records import Claim
from blpopq.tiers import Tier

from ..helpers import Daemon, cli_env, prev_hash, run_cli, wait_until
from .conftest import start

pytestmark = pytest.mark.redis

NS = "acl"
#: ~6.6 M hashes on the hashlib kernel (tests/integration/test_cli.py): seconds, so a worker
#: can be killed while it runs this task and the reaper's path is taken.
SLOW = f"vip slow mine {prev_hash(27)} 22"
FAST = (
    "--block-timeout", "0.5", "--lease", "1", "--orphan-grace", "0.3", "--reaper-period", "0.2",
)  # fmt: skip


@pytest.fixture(scope="module")
def server(redis7: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start(redis7, tmp_path_factory.mktemp("acl"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(server: RedisServer) -> Iterator[redis.Redis]:
    """The default user, which the tests use to set up users and look at the ACL log."""
    client = redis.Redis(unix_socket_path=str(server.socket_path))
    yield client
    client.close()


def user(admin: redis.Redis, server: RedisServer, role: str, namespace: str = NS) -> str:
    """A user with exactly the rules of ``role``; its URL."""
    rules = run_cli("blpopq", "acl", role, "--namespace", namespace)
    assert rules.returncode == 0, rules.stderr
    name = f"{role}-{namespace}"
    admin.execute_command(
        "ACL", "SETUSER", name, "reset", "on", f">pw-{role}", *rules.stdout.split()
    )
    return f"redis://{name}:pw-{role}@127.0.0.1:{server.port}/0"


def refused(admin: redis.Redis) -> list[tuple[str, str]]:
    """(user, command or key) of every refusal Redis logged since the last reset."""
    return [
        (entry["username"], entry["object"])
        for entry in admin.acl_log()
        if not entry["username"].startswith("default")
    ]


def env(url: str) -> dict[str, str]:
    return cli_env(REDIS_URL=url, BLPOPQ_NAMESPACE=NS, BLPOPQ_KERNEL="hashlib")


def test_every_script_names_its_commands_literally() -> None:
    for name in SCRIPTS:
        assert script_commands(name), name


def test_each_role_runs_with_exactly_its_rules(
    server: RedisServer, admin: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: the four roles' rules suffice for everything each role does, recovery of a
    killed worker included, and Redis refused nothing (its ACL LOG stays empty)."""
    admin.acl_log_reset()
    urls = {role: user(admin, server, role) for role in ROLES}
    keys = Keyspace(NS)
    lines = [SLOW] + [f"alto c{n} mine {prev_hash(n)} 4" for n in range(5)]
    path = tmp_path / "acl.txt"
    path.write_text("\n".join(lines) + "\n")

    produced = run_cli("blpopq-produce", str(path), env=env(urls["producer"]))
    assert produced.returncode == 0, produced.stderr
    # A task that cannot run: its dead letter gives `dead show` and `dead requeue` a subject.
    admin.rpush(keys.tier(Tier.COMUN), '{"id": "bad.1"}')

    args = ("--workers", "2", "--log-level", "DEBUG", *FAST)
    with Daemon(*args, env=env(urls["daemon"])) as daemon:
        daemon.wait_ready()
        # Kill the worker running the slow task: the supervisor reports it, the reaper
        # gives the task back (requeue.lua), another worker runs it.
        wait_until(lambda: admin.hlen(keys.inflight) > 0 and _slow_owner(admin, keys), "slow claim")
        os.kill(_slow_owner(admin, keys), signal.SIGKILL)
        collector = env(urls["collector"])
        done = run_cli(
            "blpopq-collect", "--batch", "last", "--expect", "6", "--timeout", "60",
            "--format", "jsonl", env=collector,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stderr}\n{daemon.log}"
        wait_until(lambda: admin.llen(keys.dead) == 1, "the dead letter", daemon)
        for command in (["status"], ["dead", "list"], ["dead", "show", "bad.1"]):
            seen = run_cli("blpopq", *command, env=collector)
            assert seen.returncode == 0, (command, seen.stderr)
        drained = run_cli("blpopq-collect", "--drain", "--format", "jsonl", env=collector)
        assert drained.returncode == 0, drained.stderr

        operator = env(urls["admin"])
        for command in (["dead", "requeue", "bad.1"], ["cancel", "last"]):
            done_ = run_cli("blpopq", *command, env=operator)
            assert done_.returncode == 0, (command, done_.stderr)
        wait_until(lambda: admin.llen(keys.dead) == 1, "the letter again", daemon)
        purged = run_cli("blpopq", "dead", "purge", "--all", env=operator)
        assert purged.returncode == 0, purged.stderr
        assert daemon.stop() == 0, daemon.log

    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["client"] for r in results) == sorted(["slow", *(f"c{n}" for n in range(5))])
    assert "(worker died:" in daemon.log, "the reaper's path was not taken"
    ran = run_cli("blpopq", "run", str(path), "--workers", "1", *FAST[:2], env=env(urls["admin"]))
    assert ran.returncode == 0, ran.stderr
    # The daemon's look at maxmemory-policy is the one refusal it expects and rides out.
    assert [r for r in refused(admin) if r != ("daemon-acl", "config|get")] == []
    assert "NOPERM" not in daemon.log and "no permissions" not in daemon.log.lower()


def _slow_owner(admin: redis.Redis, keys: Keyspace) -> int:
    """The pid of the worker whose claim holds the slow task (0: none yet)."""
    for key, record in admin.hgetall(keys.inflight).items():
        claim = Claim.from_json(record, admin.hget(keys.tasks, key))  # compact: registered
        if b'"slow"' in claim.task:
            return pid_of(claim.worker) or 0
    return 0


def test_a_producer_running_the_daemon_is_refused_with_exit_5(
    server: RedisServer, admin: redis.Redis
) -> None:
    url = user(admin, server, "producer", "acl-refused")
    daemon = Daemon(
        "--workers", "1", *FAST, env=cli_env(REDIS_URL=url, BLPOPQ_NAMESPACE="acl-refused")
    )
    with daemon:
        code = daemon.process.wait(60)
    daemon.stop()
    assert code == 5, daemon.log
    assert "Traceback" not in daemon.log
    refusal = daemon.wait_for_line(r"Redis refuses what blpopq needs: .*?'([a-z|]+)'")
    # The daemon's first script (recording its fairness policy) runs HGET, which a
    # producer's rules do not allow.
    assert refusal.group(1) == "hget", refusal.group(0)
