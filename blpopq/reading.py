"""What readers ask of Redis: results and dead letters by number, open tasks, the server's
identity and settings. Part of the Protocol (``Protocol`` inherits them, as it does
operations.py's): every command blpopq sends stays in protocol.py, operations.py and here.
The collector, status and the daemon's start-up checks read; none of these writes a task.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis

from .keyspace import Keyspace
from .records import as_bytes, safe_text


class ReaderCommands:
    """Reads that need only the client, the keys and the scripts Protocol loads."""

    client: redis.Redis
    keys: Keyspace
    _read_dead: Any
    _results: Any

    def registered(self, keys: Iterable[bytes]) -> list[bytes | None]:
        """The registered task (``{ns}:tasks``) under each claim key, None where there is
        none: a claim of a registered task names it instead of holding a copy (taking.lua).
        Read after the claims, not with them: every use is a fenced settle, which a claim
        that changed in between refuses."""
        wanted = list(keys)
        if not wanted:
            return []
        found = self.client.hmget(self.keys.tasks, wanted)
        return [None if v is None else as_bytes(v) for v in found]

    def server_run_id(self) -> str:
        """The server's run_id (INFO server): every redis-server start gets a new one."""
        return str(self.client.info("server").get("run_id", ""))

    def has_bookkeeping(self) -> bool:
        """Whether any of the counters and registries every live namespace has still exist
        (sessions, position, results written, open tasks, tier sequences): none left after
        a restart means Redis came back without its data."""
        keys = self.keys
        names = [keys.sessions, keys.position, keys.results_written, keys.tasks, *keys.seqs]
        return bool(self.client.exists(*names))

    def eviction_policy(self) -> str | None:
        """Redis's maxmemory-policy, or None where CONFIG is not allowed (managed Redis)."""
        try:
            reply: dict[Any, Any] = self.client.config_get("maxmemory-policy")
        except redis.ResponseError:
            return None
        policy = {safe_text(k): safe_text(v) for k, v in reply.items()}.get("maxmemory-policy")
        return policy or None

    def read_dead(self, after: int) -> tuple[int, list[str]]:
        """Dead letters numbered above ``after`` (0: all), atomically: (letters ever written,
        letters). Numbers survive removals from the middle (purge, requeue), which shift
        list positions under a reader; a letter without a number came before numbering."""
        keys = [self.keys.dead, self.keys.dead_written]
        reply = self._read_dead(keys=keys, args=[after])
        return int(reply[0]), [safe_text(item) for item in reply[1:]]

    def open_tasks(self, ids: Sequence[str], page: int = 1000) -> tuple[int, int]:
        """Of the tasks ``ids``: how many are still open and waiting in a tier, and how many
        are claimed by a worker (running, or held by one that died: its lease puts it back).
        Each page is one MULTI/EXEC, so no task is counted both ways or neither."""
        queued = claimed = 0
        for start in range(0, len(ids), page):
            chunk = list(ids[start : start + page])
            with self.client.pipeline(transaction=True) as pipe:
                pipe.hmget(self.keys.tasks, chunk)
                pipe.hmget(self.keys.inflight, chunk)
                registered, claims = pipe.execute()
            for task, claim in zip(registered, claims, strict=True):
                claimed += claim is not None
                queued += claim is None and task is not None
        return queued, claimed

    def length(self, key: str) -> int:
        return int(self.client.llen(key))

    def read_results(self, start: int | None, page: int = 1000) -> tuple[int, list[str]]:
        """Up to ``page`` results from index ``start`` (None: from the head), atomically:
        (index of the first one returned, results). An index counts the results pushed before
        it (``results:written``), so it survives trimming; the first index returned is above
        ``start`` when results were trimmed (retention, a drain) before this reader saw them."""
        keys = [self.keys.results, self.keys.results_written]
        reply = self._results(keys=keys, args=["read", "" if start is None else start, page])
        return int(reply[1]), [safe_text(item) for item in reply[2:]]

    def discard_results(self, before: int) -> int:
        """Remove the results whose index is below ``before`` (those a drain has printed),
        atomically, leaving any pushed since; returns how many were removed."""
        keys = [self.keys.results, self.keys.results_written]
        return int(self._results(keys=keys, args=["discard", before])[1])
