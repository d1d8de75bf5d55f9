"""Orphans: no process of blpopq outlives the one that started it, even after a SIGKILL.

A supervisor killed with SIGKILL runs no cleanup, so its workers must notice on their own
(a parent-death signal, or a pipe's EOF: blpopq/lifeline.py) and stop as an operator's
SIGTERM would stop them, so each task still ends as exactly one outcome. ``blpopq run`` killed
the same way must take its embedded redis-server, its daemon and the daemon's workers with
it, and the next ``run`` removes the temporary directory the killed one left behind.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from blpopq.embedded import RedisServer
from blpopq.protocol import Keyspace

from ..helpers import BIN, LineReader, cli_env, prev_hash, wait_until
from .conftest import Daemons, children
from .test_faults import assert_lossless, collect, live_workers, proc_state, produce, slow

#: prev_hash(7) at difficulty 28: no nonce below 150 M qualifies (see tests/integration/
#: test_cli.py), so this task is still running whenever the test kills `run`.
ENDLESS = f"vip ana mine {prev_hash(7)} 28"


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaps (its parent was SIGKILLed)."""
    return proc_state(pid) in (None, "Z")


@contextlib.contextmanager
def killed_at_exit(pids: list[int]) -> Iterator[None]:
    """A failing test must not leave the orphans it is about behind: on an exception, kill
    every pid in ``pids`` (read then, so the test may add to it as it learns them)."""
    try:
        yield
    except BaseException:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise


# --- a. SIGKILL of the supervisor ----------------------------------------------------------------


@pytest.mark.parametrize(("grace", "ends_as"), [("30", "result"), ("0", "queued")])
def test_workers_of_a_sigkilled_supervisor_stop_gracefully(
    redis_server: RedisServer,
    namespace: str,
    client: redis.Redis,
    tmp_path: Path,
    daemons: Daemons,
    grace: str,
    ends_as: str,
) -> None:
    """Guarantees: no loss and graceful stop, when the supervisor dies by SIGKILL. Each worker
    gets the stop an operator's SIGTERM would give it: the task it holds finishes within
    --grace (one result) or goes back to the head of its tier, nothing stays in flight, every
    worker process exits, and a new daemon finishes what was put back: one outcome per task."""
    keys = Keyspace(namespace)
    reqs = [slow("vip", "ana", prev_hash(21)), slow("alto", "bob", prev_hash(45))]
    produced = produce(client, namespace, tmp_path / "slow.txt", reqs)
    daemon = daemons.start(redis_server.url, namespace, 2, "--grace", grace)
    daemon.wait_ready()
    wait_until(lambda: client.hlen(keys.inflight) == 2, "both tasks in flight", daemon)
    workers = live_workers(daemon)
    assert len(workers) == 2, daemon.log

    with killed_at_exit(workers):
        daemon.process.kill()
        daemon.process.wait(10)
        wait_until(lambda: all(gone(pid) for pid in workers), "every worker exited", timeout=20)

    assert client.hlen(keys.inflight) == 0, "a task stayed claimed by a worker that exited"
    queued = sum(client.llen(key) for key in keys.tiers)
    results = client.llen(keys.results)
    assert results + queued == len(produced), (results, queued)
    # With --grace 30 the 1-2 s tasks finish; with --grace 0 they go back (unless one happened
    # to be on its very last hashes when the signal came: still exactly one outcome).
    assert (results if ends_as == "result" else queued) >= 1, (results, queued)
    daemon.wait_for_line(r"parent process \d+ died: stopping")

    second = daemons.start(redis_server.url, namespace, 1)
    second.wait_ready()
    collect(redis_server.url, namespace, len(produced), second, client)
    assert second.stop() == 0, second.log
    assert_lossless(client, namespace, produced)


# --- b. SIGKILL of `blpopq run` ------------------------------------------------------------------


class Run:
    """``blpopq run`` with an embedded Redis, its log read as it comes."""

    def __init__(self, path: Path, namespace: str, tmpdir: Path) -> None:
        env = cli_env(TMPDIR=str(tmpdir))  # its own temp root: other runs' dirs are not ours
        assert not any(k.endswith("REDIS_URL") for k in env)
        args = ["--workers", "2", "--block-timeout", "0.5", "--grace", "1"]
        self.process = subprocess.Popen(
            [str(BIN / "blpopq"), "run", str(path), *args, "--namespace", namespace],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = LineReader(self.process)
        self.log: list[str] = []

    def wait_for(self, pattern: str) -> re.Match[str]:
        regex = re.compile(pattern)
        while True:
            try:
                line = self.reader.get(timeout=30)
            except queue.Empty:
                raise AssertionError(f"no line {pattern!r}:\n{''.join(self.log)}") from None
            self.log.append(line)
            match = regex.search(line)
            if match:
                return match


def start_run_holding_a_task(run: Run, namespace: str, pids: list[int]) -> Path:
    """Wait until `run`'s workers are up and one holds the endless task; note every pid of
    the family in ``pids``. Returns the embedded server's socket."""
    socket_path = Path(run.wait_for(r"at unix://(\S+)\?db=0").group(1))
    pids += [int(run.wait_for(rf"worker {i} started \(pid (\d+)\)").group(1)) for i in (0, 1)]
    run.wait_for(r"ready: 2 workers")
    family = children(run.process.pid)
    pids += family
    assert len(family) == 2, f"expected the redis-server and the daemon: {family}"
    with redis.Redis(unix_socket_path=str(socket_path)) as client:
        inflight = Keyspace(namespace).inflight
        wait_until(lambda: client.hlen(inflight) == 1, "the endless task in flight")
    return socket_path


def test_sigkilled_run_takes_its_redis_daemon_and_workers_with_it(
    namespace: str, tmp_path: Path
) -> None:
    """Guarantee: `blpopq run` leaves nothing behind, even killed by SIGKILL while a worker
    holds a task: its embedded redis-server, its daemon and every worker exit, and the next
    `run` removes the temporary directory the killed one could not (and serves its file)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    (tmp_path / "endless.txt").write_text(ENDLESS + "\n", encoding="utf-8")
    run = Run(tmp_path / "endless.txt", namespace, tmpdir)
    pids = [run.process.pid]
    with killed_at_exit(pids):
        directory = start_run_holding_a_task(run, namespace, pids).parent
        assert directory.parent == tmpdir, directory
        assert directory.name.startswith(f"blpopq-redis-{run.process.pid}-"), directory
        run.process.kill()
        run.process.wait(10)
        wait_until(lambda: all(gone(pid) for pid in pids), f"{pids} exited", timeout=30)
    assert directory.exists(), "nothing left to clean: the test proved nothing"

    (tmp_path / "quick.txt").write_text(f"vip bob mine {prev_hash(3)} 4\n", encoding="utf-8")
    second = Run(tmp_path / "quick.txt", namespace, tmpdir)
    with killed_at_exit([second.process.pid]):
        code = second.process.wait(60)
    output = "".join(second.reader.rest())
    assert code == 0, output
    assert re.search(r"\bbob\b.*\bok\b", output), output
    assert not directory.exists(), "the stale directory of the killed run is still there"
    assert list(tmpdir.iterdir()) == [], "the second run left its own directory behind"
