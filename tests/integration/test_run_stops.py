"""How `blpopq run` ends early: a terminal's Ctrl-C (SIGINT to the whole process group),
twice, and --timeout. Whatever finished is printed, the tasks not finished are back in Redis
(counted in the summary), and the exit status says why it ended.

Each run works against the test's Redis (--redis-url), so what it left queued can be checked
after it exits; its own process group stands for a terminal's foreground job."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import redis

from blpopq.embedded import RedisServer
from blpopq.protocol import Keyspace
from blpopq.tiers import TIERS

from ..helpers import Daemon, cli_env, prev_hash, wait_until
from .test_cli import ENDLESS_DIFFICULTY, ENDLESS_PREV, SLOW_DIFFICULTY, SLOW_PREV

LEFT = re.compile(r"^blpopq run: (interrupted|timed out): (\d+) of (\d+) tasks of batch (\S+) ")


def start_run(server: RedisServer, namespace: str, path: Path, grace: float, *extra: str) -> Daemon:
    """`blpopq run` with one worker on the hashlib kernel (slow tasks stay slow), in a
    process group of its own."""
    return Daemon(
        "run", str(path), "--workers", "1", "--block-timeout", "0.5", "--grace", str(grace),
        "--format", "jsonl", "--redis-url", server.url, "--namespace", namespace, *extra,
        command="blpopq", new_session=True, env=cli_env(BLPOPQ_KERNEL="hashlib"),
    )  # fmt: skip


def finish(run: Daemon) -> tuple[int, list[dict[str, Any]], str]:
    """Exit status, printed results and stderr of a run that is ending."""
    code = run.process.wait(120)
    run._reader.join(10)
    assert run.process.stdout is not None
    rows = [json.loads(line) for line in run.process.stdout.read().splitlines()]
    return code, rows, run.log


def queued(client: redis.Redis, namespace: str) -> dict[str, list[str]]:
    """The clients of the tasks waiting in each tier, head first."""
    keys = Keyspace(namespace)
    return {
        tier.value: [json.loads(raw)["client"] for raw in client.lrange(keys.tier(tier), 0, -1)]
        for tier in TIERS
    }


def running_one(client: redis.Redis, namespace: str, results: int, run: Daemon) -> None:
    keys = Keyspace(namespace)
    wait_until(
        lambda: client.llen(keys.results) == results and client.hlen(keys.inflight) == 1,
        f"{results} results and a task running",
        run,
    )


def assert_left(stderr: str, why: str, left: int, total: int, client: redis.Redis, ns: str) -> None:
    [match] = [m for m in map(LEFT.match, stderr.splitlines()) if m]
    assert match.group(1, 2, 3) == (why, str(left), str(total)), stderr
    assert f"namespace {ns} on redis://127.0.0.1:" in stderr, stderr
    batch = match.group(4)
    ids = [f"{batch}.{n}" for n in range(1, total + 1)]
    open_ids = [i for i in ids if client.hexists(Keyspace(ns).tasks, i)]
    assert len(open_ids) == left, "the count said must be what Redis holds"
    assert client.hlen(Keyspace(ns).inflight) == 0, "nothing left claimed"
    assert " ERROR " not in stderr, stderr


def test_one_ctrl_c_lets_the_running_task_finish_prints_and_exits_130(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """One SIGINT to run's process group: the task running (a few seconds of hashing) is
    finished and printed with those before it, the workers take nothing more, the rest stays
    queued and the summary counts it; exit 130. Had the pool heard the signal too (it would
    if it shared run's group), it would have been asked twice and put the task back."""
    path = tmp_path / "f.txt"
    quick = [f"vip q{n} mine {prev_hash(n)} 4" for n in range(3)]
    path.write_text(
        "\n".join([
            *quick,
            f"alto slow mine {SLOW_PREV} {SLOW_DIFFICULTY}",
            f"comun e1 mine {ENDLESS_PREV} {ENDLESS_DIFFICULTY}",
            f"comun e2 mine {prev_hash(5)} 4",
        ]) + "\n"
    )  # fmt: skip
    with start_run(redis_server, namespace, path, 60.0) as run:
        running_one(client, namespace, 3, run)
        os.killpg(run.process.pid, signal.SIGINT)
        code, rows, stderr = finish(run)
    assert code == 130, stderr
    assert [r["client"] for r in rows] == ["q0", "q1", "q2", "slow"], stderr
    assert rows[-1]["status"] == "ok"
    assert queued(client, namespace) == {"vip": [], "alto": [], "comun": ["e1", "e2"]}
    assert_left(stderr, "interrupted", 2, 6, client, namespace)


def test_a_second_ctrl_c_puts_the_running_task_back_at_once(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """The second SIGINT does not wait out the grace (600 s here: the test's deadline would
    end first): the endless task goes back to the head of its tier, the finished ones are
    printed; exit 130."""
    path = tmp_path / "f.txt"
    path.write_text(
        f"vip q0 mine {prev_hash(0)} 4\nvip q1 mine {prev_hash(1)} 4\n"
        f"alto endless mine {ENDLESS_PREV} {ENDLESS_DIFFICULTY}\ncomun c0 mine {prev_hash(2)} 3\n"
    )
    with start_run(redis_server, namespace, path, 600.0) as run:
        running_one(client, namespace, 2, run)
        os.killpg(run.process.pid, signal.SIGINT)
        run.wait_for_line(r"interrupted: running tasks finish within the grace")
        os.killpg(run.process.pid, signal.SIGINT)
        code, rows, stderr = finish(run)
    assert code == 130, stderr
    assert [r["client"] for r in rows] == ["q0", "q1"], stderr
    assert queued(client, namespace) == {"vip": [], "alto": ["endless"], "comun": ["c0"]}
    assert_left(stderr, "interrupted", 2, 4, client, namespace)


def test_timeout_stops_at_once_prints_what_finished_and_exits_4(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """--timeout does not wait out the grace (600 s): the endless task goes back at once,
    the finished ones are printed, the summary counts what is left; exit 4."""
    path = tmp_path / "f.txt"
    path.write_text(
        f"vip q0 mine {prev_hash(0)} 4\nvip q1 mine {prev_hash(1)} 4\n"
        f"alto endless mine {ENDLESS_PREV} {ENDLESS_DIFFICULTY}\n"
    )
    with start_run(redis_server, namespace, path, 600.0, "--timeout", "5") as run:
        code, rows, stderr = finish(run)
    assert code == 4, stderr
    assert [r["client"] for r in rows] == ["q0", "q1"], stderr
    assert queued(client, namespace) == {"vip": [], "alto": ["endless"], "comun": []}
    assert_left(stderr, "timed out", 1, 3, client, namespace)
    assert "blpopq run: error: only 2 outcomes arrived within 5.0 s" in stderr, stderr
