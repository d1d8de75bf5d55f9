"""Every Redis key name of a namespace, in one place: nothing else spells a key.

All keys share one hash tag, ``{namespace}``, so a Redis Cluster keeps them on one slot and
the scripts may touch them together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .tiers import TIERS, Tier

#: What a namespace may be: it is part of every key, of ACL key patterns (where ``*?[]`` are
#: globs), of the ``{...}`` hash tag (no braces) and of CLIENT SETNAME (printable ASCII, no
#: spaces), so only letters, digits and ``-_.``.
NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Keyspace:
    """Key names under one namespace: ``{blpopq}:vip``, ``{blpopq}:results``, ..."""

    namespace: str = "blpopq"

    def __post_init__(self) -> None:
        if not NAMESPACE_PATTERN.fullmatch(self.namespace):
            raise ValueError(
                f"namespace {self.namespace!r} must be 1-64 ASCII letters, digits or -_."
            )

    def _key(self, name: str) -> str:
        return f"{{{self.namespace}}}:{name}"

    def tier(self, tier: Tier) -> str:
        return self._key(tier.value)

    @property
    def tiers(self) -> tuple[str, ...]:
        """Tier lists in priority order: exactly BLPOP's argument order."""
        return tuple(self.tier(t) for t in TIERS)

    @property
    def results(self) -> str:
        return self._key("results")

    @property
    def results_written(self) -> str:
        """Counter of results ever pushed: trimming never lowers it, so readers index by it."""
        return self._key("results:written")

    @property
    def dead(self) -> str:
        return self._key("dead")

    @property
    def dead_written(self) -> str:
        """Counter of dead letters ever pushed: each letter's ``seq``, what readers index by."""
        return self._key("dead:written")

    @property
    def last_batch(self) -> str:
        """The id of the batch most recently produced (set by its first chunk): ``last``."""
        return self._key("batch:last")

    @property
    def inflight(self) -> str:
        return self._key("inflight")

    @property
    def position(self) -> str:
        return self._key("position")

    def queued(self, tier: Tier) -> str:
        """Sorted set: id -> sequence of registered tasks in (or just popped from) a tier."""
        return self._key(f"queued:{tier.value}")

    def seq(self, tier: Tier) -> str:
        return self._key(f"seq:{tier.value}")

    def headseq(self, tier: Tier) -> str:
        return self._key(f"headseq:{tier.value}")

    @property
    def seqs(self) -> tuple[str, ...]:
        return tuple(self.seq(t) for t in TIERS)

    @property
    def queued_sets(self) -> tuple[str, ...]:
        return tuple(self.queued(t) for t in TIERS)

    @property
    def tasks(self) -> str:
        """Hash: id -> task JSON of every open task (queued or running): what recovery needs."""
        return self._key("tasks")

    @property
    def workers(self) -> str:
        """Sorted set: live worker -> lease expiry in ms on Redis's clock."""
        return self._key("workers")

    def arrivals(self, tier: Tier) -> str:
        """Sorted set: a chunk's last sequence in ``tier`` -> "seq:ms", when Redis accepted it."""
        return self._key(f"arrivals:{tier.value}")

    def seen(self, tier: Tier) -> str:
        """ "sha1:ms": when the head of ``tier`` that no chunk recorded was first seen."""
        return self._key(f"seen:{tier.value}")

    @property
    def policy(self) -> str:
        """Hash: the fairness policy in force while the namespace's daemons run (spec) and
        until when a starting daemon holds it (held_until, ms on Redis's clock)."""
        return self._key("policy")

    @property
    def kernels(self) -> str:
        """Hash: live worker -> the proof-of-work kernel it runs (workers may differ by host)."""
        return self._key("kernels")

    @property
    def epochs(self) -> str:
        return self._key("epochs")

    @property
    def suspects(self) -> str:
        return self._key("suspects")

    @property
    def sessions(self) -> str:
        """Hash: worker -> the number of its current connection (fences delayed commands)."""
        return self._key("sessions")

    @property
    def alive_at(self) -> str:
        """When a worker last reached Redis (a beat, a reaper pass; ms on Redis's clock): a
        long gap reveals an outage, which leases must not count."""
        return self._key("alive_at")

    @property
    def reaper_lock(self) -> str:
        return self._key("reaper")

    def worker_client_name(self, worker_id: str) -> str:
        """CLIENT SETNAME of a worker's connection: lets CLIENT LIST show who waits where."""
        return f"blpopq:{self.namespace}:worker:{worker_id}"
