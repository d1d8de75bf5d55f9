"""Prometheus metrics for the daemon: the optional ``metrics`` extra, on with --metrics-port.

Core blpopq does not need prometheus_client: it is imported only when a metrics port is set,
and a missing library is a configuration error that names ``pip install 'blpopq[metrics]'``.

One endpoint serves the whole pool. The supervisor creates a private directory and points
PROMETHEUS_MULTIPROC_DIR at it *before* it forks any worker; each worker writes its counters
into its own files there (prometheus_client's multiprocess mode: a float in an mmap, no lock
shared between processes), and the supervisor's endpoint merges them at scrape time, adds
the queue depth of each tier (LLEN, read from Redis per scrape), and forgets the live gauges
of a worker once it has exited. The directory is removed when the supervisor stops.

Workers record through :class:`Metrics`; the base class records nothing, so a worker without
--metrics-port pays one empty method call per event.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import redis

from .config import Settings
from .connection import make_client
from .errors import ConfigError
from .outcomes import FAILED_STATUSES, Result
from .tiers import TIERS

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'blpopq[metrics]'"
#: The endpoint listens on loopback only; expose it further through a proxy if need be.
BIND_ADDRESS = "127.0.0.1"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The op label of a task that could not be decoded (it becomes a dead letter).
UNKNOWN_OP = "unknown"
#: Seconds from enqueue to start: queues may hold work for hours.
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
#: Seconds from start to result: a verify takes microseconds, a hard mine minutes.
RUN_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0)


# --- the library, lazily ----------------------------------------------------------------------


def require_library() -> None:
    """ConfigError naming the extra to install unless prometheus_client can be imported.
    Looks without importing: the library must be first imported after MULTIPROC_ENV is set."""
    try:
        found = importlib.util.find_spec("prometheus_client") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(f"--metrics-port needs the prometheus_client library: {INSTALL_HINT}")


def port_option(text: str) -> int:
    """argparse type of --metrics-port: a TCP port (0: off), and the library when not 0."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0..65535 (0: no metrics)")
    if port:
        try:
            require_library()
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return port


# --- worker side --------------------------------------------------------------------------------


class Metrics:
    """What a worker records about the tasks it handles. This base class records nothing."""

    def taken(self, tier: str, op: str) -> None:
        """A task was taken and is about to run."""

    def busy(self) -> contextlib.AbstractContextManager[object]:
        """Around a task's run: the worker counts as busy."""
        return contextlib.nullcontext()

    def finished(self, result: Result) -> None:
        """A task ran to a result, of any status."""

    def dead_lettered(self, tier: str) -> None:
        """A task taken from ``tier`` could not be decoded: counted as taken (op "unknown")
        and as failed (reason "dead_letter")."""


NO_METRICS = Metrics()


