"""`blpopq run`'s exit status when several reasons apply: the first of 130 (interrupted),
4 (timed out), 3 or 5 (Redis), 1 (a task failed), 0."""

from __future__ import annotations

import itertools

import pytest

from blpopq.cli.common import Stops
from blpopq.cli.runbatch import Ending
from blpopq.errors import BlpopqError, RedisRefused, RedisUnavailable, WaitTimeout


@pytest.mark.parametrize(
    ("interrupted", "timed_out", "failure", "tasks"),
    list(
        itertools.product(
            [False, True], [False, True], [None, RedisUnavailable("x"), RedisRefused("y")], [0, 1]
        )
    ),
)
def test_the_first_reason_that_applies_wins(
    interrupted: bool, timed_out: bool, failure: BlpopqError | None, tasks: int
) -> None:
    ending = Ending(Stops(), embedded=False, interrupted=interrupted)
    ending.timeout = WaitTimeout("late") if timed_out else None
    expected = next(
        code
        for applies, code in [
            (interrupted, 130),
            (timed_out, 4),
            (failure is not None, failure.exit_code if failure else 0),
            (True, tasks),
        ]
        if applies
    )
    assert ending.exit_status(failure, tasks) == expected
