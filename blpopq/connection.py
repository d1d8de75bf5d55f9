"""How blpopq connects to Redis: URL parsing, timeouts, and masking secrets in messages."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import ConfigError
from .redis_errors import as_blpopq_error

DEFAULT_URL = "redis://localhost:6379"
_SCHEMES = ("redis", "rediss", "unix")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return re.sub(r"password=[^&]*", "password=***", url)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    masked = urlunsplit(parts._replace(netloc=netloc))
    return re.sub(r"password=[^&]*", "password=***", masked)


def make_client(
    url: str, socket_timeout: float | None = 10.0, name: str | None = None
) -> redis.Redis:
    """A client for ``url``. ``socket_timeout`` must exceed any BLPOP timeout used on it:
    redis-py raises TimeoutError when a blocking call outlasts the socket timeout, and no
    socket timeout at all lets a silently dead connection block for ever."""
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"Redis URL {mask_url(url)!r} must start with redis://, rediss:// or unix://"
        )
    # Keepalive lets the kernel notice a peer that vanished without a FIN (TCP only).
    tcp = {"socket_keepalive": True} if scheme != "unix" else {}
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5.0,
            health_check_interval=30,
            client_name=name,
            # Never resend on our behalf: a resent script whose reply was lost runs twice.
            retry=Retry(NoBackoff(), 0),
            **tcp,
        )
    except ValueError as exc:
        raise ConfigError(f"bad Redis URL {mask_url(url)!r}: {exc}") from None


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
    except redis.RedisError as exc:
        raise as_blpopq_error(exc, f"cannot reach Redis at {mask_url(url)}") from None