class PrometheusMetrics(Metrics):
    """Counters, histograms and the busy gauge of one worker process.

    In multiprocess mode (the daemon) each value lives in this process's file under
    MULTIPROC_ENV and ``registry`` is irrelevant; tests pass a registry to read values."""

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        tier_op = ["tier", "op"]
        self._taken = Counter(
            "blpopq_tasks_taken", "Tasks taken by a worker to run", tier_op, registry=registry
        )
        self._completed = Counter(
            "blpopq_tasks_completed",
            "Tasks that ran to a result, by result status",
            [*tier_op, "status"],
            registry=registry,
        )
        self._failed = Counter(
            "blpopq_tasks_failed",
            "Tasks that failed: result status error or exhausted, or dead-lettered",
            [*tier_op, "reason"],
            registry=registry,
        )
        self._attempts = Counter(
            "blpopq_hash_attempts", "Nonces hashed by tasks", tier_op, registry=registry
        )
        self._wait = Histogram(
            "blpopq_task_wait_seconds",
            "Seconds from enqueue to the start of the run (started_at - enqueued_at)",
            ["tier"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self._run = Histogram(
            "blpopq_task_run_seconds",
            "Seconds a task ran (finished_at - started_at)",
            tier_op,
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self._busy = Gauge(
            "blpopq_workers_busy",
            "Workers running a task now",
            multiprocess_mode="livesum",
            registry=registry,
        )

    def taken(self, tier: str, op: str) -> None:
        self._taken.labels(tier, op).inc()

    @contextlib.contextmanager
    def busy(self) -> Iterator[object]:
        self._busy.inc()
        try:
            yield None
        finally:
            self._busy.dec()

    def finished(self, result: Result) -> None:
        tier, op = result.tier, result.op
        self._completed.labels(tier, op, result.status).inc()
        if result.status in FAILED_STATUSES:
            self._failed.labels(tier, op, result.status).inc()
        self._attempts.labels(tier, op).inc(result.attempts)
        # Clocks of producer and worker hosts may disagree a little: never a negative wait.
        self._wait.labels(tier).observe(max(0.0, result.started_at - result.enqueued_at))
        self._run.labels(tier, op).observe(max(0.0, result.finished_at - result.started_at))

    def dead_lettered(self, tier: str) -> None:
        self._taken.labels(tier, UNKNOWN_OP).inc()
        self._failed.labels(tier, UNKNOWN_OP, "dead_letter").inc()


def worker_metrics(settings: Settings) -> Metrics:
    """For a worker process: recording metrics if its supervisor serves them, else none."""
    if settings.metrics_port and os.environ.get(MULTIPROC_ENV):
        return PrometheusMetrics()
    return NO_METRICS


# --- supervisor side ----------------------------------------------------------------------------


class Endpoint:
    """The pool's /metrics endpoint, as the supervisor sees it. This base class is none."""

    def worker_exited(self, pid: int) -> None:
        """A worker process is gone: its live gauges no longer count."""

    def close(self) -> None:
        """Stop serving and remove what was created."""


def start_endpoint(settings: Settings) -> Endpoint:
    """Call before forking any worker. ConfigError if the library is missing or the port busy."""
    if not settings.metrics_port:
        return Endpoint()
    require_library()
    return _PrometheusEndpoint(settings)


class QueueDepth:
    """A collector: the length of each tier list, read from Redis in one pipeline per scrape."""

    def __init__(self, settings: Settings) -> None:
        self._keys = [(tier.value, settings.keys.tier(tier)) for tier in TIERS]
        self._client = make_client(settings.url, 5.0, namespace=settings.namespace)

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily(
            "blpopq_queue_depth", "Tasks waiting in each tier list", labels=["tier"]
        )
        up = GaugeMetricFamily("blpopq_redis_up", "1 if this scrape could read Redis, else 0")
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for _, key in self._keys:
                    pipe.llen(key)
                lengths = pipe.execute()
        except redis.RedisError as exc:
            log.debug("metrics: cannot read the queue depths: %s", exc)
            up.add_metric([], 0)
        else:
            for (tier, _), length in zip(self._keys, lengths, strict=True):
                depth.add_metric([tier], int(length))
            up.add_metric([], 1)
        yield depth
        yield up

    def close(self) -> None:
        self._client.close()


class _PrometheusEndpoint(Endpoint):
    def __init__(self, settings: Settings) -> None:
        self._directory = tempfile.mkdtemp(prefix="blpopq-metrics-")
        self._previous = os.environ.get(MULTIPROC_ENV)
        os.environ[MULTIPROC_ENV] = self._directory  # inherited by the workers we fork
        self._depth: QueueDepth | None = None
        self._server: Any = None
        try:
            self._serve(settings)
        except BaseException:
            self.close()
            raise
        # A forked worker must not hold the listening socket (nor keep the port if orphaned).
        os.register_at_fork(after_in_child=self._close_socket_in_child)
        log.info(
            "metrics: serving http://%s:%d/metrics (worker files in %s)",
            BIND_ADDRESS,
            settings.metrics_port,
            self._directory,
        )

    def _serve(self, settings: Settings) -> None:
        try:
            from prometheus_client import CollectorRegistry, multiprocess, start_http_server, values
        except ImportError as exc:  # found but broken
            raise ConfigError(f"cannot import prometheus_client ({exc}): {INSTALL_HINT}") from None

        # Multiprocess mode is chosen when the library is imported; an embedding program may
        # have imported it before MULTIPROC_ENV was set, so choose again now.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self._directory)  # type: ignore[no-untyped-call]
        self._depth = QueueDepth(settings)
        registry.register(cast("Collector", self._depth))
        try:
            self._server, self._thread = start_http_server(
                settings.metrics_port, addr=BIND_ADDRESS, registry=registry
            )
        except OSError as exc:
            where = f"{BIND_ADDRESS}:{settings.metrics_port}"
            raise ConfigError(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None

    def worker_exited(self, pid: int) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self._directory)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5.0)
            self._server = None
        if self._depth is not None:
            self._depth.close()
            self._depth = None
        shutil.rmtree(self._directory, ignore_errors=True)
        if os.environ.get(MULTIPROC_ENV) == self._directory:
            if self._previous is None:
                del os.environ[MULTIPROC_ENV]
            else:
                os.environ[MULTIPROC_ENV] = self._previous
            with contextlib.suppress(ImportError):
                from prometheus_client import values

                values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]

    def _close_socket_in_child(self) -> None:
        if self._server is not None:
            self._server.socket.close()
