"""One frozen Settings object, built once at the edge (flags over environment over defaults).

It is picklable, so it crosses into worker processes, and each process builds its own
Redis client from it: nothing here holds a connection or any other state.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from .connection import DEFAULT_URL
from .errors import ConfigError
from .identity import HOST_ID_PATTERN, this_host
from .instructions import DEFAULT_MAX_DIFFICULTY, DEFAULT_MAX_WORK
from .kernels import KernelUnavailable, select_kernel
from .keyspace import Keyspace
from .policy import DEFAULT_POLICY, Policy, PolicyError, parse_policy
from .pow import DEFAULT_MAX_ATTEMPTS, MAX_DIFFICULTY
from .redis_url import parse_url


def default_workers() -> int:
    """The CPUs this process may run on (cgroup/affinity aware where the OS says so)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    #: None means "not configured": produce/daemon/collect use DEFAULT_URL, run embeds a Redis.
    redis_url: str | None = None
    namespace: str = "blpopq"
    workers: int = 0  # 0: default_workers()
    #: BLPOP timeout: how often an idle worker re-checks for shutdown and a dead connection.
    block_timeout: float = 2.0
    #: Seconds a stopping worker may spend finishing its task before it puts it back.
    grace: float = 30.0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_difficulty: int = DEFAULT_MAX_DIFFICULTY
    #: Largest expected work of one mine request, count * 2**difficulty attempts (produce).
    max_work: int = DEFAULT_MAX_WORK
    #: Tasks per atomic enqueue call; larger files are pushed in several calls.
    chunk_size: int = 50_000
    #: Cap of the exponential backoff between reconnect attempts and worker restarts.
    backoff_max: float = 5.0
    #: A worker whose heartbeat is older than this is declared dead and its task recovered.
    #: Heartbeats come from a thread in each worker process every lease/3 seconds, so a long
    #: CPU-bound search never looks stalled, while a SIGSTOPped or frozen process does.
    lease: float = 15.0
    #: How long a task popped by BLPOP but never claimed waits before it is taken back.
    orphan_grace: float = 5.0
    #: Seconds between reaper passes (one pass per period across all daemons of a namespace).
    reaper_period: float = 5.0
    #: A task that was running when its worker died this many times is dead-lettered.
    max_deaths: int = 3
    #: Results kept in {ns}:results, newest first: each result written trims the list to this
    #: many in the same atomic step. 0 keeps them all.
    keep_results: int = 0
    #: Port of the Prometheus /metrics endpoint on 127.0.0.1 (needs the metrics extra). 0: off.
    metrics_port: int = 0
    #: Proof-of-work kernel: auto, native, portable or hashlib (see blpopq.kernels).
    kernel: str = "auto"
    #: The HOST of this machine's workers (results' ``worker`` is HOST:PID); "": host name.
    host_id: str = ""
    #: Fairness policy of the takes: strict, weighted:..., aging:... (see blpopq.policy).
    policy: str = DEFAULT_POLICY
    #: Replicas that must confirm each enqueue chunk, result and dead letter (WAIT); 0: none.
    wait_replicas: int = 0

    @property
    def url(self) -> str:
        return self.redis_url or DEFAULT_URL

    @property
    def host(self) -> str:
        return this_host(self.host_id)

    @property
    def fairness(self) -> Policy:
        """The fairness policy, parsed (``validate`` has checked its spelling)."""
        return parse_policy(self.policy)

    @property
    def keys(self) -> Keyspace:
        return Keyspace(self.namespace)

    @property
    def socket_timeout(self) -> float:
        # Above the BLPOP timeout, or redis-py reports an idle BLPOP as a timeout error.
        return self.block_timeout + 10.0

    @property
    def heartbeat_interval(self) -> float:
        return self.lease / 3

    @property
    def worker_count(self) -> int:
        return self.workers or default_workers()

    def validate(self) -> Settings:
        checks = [
            (self.workers >= 0, "workers must be 0 (one per CPU) or more"),
            (0 < self.block_timeout <= 300, "block timeout must be in (0, 300] seconds"),
            (self.grace >= 0, "grace must be 0 or more seconds"),
            (self.max_attempts >= 1, "max attempts must be at least 1"),
            (0 <= self.max_difficulty <= MAX_DIFFICULTY, "max difficulty must be in 0..256"),
            (self.max_work >= 1, "max work must be at least 1 attempt"),
            (self.chunk_size >= 1, "chunk size must be at least 1"),
            (self.backoff_max > 0, "backoff max must be positive"),
            (self.lease > 0, "lease must be positive"),
            (self.orphan_grace >= 0, "orphan grace must be 0 or more seconds"),
            (self.reaper_period > 0, "reaper period must be positive"),
            (self.max_deaths >= 1, "max deaths must be at least 1"),
            (self.keep_results >= 0, "keep results must be 0 (keep all) or more"),
            (0 <= self.metrics_port <= 65535, "metrics port must be in 0..65535 (0: off)"),
            (0 <= self.wait_replicas <= 1000, "wait replicas must be in 0..1000 (0: no WAIT)"),
        ]
        if self.host_id and not HOST_ID_PATTERN.fullmatch(self.host_id):
            checks.append(
                (False, f"host id {self.host_id!r} must be 1-64 ASCII letters, digits or -_.")
            )
        problems = [message for ok, message in checks if not ok]  # all of them at once
        try:
            parse_url(self.url)  # any form, checked before anything connects
        except ConfigError as exc:
            problems.append(str(exc))
        try:
            self.keys  # noqa: B018 - validates the namespace
        except ValueError as exc:
            problems.append(str(exc))
        try:
            select_kernel(self.kernel)  # native/portable where the extension is missing
        except (ValueError, KernelUnavailable) as exc:
            problems.append(str(exc))
        try:
            self.fairness  # noqa: B018 - validates the policy's spelling
        except PolicyError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError("; ".join(problems))
        return self


