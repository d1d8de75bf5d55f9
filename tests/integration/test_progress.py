"""Progress while `run` and `collect --expect` wait: plain `done k/N` lines when stderr is
not a terminal, a live display on a pseudo-terminal, nothing with --quiet; and the warning
for mine requests whose expected work is above 2**32 attempts."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import termios
from pathlib import Path

from blpopq.embedded import RedisServer, free_port

from ..helpers import BIN, cli_env, prev_hash, run_cli
from .test_cli import collect_jsonl, produce, start_daemon

#: CSI sequences (cursor moves, colours, erase): what is left is the text a user reads.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PLAIN = re.compile(r"^done (\d+)/(\d+) \((.*)\) [\d.]+/s, elapsed \d+s, eta \S+$", re.M)


def small_file(tmp_path: Path) -> Path:
    """Two vip, one alto, three comun requests, each quick."""
    tiers = ["vip", "vip", "alto", "comun", "comun", "comun"]
    path = tmp_path / "f.txt"
    path.write_text("".join(f"{t} c{n} mine {prev_hash(n)} 6\n" for n, t in enumerate(tiers)))
    return path


def run_args(server: RedisServer, namespace: str, path: Path, *extra: str) -> list[str]:
    return [
        "run", str(path), "--workers", "2", "--block-timeout", "0.5", "--grace", "5",
        "--redis-url", server.url, "--namespace", namespace, *extra,
    ]  # fmt: skip


def test_run_prints_plain_progress_lines_when_stderr_is_not_a_terminal(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    done = run_cli("blpopq", *run_args(redis_server, namespace, small_file(tmp_path)))
    assert done.returncode == 0, done.stderr
    lines = PLAIN.findall(done.stderr)
    assert lines, done.stderr
    assert lines[-1] == ("6", "6", "vip 2/2, alto 1/1, comun 3/3"), done.stderr
    assert not PLAIN.search(done.stdout), "progress never goes to stdout"
    assert len([row for row in done.stdout.splitlines() if "mine" in row]) == 6


def test_quiet_turns_progress_off(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    args = run_args(redis_server, namespace, small_file(tmp_path), "--quiet")
    done = run_cli("blpopq", *args)
    assert done.returncode == 0, done.stderr
    assert not PLAIN.search(done.stderr), done.stderr


def test_collect_expect_prints_plain_progress(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    batch = produce(redis_server, namespace, small_file(tmp_path))
    with start_daemon(redis_server, namespace, workers=2) as daemon:
        daemon.wait_ready()
        collect_jsonl(redis_server, namespace, 6, batch, daemon)  # all six are in
        assert daemon.stop() == 0
    args = ["--expect", "6", "--batch", batch, "--redis-url", redis_server.url]
    done = run_cli("blpopq-collect", *args, "--namespace", namespace)
    assert done.returncode == 0, done.stderr
    # collect does not know how many of each tier to expect: counts only.
    assert PLAIN.findall(done.stderr)[-1] == ("6", "6", "vip 2, alto 1, comun 3"), done.stderr


def run_on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """`blpopq ARGS` with stderr on a pseudo-terminal (120 columns), stdout on a pipe:
    exit status, what the terminal received (ANSI sequences removed), stdout."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [str(BIN / "blpopq"), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=cli_env(TERM="xterm-256color"),
    )
    os.close(slave)
    received = bytearray()
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other end has closed it
                break
            if not chunk:
                break
            received += chunk
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        code = process.wait(60)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, ANSI.sub("", received.decode(errors="replace")), stdout


def test_run_shows_a_live_display_on_a_terminal(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """The display starts at 0/6 and ends at 6/6, with one row per tier; the plain lines
    are for logs, not for a terminal, and the results still go to stdout."""
    args = run_args(redis_server, namespace, small_file(tmp_path), "--format", "jsonl")
    code, screen, stdout = run_on_a_terminal(args)
    assert code == 0, screen
    assert len(stdout.splitlines()) == 6
    totals = re.findall(r"done\s+\S+\s+(\d+)/6", screen)
    assert totals[0] == "0" and totals[-1] == "6", screen
    assert [int(t) for t in totals] == sorted(int(t) for t in totals), "done only grows"
    for tier, total in (("vip", 2), ("alto", 1), ("comun", 3)):
        assert re.search(rf"{tier}\s+\S+\s+{total}/{total}\b", screen), screen
    assert not PLAIN.search(screen), screen
    assert "worker 0 started" in screen, "the pool's log lines show above the display"


# --- the expected-work warning ------------------------------------------------------------------


def test_a_request_above_2_32_expected_attempts_is_announced_with_its_expected_time(
    tmp_path: Path,
) -> None:
    """At produce time, produce and run alike; a warning only (here Redis is unreachable,
    so nothing runs: the warning comes before)."""
    path = tmp_path / "heavy.txt"
    path.write_text(
        f"vip a mine {prev_hash(1)} 32\n"  # exactly 2**32: no warning
        f"alto b mine {prev_hash(2)} 30 8\n"  # 2**33
        f"comun c mine {prev_hash(3)} 4\n"
    )
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    for command in ("produce", "run"):
        done = run_cli("blpopq", command, str(path), "--redis-url", nowhere)
        assert done.returncode == 3, done.stderr
        [warning] = [line for line in done.stderr.splitlines() if "warning" in line]
        assert warning.startswith(f"blpopq {command}: warning: {path}:2: mine expects 8 * 2**30")
        assert re.search(r"about \d+(\.\d)? (s|min|h|days) at [\d.]+ M attempts/s", warning)
        assert "(kernel " in warning, warning


def test_no_warning_without_a_heavy_request(tmp_path: Path) -> None:
    path = tmp_path / "light.txt"
    path.write_text(f"vip a mine {prev_hash(1)} 20 4\n")
    done = run_cli(
        "blpopq", "produce", str(path), "--redis-url", f"redis://127.0.0.1:{free_port()}/0"
    )
    assert done.returncode == 3 and "warning" not in done.stderr, done.stderr
