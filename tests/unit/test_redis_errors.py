"""Which Redis replies are weather and which are refusals (redis_errors.classify)."""

from __future__ import annotations

import pytest
import redis
import redis.exceptions as E

from blpopq.redis_errors import Kind, classify

SCRIPT = "Error running script (call to f_1): @user_script:12: @user_script: 12: "


@pytest.mark.parametrize(
    "exc",
    [
        redis.ConnectionError("Connection closed by server."),
        redis.TimeoutError("Timeout reading from socket"),
        E.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.ResponseError("BUSY Redis is busy running a script. You can only call SCRIPT KILL"),
        E.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.ResponseError(SCRIPT + "-OOM command not allowed when used memory > 'maxmemory'."),
        E.ReadOnlyError("You can't write against a read only replica."),
        redis.ResponseError("TRYAGAIN Multiple keys request during rehashing of slot"),
        redis.ResponseError("MASTERDOWN Link with MASTER is down"),
    ],
)
def test_weather_is_retried(exc: redis.RedisError) -> None:
    assert classify(exc) is Kind.TRANSIENT


@pytest.mark.parametrize(
    "exc",
    [
        redis.AuthenticationError("invalid username-password pair or user is disabled."),
        E.NoPermissionError("this user has no permissions to run the 'evalsha' command"),
        redis.ResponseError(SCRIPT + "-NOPERM this user has no permissions to access the key"),
        redis.ResponseError("Client names cannot contain spaces, newlines or special characters."),
        redis.ResponseError("unknown command 'EVALSHA', with args beginning with: "),
        redis.ResponseError("Unknown Redis command called from script"),
    ],
)
def test_refusals_stop_with_exit_5(exc: redis.RedisError) -> None:
    assert classify(exc) is Kind.REFUSED


def test_an_unexpected_reply_is_neither() -> None:
    wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert classify(redis.ResponseError(wrongtype)) is Kind.OTHER
