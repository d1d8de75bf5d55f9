"""One script call with large arguments, encoded and sent a piece at a time.

An enqueue chunk of 50,000 tasks is one EVALSHA of ~20 MB of arguments. redis-py (through
hiredis) encodes such a command whole: a buffer, then a bytes copy of it, ~3x the arguments
in memory at once, which made a million-line produce peak near 200 MB. Here the command is
written in RESP a 64 KB piece at a time straight to the connection's socket, so memory stays
at the arguments themselves; the reply is read and errors raised as redis-py does. Only a
plain ``redis.Redis`` client takes this path; any other (a cluster client, a pipeline) gets
the ordinary script call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import redis

#: Bytes gathered before each write to the socket.
_PIECE = 64 * 1024

Part = bytes | str | int


def bulk(part: Part) -> bytes:
    """One RESP bulk string: what redis-py's encoder makes of bytes, str and int, without
    its checks and calls per part (a small enqueue spent a fifth of its time in them)."""
    if isinstance(part, int):
        value = b"%d" % part
    elif isinstance(part, str):
        value = part.encode()
    else:
        value = part
    return b"$%d\r\n%b\r\n" % (len(value), value)


def call_script(client: Any, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """``script(keys=keys, args=args)`` (a redis-py Script), streamed: the same reply, the
    same errors. A connection left with a half-sent command or an unread reply is closed,
    never reused; nothing is ever resent after a failed write."""
    if not isinstance(client, redis.Redis):
        return script(keys=keys, args=args, client=client)
    with exchange(client.connection_pool) as connection:
        try:
            return _evalsha(client, connection, script.sha, keys, args)
        except redis.exceptions.NoScriptError:
            client.script_load(script.script)  # the server's cache was flushed or restarted
            return _evalsha(client, connection, script.sha, keys, args)


class exchange:  # noqa: N801 - used as a function: `with exchange(pool) as connection`
    """A connection of ``pool`` for one command written by hand and its reply: given back
    after, and closed first unless a whole reply was read (an error reply leaves it fine;
    anything else may leave half a command sent or a reply unread). A class, not a
    generator: the worker enters one per task, and a generator's context costs more."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def __enter__(self) -> Any:
        try:
            self.connection = self.pool.get_connection()
        except TypeError:  # redis-py before 5.3 wants the command's name
            self.connection = self.pool.get_connection("EVALSHA")
        return self.connection

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is not None and not issubclass(kind, redis.ResponseError):
                self.connection.disconnect()
        finally:
            self.pool.release(self.connection)


def _evalsha(
    client: redis.Redis, connection: Any, sha: str, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    parts: list[Any] = ["EVALSHA", sha, len(keys), *keys, *args]
    connection.send_packed_command(_resp(parts, connection.encoder))
    return client.parse_response(connection, "EVALSHA")  # type: ignore[no-untyped-call]


def _resp(parts: Sequence[Any], encoder: Any) -> Iterator[bytes]:
    """``parts`` as one RESP array, in pieces of about _PIECE bytes."""
    buffer = bytearray(b"*%d\r\n" % len(parts))
    for part in parts:
        if isinstance(part, (bytes, str, int)) and not isinstance(part, bool):
            buffer += bulk(part)
        else:  # anything else as redis-py would send it
            value = encoder.encode(part)
            buffer += b"$%d\r\n%b\r\n" % (len(value), value)
        if len(buffer) >= _PIECE:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
