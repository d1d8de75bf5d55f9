"""Helpers for tests that drive blpopq's console scripts as real processes."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

SHARED_REDIS_PORT = 6379
BIN = Path(sys.executable).parent
HEX = "0123456789abcdef"


def prev_hash(n: int) -> str:
    """A deterministic, valid previous hash for request ``n``."""
    return (HEX[n % 16] * 64)[:63] + HEX[(n // 16) % 16]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a blpopq command: nothing inherited that could point at a Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLPOPQ_", "REDIS_URL"))}
    env.update(extra)
    return env


def run_cli(
    command: str,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run an installed console script (``blpopq-produce`` ...) to completion."""
    return subprocess.run(
        [str(BIN / command), *args],
        env=env or cli_env(),
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Daemon:
    """``blpopq-daemon`` (or another ``command``) as a subprocess, its stderr watched for the
    lines tests wait on; ``new_session`` gives it a process group of its own, as a shell gives
    a foreground job."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        command: str = "blpopq-daemon",
        new_session: bool = False,
        launcher: Sequence[str] = (),
    ) -> None:
        """``launcher``: the command that starts the daemon instead of ``command``, e.g.
        tests/hooked_daemon.py's ``command(...)`` for test hooks."""
        self.process = subprocess.Popen(
            [*(launcher or [str(BIN / command)]), *args],
            env=env or cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=new_session,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Block until a stderr line matches ``pattern``; AssertionError with the log if not."""
        regex = re.compile(pattern)
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(regex.search(line) for line in self.lines) or "<eof>" in self.lines,
                timeout,
            )
            for line in self.lines:
                match = regex.search(line)
                if match:
                    return match
        raise AssertionError(f"no line matching {pattern!r} (waited={found}):\n{self.log}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_for_line(r"ready: \d+ workers? waiting", timeout)

    @property
    def worker_pids(self) -> list[int]:
        return [int(m) for m in re.findall(r"worker \d+ started \(pid (\d+)\)", self.log)]

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_until(
    condition: Callable[[], bool],
    what: str,
    daemon: Daemon | None = None,
    timeout: float = 30.0,
    poll: float = 0.01,
) -> None:
    """Poll a condition (a Redis key, a process state) until it holds, with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if daemon is not None and daemon.process.poll() is not None:
            raise AssertionError(f"daemon exited while waiting for {what}:\n{daemon.log}")
        if time.monotonic() > deadline:
            log = f":\n{daemon.log}" if daemon is not None else ""
            raise AssertionError(f"no {what} within {timeout} s{log}")
        time.sleep(poll)


class LineReader:
    """A process's stdout lines as they come, read by a thread: ``get(timeout)`` bounds each
    wait, where a bare readline() could block a test for ever."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        stream = process.stdout
        self.lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(
            target=lambda: [self.lines.put(line) for line in stream], daemon=True
        )
        self._thread.start()

    def get(self, timeout: float = 30.0) -> str:
        return self.lines.get(timeout=timeout)

    def rest(self, timeout: float = 10.0) -> list[str]:
        """Every line not yet taken, once the process has closed its stdout."""
        self._thread.join(timeout)
        return [self.lines.get() for _ in range(self.lines.qsize())]
