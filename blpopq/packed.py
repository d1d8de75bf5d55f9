"""The worker's per-task script call, packed by hand around what changes.

Every task costs a worker one EVALSHA (finish.lua: write the result, take the next task) of
about twenty arguments, of which only four change from one task to the next (the claim key,
its position, the result, the trim length). redis-py encodes and packs all twenty on every
call, through several layers of Python; that was a fifth of a no-op task's worker CPU. A
``Frame`` holds the RESP bytes of the fixed parts (the SHA, the keys, the worker's name and
session, the tier names), packed once per connection and tier order; a call packs only the
changing arguments between them and writes the whole command in one send.

The reply is read and errors raised as redis-py does (the connection's own read_response);
NOSCRIPT (a restarted Redis, a flushed script cache) falls back to redis-py's script call,
which loads the script. As everywhere in blpopq, nothing is resent after a failed write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from .streamed import Part, bulk, exchange


@dataclass(frozen=True)
class Frame:
    """One script's call with its keys, its leading and its trailing arguments fixed."""

    keys: tuple[Part, ...]
    head: tuple[Part, ...]
    tail: tuple[Part, ...]
    before: bytes  # RESP of EVALSHA, the SHA, the key count, the keys, the head
    after: bytes  # RESP of the tail
    fixed: int  # how many parts before and after hold


def frame(sha: str, keys: Sequence[Part], head: Sequence[Part], tail: Sequence[Part]) -> Frame:
    leading = ["EVALSHA", sha, len(keys), *keys, *head]
    return Frame(
        tuple(keys),
        tuple(head),
        tuple(tail),
        b"".join(map(bulk, leading)),
        b"".join(map(bulk, tail)),
        len(leading) + len(tail),
    )


def packed_command(fixed: Frame, middle: Sequence[Part]) -> bytes:
    """The whole EVALSHA in RESP, ``middle`` between the frame's head and tail."""
    return b"".join(
        (
            b"*%d\r\n" % (fixed.fixed + len(middle)),
            fixed.before,
            *map(bulk, middle),
            fixed.after,
        )
    )


def call(
    client: redis.Redis,
    script: Any,
    fixed: Frame,
    middle: Sequence[Part],
    meanwhile: Callable[[], object] = lambda: None,
) -> Any:
    """``script(keys, head + middle + tail)`` on ``client``, the same reply and errors;
    ``meanwhile()`` runs once the command is sent, before its reply is read (early.py). If it
    raises, the reply is left unread: the connection is closed, as after a lost reply."""
    with exchange(client.connection_pool) as connection:
        try:
            connection.send_packed_command([packed_command(fixed, middle)])
            meanwhile()
            return connection.read_response()
        except redis.exceptions.NoScriptError:
            pass  # read whole: the connection is fine; the script goes in below
    return script(keys=fixed.keys, args=[*fixed.head, *middle, *fixed.tail])
