"""Redis Cluster as a namespace uses it: one slot, so one primary at a time.

Every key of a namespace carries the hash tag ``{namespace}`` (keyspace.py), so the whole
namespace (its tier lists, its scripts' keys, its status snapshot) lives on one slot. A client
here is a plain ``redis.Redis`` whose connections open to the primary that holds that slot:
each new connection asks the cluster's nodes (``CLUSTER SLOTS``) when it does not know, and a
MOVED/ASK reply, a lost connection or a refused connect makes it forget, so the reconnect
that the worker's backoff leads to follows a failover or a resharding like a Redis restart.
Commands that name a connection (CLIENT SETNAME, CLIENT UNBLOCK) reach that node by design.

Why not redis-py's RedisCluster: it resends a command after a connection error or a
redirect on its own (an enqueue or a claim whose reply was lost would run twice), and it
routes each command by its keys, which blpopq's per-namespace scripts and transactions do not
need: they never leave the slot.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
import redis.exceptions as E
from redis.crc import key_slot

from .keyspace import Keyspace

__all__ = ["SlotRouter", "cluster_client", "slot_of"]

#: How long asking one node for the slot table may take: a dead node must not hold up the
#: others (the next node is asked), nor a reconnect for longer than the backoff's own steps.
PROBE_TIMEOUT = 2.0


def slot_of(namespace: str) -> int:
    """The cluster slot of every key of ``namespace`` (the same for all: one hash tag)."""
    return key_slot(Keyspace(namespace).tiers[0].encode())


class SlotRouter:
    """Where the primary of one slot is, asked of the nodes and remembered until it fails.

    ``nodes`` starts as the URL's seeds; every answer adds the nodes it names, so the seeds
    may die (the killed primary was one of them) and the router still finds the slot."""

    def __init__(self, seeds: tuple[tuple[str, int], ...], slot: int, probe: dict[str, Any]):
        self.slot = slot
        self._seeds = list(seeds)
        self._nodes = list(seeds)
        self._probe = probe  # redis.Redis keyword arguments: credentials, TLS, timeouts
        self._owner: tuple[str, int] | None = None
        self._lock = threading.Lock()

    def primary(self) -> tuple[str, int]:
        with self._lock:
            if self._owner is None:
                self._owner = self._ask()
            return self._owner

    def forget(self) -> None:
        with self._lock:
            self._owner = None

    def _ask(self) -> tuple[str, int]:
        failures: list[str] = []
        for host, port in list(dict.fromkeys(self._nodes + self._seeds)):
            try:
                with redis.Redis(host=host, port=port, **self._probe) as node:
                    table = node.execute_command("CLUSTER SLOTS")
            except redis.RedisError as exc:
                failures.append(f"{host}:{port}: {exc}")
                continue
            owner, named = read_slot_table(table, self.slot, host)
            self._nodes = list(dict.fromkeys(self._seeds + named))
            if owner is not None:
                return owner
            failures.append(f"{host}:{port}: no primary holds slot {self.slot}")
        raise redis.ConnectionError(
            f"no cluster node knows the primary of slot {self.slot}: " + "; ".join(failures)
        )


def read_slot_table(
    table: Any, slot: int, asked: str
) -> tuple[tuple[str, int] | None, list[tuple[str, int]]]:
    """(the primary holding ``slot`` or None, every node named) from a ``CLUSTER SLOTS``
    reply: ``[[start, end, [host, port, id, ...], [replica...]...], ...]``. A node that does
    not know its own address answers an empty host: it is the one asked."""
    owner: tuple[str, int] | None = None
    named: list[tuple[str, int]] = []
    for entry in table or ():
        start, end, *holders = entry
        for rank, holder in enumerate(holders):
            host = holder[0].decode() if isinstance(holder[0], bytes) else str(holder[0])
            address = (host if host not in ("", "?") else asked, int(holder[1]))
            named.append(address)
            if rank == 0 and int(start) <= slot <= int(end):
                owner = address
    return owner, named


class SlotConnection(redis.Connection):
    """A connection to whichever primary holds the router's slot when it connects."""

    def __init__(self, *, router: SlotRouter, **kwargs: Any) -> None:
        self.router = router
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock:
            return
        self.host, self.port = self.router.primary()
        try:
            super().connect_check_health(check_health, retry_socket_connect)
        except (redis.ConnectionError, redis.TimeoutError):
            self.router.forget()  # dead, or not the primary any more: ask again next time
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except (E.AskError, E.ReadOnlyError) as exc:  # MovedError is an AskError
            # The slot is elsewhere now: nothing ran here (Redis redirects before running).
            # Reconnect to its new primary, through the worker's usual lost-connection path.
            self.router.forget()
            self.disconnect()  # type: ignore[no-untyped-call]
            raise redis.ConnectionError(f"slot {self.router.slot} has moved: {exc}") from None
        except (redis.ConnectionError, redis.TimeoutError):
            self.router.forget()
            raise


class SlotSSLConnection(SlotConnection, redis.SSLConnection):
    pass


def cluster_client(
    seeds: tuple[tuple[str, int], ...],
    namespace: str,
    common: dict[str, Any],
    credentials: dict[str, Any],
    tls: dict[str, Any] | None,
    name: str | None,
) -> redis.Redis:
    """A client for ``namespace`` on the cluster seeded by ``seeds``. ``common`` are the
    timeouts and retry policy, ``credentials`` username/password, ``tls`` redis-py's ssl_*
    options (None: plain text)."""
    probe = {
        **common,
        **credentials,
        **(tls or {}),
        "socket_timeout": PROBE_TIMEOUT,
        "socket_connect_timeout": PROBE_TIMEOUT,
        "ssl": tls is not None,
    }
    router = SlotRouter(seeds, slot_of(namespace), probe)
    pool = redis.ConnectionPool(
        connection_class=SlotSSLConnection if tls is not None else SlotConnection,
        router=router,
        client_name=name,
        health_check_interval=30,
        **common,
        **credentials,
        **(tls or {}),
    )
    return redis.Redis(connection_pool=pool)
