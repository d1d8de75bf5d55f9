"""The cleanup an embedded Redis leaves to the next start, where nothing else could run it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from blpopq.embedded import RedisServer, remove_stale_directories


def test_next_start_removes_only_directories_of_dead_owners(tmp_path: Path) -> None:
    """Guarantee: a SIGKILLed `blpopq run` leaves no temporary directory for good. The next
    start removes each blpopq-redis-<pid>-* directory of ours whose pid is gone, first
    shutting down a redis-server still listening there (the fallback where no parent-death
    signal stopped it), and leaves alone live owners' directories, other names and symlinks."""
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead = finished.pid
    stale = tmp_path / f"blpopq-redis-{dead}-left"
    stale.mkdir()
    leftover = RedisServer(directory=stale)  # no port: the unix socket in the directory only
    leftover.start()
    live = tmp_path / f"blpopq-redis-{os.getpid()}-mine"
    other = tmp_path / "blpopq-redis-notapid-x"
    elsewhere = tmp_path / "elsewhere"
    for directory in (live, other, elsewhere):
        directory.mkdir()
    (elsewhere / "keep").write_text("not ours to delete")
    link = tmp_path / f"blpopq-redis-{dead}-link"
    link.symlink_to(elsewhere)
    try:
        assert remove_stale_directories(tmp_path) == [stale]
        assert leftover.process is not None
        assert leftover.process.wait(10) == 0, "the leftover redis-server is still running"
    finally:
        leftover.kill()
    assert not stale.exists()
    assert live.is_dir() and other.is_dir() and link.is_symlink()
    assert (elsewhere / "keep").read_text() == "not ours to delete"