#: Environment variable of each setting. REDIS_URL is the convention RQ and Celery users know.
ENVIRONMENT = {
    "redis_url": "REDIS_URL",
    "namespace": "BLPOPQ_NAMESPACE",
    "workers": "BLPOPQ_WORKERS",
    "block_timeout": "BLPOPQ_BLOCK_TIMEOUT",
    "grace": "BLPOPQ_GRACE",
    "max_attempts": "BLPOPQ_MAX_ATTEMPTS",
    "max_difficulty": "BLPOPQ_MAX_DIFFICULTY",
    "max_work": "BLPOPQ_MAX_WORK",
    "chunk_size": "BLPOPQ_CHUNK_SIZE",
    "backoff_max": "BLPOPQ_BACKOFF_MAX",
    "lease": "BLPOPQ_LEASE",
    "orphan_grace": "BLPOPQ_ORPHAN_GRACE",
    "reaper_period": "BLPOPQ_REAPER_PERIOD",
    "max_deaths": "BLPOPQ_MAX_DEATHS",
    "keep_results": "BLPOPQ_KEEP_RESULTS",
    "metrics_port": "BLPOPQ_METRICS_PORT",
    "kernel": "BLPOPQ_KERNEL",
    "host_id": "BLPOPQ_HOST_ID",
    "policy": "BLPOPQ_POLICY",
    "wait_replicas": "BLPOPQ_WAIT_REPLICAS",
}


#: Settings whose empty variable is refused rather than read as "not set": an empty namespace
#: is a templating slip far more often than a wish for the default, and it would silently
#: share the default namespace's queue.
_EMPTY_IS_AN_ERROR = frozenset({"namespace"})


def build_settings(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any] | None = None,
) -> Settings:
    """Flags (None = not given) over environment over the TOML file over defaults, validated."""
    values = {name: value for name, (value, _) in resolve(flags, environ, file_values).items()}
    return replace(Settings(), **values).validate()


def resolve(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any] | None = None,
) -> dict[str, tuple[Any, str]]:
    """Each setting that is not left at its default: (value, where it came from)."""
    types = {f.name: f.type for f in fields(Settings)}
    values: dict[str, tuple[Any, str]] = {}
    for name, value in (file_values or {}).items():
        values[name] = (value, "file")
    for name, variable in ENVIRONMENT.items():
        text = environ.get(variable)
        if text == "" and name in _EMPTY_IS_AN_ERROR:
            raise ConfigError(f"{variable} is set but empty: unset it or give a {name}")
        if text:
            values[name] = (_convert(name, types[name], text, variable), f"env {variable}")
    for name, value in flags.items():
        if name not in types:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = (value, "flag")
    return values


def load_file(path: str) -> dict[str, Any]:
    """Settings from a TOML file: top-level keys named as the Settings fields (``workers = 8``,
    ``redis_url = "redis://..."``). An unknown key or a wrong type is an error, never ignored."""
    try:
        with open(path, "rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    types = {f.name: str(f.type) for f in fields(Settings)}
    problems = []  # every bad key, so one edit fixes the file
    for key, value in data.items():
        if key not in types:
            problems.append(f"{path}: unknown setting {key!r}")
        elif not _fits(types[key], value):
            problems.append(f"{path}: {key} = {_toml(value)} is not a valid {types[key]}")
    if problems:
        raise ConfigError("\n".join(problems))
    return data


def _toml(value: Any) -> str:
    """A value as the file spells it (true, "4"), not as Python does (True, '4')."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # dates and times
        return str(value)


def _fits(kind: str, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "float":
        return isinstance(value, (int, float))
    return isinstance(value, str)


def _convert(name: str, kind: Any, text: str, variable: str) -> Any:
    converters = {"int": int, "float": float}
    convert = converters.get(str(kind), str)
    try:
        return convert(text)
    except ValueError:
        raise ConfigError(f"{variable}={text!r} is not a valid {kind} for {name}") from None
