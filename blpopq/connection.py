"""How blpopq connects to Redis: a client for each URL form (redis_url.py reads them, and
masks their secrets), with the timeouts and the no-resend policy every client needs."""

from __future__ import annotations

import os
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from .cluster import cluster_client
from .errors import ConfigError
from .redis_errors import as_blpopq_error
from .redis_url import RedisTarget, mask_url, parse_url

__all__ = ["DEFAULT_URL", "check_client", "check_reachable", "make_client", "mask_url"]

DEFAULT_URL = "redis://localhost:6379"
_FILE_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


def make_client(
    url: str,
    socket_timeout: float | None = 10.0,
    name: str | None = None,
    *,
    namespace: str = "blpopq",
    pinned: bool = False,
) -> redis.Redis:
    """A client for ``url`` (any form redis_url.py reads), for the keys of ``namespace``
    (on a Redis Cluster it talks to the node holding that namespace's slot; elsewhere the
    namespace changes nothing). ``socket_timeout`` must exceed any BLPOP timeout used on it:
    redis-py raises TimeoutError when a blocking call outlasts the socket timeout, and no
    socket timeout at all lets a silently dead connection block for ever. Nothing connects
    here: the first command does (check_reachable). ``pinned``: a client of one thread (the
    worker's) whose every command goes over one connection (OneConnectionPool)."""
    target = parse_url(url)
    _check_files(target)
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5.0,
        # Never resend on our behalf: a resent script whose reply was lost runs twice.
        "retry": Retry(NoBackoff(), 0),
    }
    if not url.startswith("unix:"):
        # Keepalive lets the kernel notice a peer that vanished without a FIN (TCP only).
        common["socket_keepalive"] = True
    if target.kind == "sentinel":
        return _primary_of(target, common, name)
    if target.kind == "cluster":
        credentials = {"username": target.username, "password": target.password}
        tls = dict(target.tls_options) if target.tls else None
        return cluster_client(target.nodes, namespace, common, credentials, tls, name)
    try:
        if pinned:
            pool = OneConnectionPool.from_url(
                url, health_check_interval=30, client_name=name, **common
            )
            client = redis.Redis(connection_pool=pool)
            client.auto_close_connection_pool = True  # close() closes it, as from_url's does
            return client
        return redis.Redis.from_url(url, health_check_interval=30, client_name=name, **common)
    except ValueError as exc:
        raise ConfigError(f"bad Redis URL {mask_url(url)!r}: {exc}") from None


class OneConnectionPool(redis.ConnectionPool):
    """The pool of a client used by one thread: it hands out one connection, made at the
    first command, as redis-py's pool would hand out its last one, but without its lock and
    bookkeeping, which took ~10 % of a worker's profiled time per task (bench_queue.py's
    part (d), before this pool). Like redis-py's pool, it checks the connection before each
    command: one with something to read (the server closed it: a restart, CLIENT KILL; or a
    reply was left unread) is connected afresh, never used as it is."""

    _pinned: Any = None

    def get_connection(self, *_: Any, **__: Any) -> Any:
        connection = self._pinned
        if connection is None:
            connection = self._pinned = self.make_connection()
        connection.connect()  # nothing to do when connected
        try:
            fresh = not connection.can_read()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            fresh = False
        if not fresh:
            connection.disconnect()
            connection.connect()
        return connection

    def release(self, connection: Any) -> None:
        """It stays this pool's one connection."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        if self._pinned is not None:
            self._pinned.disconnect()
        super().disconnect(inuse_connections)


def _primary_of(target: RedisTarget, common: dict[str, Any], name: str | None) -> redis.Redis:
    """A client that always talks to the current primary of the service: each new connection
    asks the sentinels where it is, so after a failover the reconnect that any lost
    connection leads to (the worker's backoff, a command's retry) finds the new one."""
    tls: dict[str, Any] = {"ssl": True, **target.tls_options} if target.tls else {}
    sentinel_kwargs: dict[str, Any] = {**common, **tls}
    for option in ("sentinel_password", "sentinel_username"):
        if option in target.options:
            sentinel_kwargs[option.removeprefix("sentinel_")] = target.options[option]
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call, unused-ignore]
    primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call, unused-ignore]
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        client_name=name,
        health_check_interval=30,
        **common,
        **tls,
    )
    return primary


def _check_files(target: RedisTarget) -> None:
    """A certificate or key file that is not there is a setting to fix (exit 2), not a Redis
    that cannot be reached (redis-py would say so only at the first connection)."""
    for option in _FILE_OPTIONS:
        path = target.options.get(option)
        if isinstance(path, str) and not os.path.isfile(path):
            raise ConfigError(
                f"Redis URL {mask_url(target.url)!r}: {option} {path!r}: no such file"
            )


def check_client(client: redis.Redis) -> None:
    """Refuse a client that resends commands by itself or decodes replies to text."""
    retry = client.get_retry()
    if retry is not None and getattr(retry, "_retries", 0) > 0:
        raise ConfigError(
            "this Redis client retries commands by itself, which can run an enqueue twice "
            "after a lost reply: create it with retry=Retry(NoBackoff(), 0), or use "
            "Queue.from_url"
        )
    if client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ConfigError("blpopq needs a Redis client with decode_responses=False")


def check_reachable(client: redis.Redis, url: str) -> None:
    """PING once; turn any failure into RedisUnavailable (exit 3), or RedisRefused (exit 5:
    a wrong password, a refused client name), with the masked URL."""
    try:
        client.ping()
    except redis.TimeoutError as exc:
        # A plain-text Redis reads a TLS handshake as the start of a command and waits for
        # its end: the handshake times out, which alone says little.
        hint = " (no TLS handshake: is that port a TLS port?)" if parse_url(url).tls else ""
        raise as_blpopq_error(exc, f"cannot reach Redis at {mask_url(url)}{hint}") from None
    except redis.RedisError as exc:
        raise as_blpopq_error(exc, f"cannot reach Redis at {mask_url(url)}") from None
