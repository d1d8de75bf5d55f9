"""Fixtures for the fault tests: daemons and private redis-servers that are always cleaned up,
and a seeded random source whose seed is printed so a failing run can be replayed.

A test that fails half-way leaves processes behind unless someone kills them: a supervisor
killed with SIGKILL leaves its workers running (and a SIGSTOPped worker ignores SIGTERM), so
teardown continues stopped workers, asks the supervisor to stop, and kills what remains.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from blpopq.embedded import RedisServer

from .. import hooked_daemon
from ..conftest import start_server
from ..helpers import Daemon, cli_env

#: Sub-second timings: a dead worker is noticed within ~1 s, an orphan within ~0.5 s.
FAST = (
    "--block-timeout", "0.5", "--lease", "1", "--orphan-grace", "0.3", "--reaper-period", "0.2",
)  # fmt: skip


def fault_env(**extra: str) -> dict[str, str]:
    """Environment of a daemon under test: reconnects and restarts back off at most 0.5 s.
    The hashlib kernel, because the fault moments are sized by its rate (a SLOW task runs for
    seconds there, ~0.1 s on the native one); tests/integration/test_kernel_daemon.py covers
    leases and stops on the native kernel."""
    return cli_env(BLPOPQ_BACKOFF_MAX="0.5", BLPOPQ_KERNEL="hashlib", **extra)


def children(pid: int) -> list[int]:
    """Live (non-zombie) child processes of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry.name))
    return found


class Daemons:
    """Starts ``blpopq-daemon`` processes for one test and stops every one of them at the end."""

    def __init__(self) -> None:
        self.started: list[Daemon] = []

    def start(self, url: str, namespace: str, workers: int, *extra: str, hooks: str = "") -> Daemon:
        """``hooks``: test hooks of tests/hooked_daemon.py, "pause-after-blpop" and/or
        "crash-on-client=NAME", comma-separated (the product itself has none)."""
        args = ["--workers", str(workers), *FAST, *extra]
        flags = [
            f"--{part.replace('=', ' ', 1)}".split(" ") for part in filter(None, hooks.split(","))
        ]
        launcher = (
            hooked_daemon.command(*(word for flag in flags for word in flag)) if hooks else ()
        )
        daemon = Daemon(
            *args, "--redis-url", url, "--namespace", namespace, env=fault_env(), launcher=launcher
        )
        self.started.append(daemon)
        return daemon

    def cleanup(self) -> None:
        for daemon in self.started:
            process = daemon.process
            if process.poll() is not None:
                continue
            workers = children(process.pid)
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    pool = Daemons()
    try:
        yield pool
    finally:
        pool.cleanup()


class PrivateServers:
    """redis-servers of this test alone, so it may stop, kill and restart them."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.servers: list[RedisServer] = []

    def start(self, *extra_args: str) -> RedisServer:
        directory = self.directory / f"redis{len(self.servers)}"
        directory.mkdir()
        server = start_server(self.binary, directory, extra_args)
        self.servers.append(server)
        return server

    def cleanup(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def private_redis(redis_binary: str, tmp_path: Path) -> Iterator[PrivateServers]:
    servers = PrivateServers(redis_binary, tmp_path)
    try:
        yield servers
    finally:
        servers.cleanup()


@pytest.fixture
def rng() -> random.Random:
    """Random fault moments; BLPOPQ_FAULT_SEED=<n> replays a run (the seed is printed)."""
    seed = int(os.environ.get("BLPOPQ_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"fault seed: BLPOPQ_FAULT_SEED={seed}")
    return random.Random(seed)
