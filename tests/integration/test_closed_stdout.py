"""A reader that goes away (``blpopq status --watch | head``) ends the output quietly: every
command exits 0 with no traceback, through a real pipe closed early."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from blpopq.embedded import RedisServer

from ..helpers import BIN, cli_env, prev_hash


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``blpopq ARGS`` with stdout a pipe whose read end is closed before it starts, so
    its first write to stdout fails (EPIPE), whatever its size."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [str(BIN / "blpopq"), *args],
            env=cli_env(),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "command",
    [["status"], ["status", "--json"], ["collect"], ["dead", "list"], ["config"], ["produce"]],
    ids=lambda c: "-".join(c),
)
def test_a_closed_stdout_ends_every_command_quietly(
    command: list[str], redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    target = ["--redis-url", redis_server.url, "--namespace", namespace]
    if command == ["produce"]:
        path = tmp_path / "one.txt"
        path.write_text(f"vip ana mine {prev_hash(1)} 1\n", encoding="utf-8")
        command = ["produce", str(path)]
    if command == ["dead", "list"]:
        command = ["dead", "list", *target]  # its options belong to the action
        target = []
    done = run_into_closed_pipe(*command, *target)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_status_watch_into_head_ends_quietly(redis_server: RedisServer, namespace: str) -> None:
    """The reader takes one screen and closes the pipe, as ``head`` does; the next refresh
    meets the closed pipe."""
    watch = subprocess.Popen(
        [str(BIN / "blpopq"), "status", "--watch", "0.05", "--json"]
        + ["--redis-url", redis_server.url, "--namespace", namespace],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stdout is not None and watch.stderr is not None
        assert watch.stdout.readline().startswith("{")
        watch.stdout.close()
        assert watch.wait(30) == 0
        stderr = watch.stderr.read()
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
