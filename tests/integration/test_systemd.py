"""blpopq under systemd: the sd_notify messages, the unit files and the environment file.

The daemon tests play the service manager's part: they bind a datagram socket, pass it as
``NOTIFY_SOCKET`` to a real ``blpopq-daemon`` and read what arrives, with a deadline (the
socket timeout), never a sleep. The unit files are checked by ``systemd-analyze verify``
where it is installed, and against the daemon's own settings (stop timeout above the grace,
environment variables it really reads) everywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from blpopq.config import ENVIRONMENT, Settings, build_settings
from blpopq.embedded import RedisServer
from blpopq.notify import Notifier, socket_address, watchdog_interval
from blpopq.supervisor import _KILL_MARGIN

from ..helpers import BIN, Daemon, cli_env

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "blpopq-daemon.service"
TEMPLATE = ROOT / "systemd" / "blpopq-daemon@.service"
ENV_FILE = ROOT / "daemons" / "blpopq-daemon.env"
EXEC_START = "/opt/blpopq/bin/blpopq-daemon"
#: The lines in which the template may differ from the plain unit: everything else is shared.
INSTANCE_KEYS = {"Description", "Environment", "EnvironmentFile", "SyslogIdentifier"}
_CREDENTIALS = struct.Struct("iII")  # struct ucred: pid, uid, gid


# --- the service manager's end of NOTIFY_SOCKET ------------------------------------------------


@dataclass(frozen=True)
class Message:
    pid: int | None  # the sender, from SCM_CREDENTIALS (None where the OS has no SO_PASSCRED)
    fields: dict[str, str]


class NotifyListener:
    """A datagram socket that receives what the daemon reports, as systemd's would."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.passcred = hasattr(socket, "SO_PASSCRED")
        if self.passcred:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.messages: list[Message] = []

    def receive(self, timeout: float) -> Message:
        if timeout:
            self.sock.settimeout(timeout)
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(_CREDENTIALS.size))
        pid = None
        for level, kind, payload in ancillary:
            if self.passcred and (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS):
                pid = _CREDENTIALS.unpack(payload[: _CREDENTIALS.size])[0]
        lines = data.decode().split("\n")
        message = Message(pid, dict(line.partition("=")[::2] for line in lines if line))
        self.messages.append(message)
        return message

    def wait_for(
        self, condition: Callable[[Message], bool], what: str, daemon: Daemon, timeout: float = 30
    ) -> Message:
        """Receive until a message meets ``condition``; the deadline bounds a failure only."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = self.receive(remaining)
            except TimeoutError:
                raise AssertionError(
                    f"waited {timeout} s for {what}; received {self.messages}\n{daemon.log}"
                ) from None
            if condition(message):
                return message

    def drain(self) -> None:
        """Take in whatever has arrived already (after the sender exited: everything)."""
        self.sock.setblocking(False)
        try:
            while True:
                self.receive(0)
        except (BlockingIOError, TimeoutError):
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_path() -> Iterator[str]:
    """A filesystem socket path, short enough for sun_path (108 bytes) wherever TMPDIR is."""
    short = "/tmp" if os.path.isdir("/tmp") else None
    with tempfile.TemporaryDirectory(prefix="bq", dir=short) as directory:
        yield os.path.join(directory, "notify")


@pytest.fixture
def listener(notify_path: str) -> Iterator[NotifyListener]:
    listener = NotifyListener(notify_path)
    yield listener
    listener.close()


def has(key: str, value: str | None = None) -> Callable[[Message], bool]:
    return lambda m: key in m.fields and (value is None or m.fields[key] == value)


# --- the daemon, as systemd sees it ------------------------------------------------------------


def test_daemon_reports_ready_status_watchdog_and_stopping(
    redis_server: RedisServer, namespace: str, notify_path: str, listener: NotifyListener
) -> None:
    """Promise: under Type=notify the daemon says READY=1 once its workers wait for work,
    keeps a STATUS= line current (a worker killed and restarted shows), pings the watchdog
    every WATCHDOG_USEC/2 while healthy, says STOPPING=1 on SIGTERM and exits 0. Every
    message comes from the main process, as NotifyAccess=main requires."""
    env = cli_env(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000")
    args = ["--workers", "2", "--block-timeout", "0.5", "--grace", "5"]
    args += ["--redis-url", redis_server.url, "--namespace", namespace]
    with Daemon(*args, env=env) as daemon:
        ready = listener.wait_for(has("READY"), "READY=1", daemon)
        assert ready.fields["READY"] == "1"
        assert ready.fields["STATUS"] == "2 of 2 workers alive, 0 restarts"
        daemon.wait_ready()  # the log line and READY=1 mean the same moment
        listener.wait_for(has("WATCHDOG", "1"), "a watchdog ping after READY=1", daemon)

        os.kill(daemon.worker_pids[0], signal.SIGKILL)
        restarted = "2 of 2 workers alive, 1 restart"
        listener.wait_for(has("STATUS", restarted), "the status after a restart", daemon)
        listener.wait_for(has("WATCHDOG", "1"), "a watchdog ping after the restart", daemon)

        daemon.signal(signal.SIGTERM)
        stopping = listener.wait_for(has("STOPPING"), "STOPPING=1", daemon)
        assert stopping.fields["STOPPING"] == "1"
        assert stopping.fields["STATUS"].startswith("stopping:")
        assert daemon.stop() == 0, daemon.log
        listener.drain()

    kinds = [key for m in listener.messages for key in m.fields if key != "STATUS"]
    assert kinds.index("READY") < kinds.index("STOPPING") == len(kinds) - 1
    assert kinds.count("READY") == 1
    if listener.passcred:
        assert {m.pid for m in listener.messages} == {daemon.process.pid}


def test_daemon_without_notify_socket_still_starts_and_stops(
    redis_server: RedisServer, namespace: str
) -> None:
    """Promise: without NOTIFY_SOCKET (a terminal, another supervisor) nothing changes, even
    with a stray WATCHDOG_USEC in the environment."""
    env = cli_env(WATCHDOG_USEC="400000")
    env.pop("NOTIFY_SOCKET", None)
    args = ["--workers", "1", "--block-timeout", "0.5", "--redis-url", redis_server.url]
    with Daemon(*args, "--namespace", namespace, env=env) as daemon:
        daemon.wait_ready()
        assert daemon.stop() == 0, daemon.log


# --- notify.py, without a daemon ---------------------------------------------------------------


def test_socket_address_maps_at_sign_to_the_abstract_namespace() -> None:
    assert socket_address("@blpopq/notify") == "\0blpopq/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("vsock:2:1234") is None  # systemd 253+; not spoken here
    assert socket_address("@") is None
    assert socket_address("relative/path") is None


@pytest.mark.skipif(not hasattr(socket, "SO_PASSCRED"), reason="abstract sockets are Linux-only")
def test_notifier_sends_to_an_abstract_socket() -> None:
    name = f"blpopq-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@" + name})
        assert notifier.enabled
        assert notifier.ready("2 workers\nwaiting")
        assert sock.recv(4096) == b"READY=1\nSTATUS=2 workers waiting"


def test_notifier_sends_each_status_once_and_every_other_message(notify_path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(notify_path)
        sock.settimeout(10)
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": notify_path})
        notifier.status("a")
        notifier.status("a")  # unchanged: not resent
        notifier.watchdog()
        notifier.status("b")
        notifier.stopping("c")
        notifier.watchdog()
        received = [sock.recv(4096) for _ in range(5)]
    expected = [b"STATUS=a", b"WATCHDOG=1", b"STATUS=b", b"STOPPING=1\nSTATUS=c", b"WATCHDOG=1"]
    assert received == expected


def test_notifier_is_a_no_op_without_notify_socket() -> None:
    notifier = Notifier.from_environ({"WATCHDOG_USEC": "400000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None  # no socket: nothing to ping, no extra wake-ups
    assert notifier.ready("x") and notifier.status("y") and notifier.watchdog()


def test_notifier_never_raises_when_nobody_listens(notify_path: str) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": notify_path})  # not bound
    assert notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert Notifier.from_environ({"NOTIFY_SOCKET": "not-a-socket"}).ready() is True  # disabled


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "400000"}, 0.2),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "4242"}, 0.2),
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "4243"}, None),  # meant for another pid
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": ""}, None),
    ],
)
def test_watchdog_interval_is_half_the_period_for_this_process_only(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval(environ, pid=4242) == expected


def test_watchdog_interval_checks_the_real_pid_by_default() -> None:
    mine = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(mine) == 0.5
    assert watchdog_interval({**mine, "WATCHDOG_PID": str(os.getpid() + 1)}) is None


# --- the unit files and the environment file ---------------------------------------------------


def directives(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of every setting, in order; comments and blank lines dropped."""
    section, found = "", []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def settings_of(path: Path) -> dict[str, str]:
    return {key: value for section, key, value in directives(path) if section == "Service"}


