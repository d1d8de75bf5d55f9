"""The exceptions blpopq raises on purpose, and the exit codes the commands map them to.

    BlpopqError                   base of everything below
    ├── ConfigError               bad option or environment value          -> exit 2
    ├── InputError                bad instruction file (every bad line)    -> exit 2
    ├── RedisUnavailable          cannot reach or talk to Redis            -> exit 3
    │   └── IdInUse               an enqueued id is open already: nothing of its chunk written
    ├── EmbeddedRedisError        no redis-server binary, or it would not start -> exit 3
    ├── RedisRefused              Redis refuses what blpopq needs (NOPERM, wrong password,
    │                             a refused client name, a missing command)  -> exit 5
    ├── WaitTimeout               expected results did not arrive in time  -> exit 4
    │                             (collect --expect, run --timeout)
    └── Interrupted               stopped by SIGINT/SIGTERM between two steps -> exit 130
                                  (a KeyboardInterrupt elsewhere exits 130 too)

A malformed task found *in Redis* is not an exception at this level: the worker turns
it into a dead letter (jsontext.DecodeError carries the reason) and keeps serving.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_TASK_FAILED = 1  # `blpopq run`: some task ended error, exhausted or dead-lettered
EXIT_BAD_INPUT = 2
EXIT_REDIS_UNAVAILABLE = 3
EXIT_TIMEOUT = 4
EXIT_REDIS_REFUSED = 5  # permanent: restarting cannot help until an operator changes Redis
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C), as shells report it (128 + 2); SIGTERM too


class BlpopqError(Exception):
    exit_code = 1


class ConfigError(BlpopqError):
    exit_code = EXIT_BAD_INPUT


class InputError(BlpopqError):
    exit_code = EXIT_BAD_INPUT


class RedisUnavailable(BlpopqError):
    exit_code = EXIT_REDIS_UNAVAILABLE


class IdInUse(RedisUnavailable):
    """An enqueue chunk named an id that is queued or running already: the chunk wrote
    nothing. Ids of blpopq's own batches carry 64 random bits, so this means a caller reused
    an id (or a batch id) on purpose or by accident."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task id {task_id!r} is open already (queued or running): refused")
        self.task_id = task_id


class EmbeddedRedisError(BlpopqError):
    exit_code = EXIT_REDIS_UNAVAILABLE


class RedisRefused(BlpopqError):
    exit_code = EXIT_REDIS_REFUSED


class WaitTimeout(BlpopqError):
    exit_code = EXIT_TIMEOUT


class Interrupted(BlpopqError):
    exit_code = EXIT_INTERRUPTED
