"""blpopq.lifeline on its own: a child whose parent dies by SIGKILL gets exactly one SIGTERM,
by prctl or (as where prctl is missing) by the pipe, and exits by itself at the deadline.

A second TERM would turn a worker's graceful stop into "put the task back now", so the count
matters as much as the signal. No Redis: a tiny parent and child made by a script.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from blpopq import lifeline

from ..helpers import LineReader, wait_until

#: argv: mechanism (prctl|pipe), record file, when (before|after the parent dies) the child
#: takes hold. The child counts TERMs in the record and never exits on one: only the
#: deadline ends it. The "before" child waits for the parent's death on a second pipe.
SCRIPT = """
import os, signal, sys
from blpopq import lifeline
mechanism, record, when = sys.argv[1:]
if mechanism == "pipe":
    lifeline._PRCTL = None
line = lifeline.Lifeline()
parent_gone_read, parent_gone_write = os.pipe()
if os.fork() == 0:
    os.close(parent_gone_write)
    signal.signal(signal.SIGTERM, lambda *_: open(record, "a").write("TERM\\n"))
    if when == "after":
        line.hold(deadline=0.5)
    os.write(1, b"%d\\n" % os.getpid())
    if when == "before":
        os.read(parent_gone_read, 1)
        line.hold(deadline=0.5)
    while True:
        signal.pause()
os.write(1, b"parent\\n")  # one write per line: the two processes share this pipe
signal.pause()
"""


@pytest.mark.parametrize("when", ["after", "before"])
@pytest.mark.parametrize("mechanism", ["prctl", "pipe"])
def test_child_gets_one_term_when_its_parent_is_killed(
    mechanism: str, when: str, tmp_path: Path
) -> None:
    """Guarantee: a worker outlives no supervisor. Killed by SIGKILL before or after its child
    took hold of the lifeline, the parent leaves the child exactly one SIGTERM, and the child
    exits by itself at the deadline even though it ignores that TERM."""
    if mechanism == "prctl" and lifeline._PRCTL is None:
        pytest.skip("no prctl here: the pipe case covers this platform")
    record = tmp_path / "record"
    record.touch()
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mechanism, str(record), when],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = LineReader(process)
    try:
        first = {lines.get(10), lines.get(10)}  # both ready, in either order
        [child] = [int(line) for line in first if line != "parent\n"]
    except BaseException:
        process.kill()  # its child then goes too, or the lifeline is broken
        raise
    try:
        assert "parent\n" in first
        process.kill()
        process.wait(10)
        wait_until(lambda: _gone(child), "the child exited at its deadline", timeout=10)
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
    assert record.read_text() == "TERM\n"


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_forking_from_another_thread_is_refused() -> None:
    """Guarantee behind the others: PR_SET_PDEATHSIG fires when the *thread* that forked
    ends, so a child forked from a passing thread would be stopped for no reason."""
    failures: list[BaseException] = []

    def start() -> None:
        try:
            lifeline.require_main_thread("a worker")
        except RuntimeError as exc:
            failures.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(10)
    assert [str(e) for e in failures] == [
        "a worker must be started from the main thread (parent-death signal)"
    ]
    lifeline.require_main_thread("a worker")  # the main thread may
