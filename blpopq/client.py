"""A small library API for code that enqueues requests and waits for their outcomes by id.

queue = Queue.from_url("redis://localhost:6379")
report = queue.enqueue(parse_text("vip ana mine <64 hex> 12\\n", "<api>"))
outcomes = queue.wait(report.ids, timeout=30)   # id -> Result or DeadLetter
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis

from .collector import Outcomes, attention_order, wait_until
from .connection import check_client, make_client
from .instructions import Request
from .outcomes import DeadLetter, Result
from .producer import EnqueueReport, Progress, enqueue
from .protocol import Keyspace, Protocol
from .replication import NotReplicated, ReplicaWait


class Queue:
    """Enqueue and wait, over a client that never resends a command on its own.

    redis-py retries a command whose reply was lost (ten times by default in redis-py 8); for
    an enqueue script that means the same tasks pushed twice. ``from_url`` builds a client
    without retries; a client passed in must have none either (``retry=Retry(NoBackoff(), 0)``)
    and return bytes (``decode_responses=False``), or ConfigError says so: blpopq retries at
    its own level, where it can tell what a lost reply did."""

    def __init__(
        self,
        client: redis.Redis,
        namespace: str = "blpopq",
        chunk_size: int = 50_000,
        wait_replicas: int = 0,
    ):
        check_client(client)
        self.protocol = Protocol(client, Keyspace(namespace))
        self.chunk_size = chunk_size
        self.replicas = ReplicaWait(wait_replicas)

    @classmethod
    def from_url(cls, url: str, namespace: str = "blpopq", wait_replicas: int = 0) -> Queue:
        return cls(make_client(url, namespace=namespace), namespace, wait_replicas=wait_replicas)

    def enqueue(self, requests: Sequence[Request]) -> EnqueueReport:
        """Push every request (highest tier first) in one transaction per chunk. With
        ``wait_replicas``, each chunk must reach that many replicas, or NotReplicated stops
        the enqueue: its ``progress.enqueued`` counts the tasks confirmed (the first ones in
        priority order), ``progress.unconfirmed`` those on the primary only."""
        progress = Progress()
        try:
            return enqueue(
                self.protocol, requests, self.chunk_size, progress=progress, replicas=self.replicas
            )
        except NotReplicated as exc:
            exc.progress = progress
            raise

    def results(self, batch: str | None = None) -> list[Result]:
        """Every result so far (of one batch, if given), in attention order. Deletes nothing."""
        outcomes = Outcomes(batch=batch)
        outcomes.refresh(self.protocol)
        return attention_order(outcomes.results)

    def wait(
        self, ids: Iterable[str], timeout: float | None = None
    ) -> dict[str, Result | DeadLetter]:
        """Block until every id has its outcome; WaitTimeout (with what arrived) past timeout."""
        wanted = set(ids)
        outcomes = Outcomes()

        def arrived(o: Outcomes) -> bool:
            return wanted <= {item.id for item in o.all()}

        wait_until(self.protocol, outcomes, arrived, timeout)
        return {item.id: item for item in outcomes.all() if item.id in wanted}
