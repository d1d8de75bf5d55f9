"""Which Redis errors are weather and which are a refusal, decided in one place.

A daemon must ride out what passes by itself (a lost connection, another client's long script,
a failover, a full memory while workers drain it) and stop at once on what never will (a
wrong password, an ACL that forbids a command, a renamed command): retrying those only turns
healthy tasks into "poison" as workers die holding them.
"""

from __future__ import annotations

from enum import Enum

import redis
import redis.exceptions as E

from .errors import RedisRefused, RedisUnavailable


class Kind(Enum):
    TRANSIENT = "transient"  # retry with the reconnect backoff; never a task's death
    REFUSED = "refused"  # permanent: exit 5 with one line naming what was refused
    OTHER = "other"  # unexpected reply (WRONGTYPE, a script error): logged, then retried


#: Reply prefixes that pass by themselves: a script or load in progress, a replica that is
#: not (yet) a primary, a cluster slot moving, a primary down, memory full until drained.
_TRANSIENT = ("BUSY", "LOADING", "READONLY", "TRYAGAIN", "MASTERDOWN", "OOM", "CLUSTERDOWN")
#: Reply prefixes and texts that an operator must fix.
_REFUSED = ("NOPERM", "NOAUTH", "WRONGPASS")


#: redis-py's classes for some of those replies (it strips their prefix from the message).
_TRANSIENT_CLASSES = (
    redis.ConnectionError,  # includes BusyLoadingError (LOADING)
    redis.TimeoutError,
    E.OutOfMemoryError,
    E.ReadOnlyError,
    E.TryAgainError,
    E.MasterDownError,
    E.ClusterDownError,
)
_REFUSED_CLASSES = (redis.AuthenticationError, E.NoPermissionError, E.AuthorizationError)


def classify(exc: redis.RedisError) -> Kind:
    text = str(exc)
    if isinstance(exc, _REFUSED_CLASSES) or _refusal(text):
        return Kind.REFUSED
    if isinstance(exc, _TRANSIENT_CLASSES) or _has_code(text, _TRANSIENT):
        return Kind.TRANSIENT
    return Kind.OTHER


def _has_code(text: str, codes: tuple[str, ...]) -> bool:
    """The reply starts with one of ``codes``, or carries it inside a script error, as Redis
    6.2 reports a command refused within a script: "Error running script ... -OOM ..."."""
    return text.startswith(codes) or any(f"-{code} " in text for code in codes)


def _refusal(text: str) -> bool:
    lowered = text.lower()
    return (
        _has_code(text, _REFUSED)
        or "invalid username-password" in lowered
        or "client names cannot" in lowered  # CLIENT SETNAME refused the name
        or "no permissions" in lowered
        or "can't run this command" in lowered  # Redis 7: an ACL refusal inside a script
        or "unknown command" in lowered
        or "unknown redis command" in lowered  # a renamed command, called from a script
        or "unknown subcommand" in lowered
    )


def as_blpopq_error(exc: redis.RedisError, failed: str) -> RedisRefused | RedisUnavailable:
    """The command-level error for a Redis failure: exit 5 for a refusal, 3 otherwise.
    ``failed`` says what failed, e.g. "cannot reach Redis at redis://***@host"."""
    if classify(exc) is Kind.REFUSED:
        return RedisRefused(f"{failed}: Redis refuses what blpopq needs: {exc}")
    return RedisUnavailable(f"{failed}: {exc}")