@pytest.mark.parametrize("path", [UNIT, TEMPLATE], ids=lambda p: p.name)
def test_unit_runs_the_daemon_as_designed(path: Path) -> None:
    service = settings_of(path)
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "ExecStart": EXEC_START,
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "KillMode": "mixed",
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }
    assert {key: service.get(key) for key in expected} == expected
    # The supervisor gives up on workers after grace + block timeout + its margin (then
    # exits 1); systemd must not SIGKILL everything before that.
    defaults = Settings()
    daemon_deadline = defaults.grace + defaults.block_timeout + _KILL_MARGIN
    assert float(service["TimeoutStopSec"]) > daemon_deadline
    assert float(service["WatchdogSec"]) > 0


def test_template_is_the_unit_plus_the_instance_lines() -> None:
    """The template is kept in step with the plain unit: only instance lines differ."""
    plain = [d for d in directives(UNIT) if d[1] not in INSTANCE_KEYS]
    template = [d for d in directives(TEMPLATE) if d[1] not in INSTANCE_KEYS]
    assert template == plain
    instance = settings_of(TEMPLATE)
    assert instance["EnvironmentFile"] == "/etc/blpopq/%i.env"
    assert instance["Environment"] == "BLPOPQ_NAMESPACE=%i"
    assert settings_of(UNIT)["EnvironmentFile"] == "/etc/blpopq/blpopq-daemon.env"


