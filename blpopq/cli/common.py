"""What several commands do the same way: connect to Redis, read an instruction file, and
enqueue it with a trace of half-done work."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import redis

from ..config import Settings
from ..connection import check_reachable, make_client, mask_url
from ..errors import BlpopqError, ConfigError, InputError, Interrupted, RedisRefused
from ..instruction_file import CheckedFile, Heavy, read_checked
from ..instructions import DEFAULT_MAX_WORK, InstructionError, expected_work
from ..kernels import KernelUnavailable, measure_rate, select_kernel
from ..producer import EnqueueReport, Progress, RequestSource, enqueue
from ..protocol import Protocol
from ..redis_errors import Kind, as_blpopq_error, classify
from ..replication import ReplicaWait

log = logging.getLogger("blpopq")


def connect(settings: Settings) -> Protocol:
    client = make_client(settings.url, settings.socket_timeout, namespace=settings.namespace)
    check_reachable(client, settings.url)
    return Protocol(client, settings.keys)


def hold_policy(protocol: Protocol, settings: Settings) -> None:
    """Record the pool's fairness policy in Redis, or refuse to start (exit 2) while the
    namespace's daemons run under another: one namespace, one policy, so the guarantee the
    README states for it holds for every take."""
    spec = settings.fairness.spec()
    try:
        in_force = protocol.hold_policy(spec, settings.lease)
    except redis.ResponseError as exc:
        kind = classify(exc)
        if kind is Kind.REFUSED:  # Redis 7 names the script, not the command: say which
            raise RedisRefused(
                "Redis refuses what blpopq needs: the fairness-policy script "
                f"(it runs 'hget', 'hset', 'zcount' and 'time'): {exc}"
            ) from None
        if kind is not Kind.TRANSIENT:
            raise
        # A pool must start, and drain, a Redis over its maxmemory (README guarantee): the
        # record is a write Redis refuses then, so this start goes unchecked.
        log.warning("could not record policy %s (%s): not checked against other daemons",
                    spec, exc)  # fmt: skip
        return
    if in_force != spec:
        raise ConfigError(
            f"namespace {settings.namespace} is served under policy {in_force} by daemons "
            f"still running: start with --policy {in_force}, or stop them first"
        )


def announce(command: str, settings: Settings, quiet: bool = False, where: str = "") -> None:
    """One stderr line naming the Redis (password masked, or ``where``) and namespace
    ``command`` uses: localhost:6379, the default, may well be someone else's Redis."""
    if quiet:
        return
    if not where:
        where = f"Redis {mask_url(settings.url)}"
        if not settings.redis_url:
            where += " (the default: set REDIS_URL or --redis-url)"
    sys.stderr.write(f"blpopq {command}: using {where}, namespace {settings.namespace}\n")


#: What ``--batch`` (and cancel's BATCH) may name besides a batch id.
LAST_BATCH = "last"


def resolve_batch(protocol: Protocol, batch: str | None) -> str | None:
    """``batch`` as given, or for ``last`` the batch most recently produced in the namespace;
    InputError (exit 2) when none was recorded."""
    if batch != LAST_BATCH:
        return batch
    last = protocol.last_batch()
    if last is None:
        raise InputError(
            f"'last': no batch has been produced in namespace {protocol.keys.namespace} yet "
            "(produce and run record the last one)"
        )
    return last


#: Expected attempts above which a mine request is announced at produce time with how long
#: it should take here: 2**32 is minutes even on the fastest kernel, hours on hashlib.
HEAVY_WORK = 2**32


def read_requests(
    path: str, fmt: str, max_difficulty: int, stdin: Any = None, max_work: int = DEFAULT_MAX_WORK
) -> CheckedFile:
    """Check the whole file, spooling its requests (close it, or use it in a ``with``);
    InputError carries every bad line."""
    try:
        return read_checked(
            path, fmt, max_difficulty, max_work, HEAVY_WORK, stdin or sys.stdin.buffer
        )
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except InstructionError as exc:
        raise InputError(str(exc)) from None


