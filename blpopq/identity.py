"""Who a worker is, on every host: ``HOST:PID`` in results, ``HOST:PID/TOKEN`` in Redis.

Results keep their documented ``worker``, ``HOST:PID`` (HOST is ``BLPOPQ_HOST_ID`` when set,
else the host name). Two containers can share both a host name and a pid, though, and a
restarted worker can get the pid of a dead one; a lease, a claim or a client name shared by
two processes would let one settle, renew or fence the other's work. So what Redis records
(leases, sessions, claims, client names) adds a random token drawn at each worker start.
Claims written before the token existed (``HOST:PID``) stay readable: nothing parses an
owner to settle or recover it (reap.lua compares whole names), and ``host_of`` reads both.
"""

from __future__ import annotations

import re
import secrets
import socket
from dataclasses import dataclass

#: What BLPOPQ_HOST_ID may be: it is part of client names (no spaces) and of worker ids,
#: whose ``:`` and ``/`` separate host, pid and token.
HOST_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def this_host(host_id: str = "") -> str:
    """``host_id`` when set (BLPOPQ_HOST_ID), else this machine's host name."""
    return host_id or socket.gethostname()


@dataclass(frozen=True)
class WorkerId:
    host: str
    pid: int
    token: str  # random, drawn at each start

    @classmethod
    def new(cls, host: str, pid: int, token: str | None = None) -> WorkerId:
        return cls(host, pid, token or secrets.token_hex(4))

    @property
    def shown(self) -> str:
        """``HOST:PID``: the ``worker`` of results and dead letters."""
        return f"{self.host}:{self.pid}"

    @property
    def key(self) -> str:
        """``HOST:PID/TOKEN``: the owner of leases, sessions, claims and client names."""
        return f"{self.shown}/{self.token}"


def host_of(worker: str) -> str:
    """The HOST of a worker as Redis records it (``HOST:PID/TOKEN``, or ``HOST:PID`` from
    before the token); a name without a pid (``orphan``) is its own host."""
    return worker.split(":", 1)[0]


def pid_of(worker: str) -> int | None:
    """The PID of ``HOST:PID/TOKEN`` or ``HOST:PID``; None for any other name."""
    _, _, rest = worker.partition(":")
    pid = rest.split("/", 1)[0]
    return int(pid) if pid.isdigit() else None