def test_environment_file_names_only_settings_the_daemon_reads() -> None:
    text = ENV_FILE.read_text(encoding="utf-8")
    active = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    mentioned = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    daemon_variables = {v for k, v in ENVIRONMENT.items() if k not in _NOT_FOR_THE_DAEMON}
    assert mentioned == daemon_variables | {"BLPOPQ_LOG_LEVEL"}
    # Set, BLPOPQ_NAMESPACE would override the template's instance-name default.
    assert "BLPOPQ_NAMESPACE" not in active
    build_settings({}, active)  # what it sets is valid


#: Settings only produce uses: the daemon's file does not list them.
_NOT_FOR_THE_DAEMON = {"max_difficulty", "max_work", "chunk_size"}


@pytest.mark.parametrize(
    ("path", "unit_name"),
    [(UNIT, "blpopq-daemon.service"), (TEMPLATE, "blpopq-daemon@test.service")],
    ids=["unit", "template"],
)
def test_unit_passes_systemd_analyze_verify(path: Path, unit_name: str, tmp_path: Path) -> None:
    """verify needs ExecStart= to exist: the copy runs this venv's blpopq-daemon instead."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (not a systemd host): unit not verified")
    daemon = BIN / "blpopq-daemon"
    text = path.read_text(encoding="utf-8")
    assert f"ExecStart={EXEC_START}\n" in text
    (tmp_path / path.name).write_text(text.replace(EXEC_START, str(daemon)), encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / unit_name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 0 and not complaints, "\n".join(complaints)