def warn_heavy(command: str, heavy: Heavy, kernel_setting: str) -> None:
    """On stderr, for the first mine requests expected to cost over HEAVY_WORK attempts: the
    expected time of each on one core at the rate the configured kernel reaches here,
    measured now (about 0.1 s, spent only when such a request exists), then of all. A
    warning, not a refusal: that bound is --max-work."""
    if not heavy.count:
        return
    try:
        kernel = select_kernel(kernel_setting)
    except KernelUnavailable:
        kernel = select_kernel("auto")  # the daemon will refuse the setting; estimate anyway
    rate = measure_rate(kernel)
    speed = f"{rate / 1e6:.1f} M attempts/s on one core here (kernel {kernel.name})"
    for r in heavy.named:
        work = expected_work(r)
        sys.stderr.write(
            f"blpopq {command}: warning: {r.source}:{r.line}: mine expects {r.count} * "
            f"2**{r.difficulty} = {work:.3g} attempts: about {_duration(work / rate)} at {speed}\n"
        )
    if heavy.count > len(heavy.named):
        sys.stderr.write(
            f"blpopq {command}: warning: {heavy.count - len(heavy.named)} more requests expect "
            f"over 2**32 attempts; all {heavy.count}: about {_duration(heavy.work / rate)} at "
            f"{speed}\n"
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def enqueue_reporting(
    protocol: Protocol, requests: RequestSource, settings: Settings
) -> EnqueueReport:
    """``enqueue``, leaving a trace if it stops half-way. On any failure or interrupt, stderr
    gets ``enqueued K of N (batch=B)`` and the exception goes on to main, which picks the exit
    status (3 or 5 for Redis, 130 for an interrupt). A SIGINT or SIGTERM waits for the chunk
    under way to finish, so K is exact. A second one stops at once, and then the last chunk
    may or may not have landed (the line says so). With --wait-replicas, K counts only the
    tasks that enough replicas confirmed."""
    progress = Progress()
    replicas = ReplicaWait(settings.wait_replicas)
    try:
        with _stop_between_chunks() as stop:
            return enqueue(
                protocol,
                requests,
                settings.chunk_size,
                progress=progress,
                should_stop=stop,
                replicas=replicas,
            )
    except BaseException as exc:
        if progress.started:
            # A refusal (an error reply) wrote nothing of its chunk; anything else may have.
            refused = isinstance(exc, (redis.ResponseError, Interrupted))
            sys.stderr.write(progress.partial(maybe_in_flight=not refused) + "\n")
        raise


class Stops:
    """SIGINT and SIGTERM received while ``recorded_stops`` was active, counted and nothing
    else: the loop that reads ``count`` decides what each one means."""

    def __init__(self) -> None:
        self.count = 0

    def record(self, signum: int, frame: object) -> None:
        self.count += 1


@contextlib.contextmanager
def recorded_stops() -> Iterator[Stops]:
    """Count SIGINT and SIGTERM instead of raising KeyboardInterrupt or dying; the previous
    handlers come back at the end."""
    stops = Stops()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, stops.record) for signum in signals}
    try:
        yield stops
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def as_failure(exc: BaseException) -> BlpopqError:
    """What main would make of ``exc``: blpopq's own errors as they are, Redis's classified
    (exit 3 or 5)."""
    if isinstance(exc, BlpopqError):
        return exc
    if isinstance(exc, redis.RedisError):
        return as_blpopq_error(exc, "Redis failed")
    raise TypeError(f"not a failure main reports: {exc!r}")


@contextlib.contextmanager
def _stop_between_chunks() -> Iterator[Callable[[], bool]]:
    """SIGINT and SIGTERM only set a flag while this is active; the previous handlers come
    back at the end."""
    received: list[int] = []

    def record(signum: int, frame: object) -> None:
        if received:
            raise KeyboardInterrupt  # asked twice: stop now, reply or not
        received.append(signum)

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, record) for signum in signals}
    try:
        yield lambda: bool(received)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
