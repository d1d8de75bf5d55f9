"""How OutcomeWait turns WAIT's answers into waits, skips and warnings (pure: the answers are
scripted; tests/scaleout/test_replicas.py runs the same against a real replica)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from blpopq.config import build_settings
from blpopq.errors import ConfigError
from blpopq.producer import Progress
from blpopq.replication import (
    OUTCOME_TIMEOUT,
    PROBE_EVERY,
    PROBE_TIMEOUT,
    WARN_EVERY,
    OutcomeWait,
)


class Answers:
    """Stands in for Protocol.wait_for_replicas: each call pops the next scripted answer."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.timeouts: list[float] = []

    def wait_for_replicas(self, replicas: int, timeout: float) -> int:
        self.timeouts.append(timeout)
        return self.answers.pop(0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def outcome_wait(replicas: int = 1) -> tuple[OutcomeWait, Clock]:
    clock = Clock()
    return OutcomeWait(replicas, clock=clock), clock


def test_no_replicas_asked_sends_no_wait() -> None:
    wait, _ = outcome_wait(0)
    protocol: Any = Answers()
    assert wait.after_outcome(protocol) and protocol.timeouts == []


def test_a_short_wait_warns_once_then_skips_until_the_next_probe(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wait, clock = outcome_wait()
    protocol: Any = Answers(0, 0, 1, 1)
    with caplog.at_level(logging.WARNING, logger="blpopq.replication"):
        assert not wait.after_outcome(protocol)  # waited the full timeout, fell short
        clock.now += PROBE_EVERY / 2
        assert not wait.after_outcome(protocol)  # skipped: no WAIT sent
        assert protocol.timeouts == [OUTCOME_TIMEOUT]
        clock.now += PROBE_EVERY
        assert not wait.after_outcome(protocol)  # a short probe, short again
        clock.now += PROBE_EVERY + 0.1
        assert wait.after_outcome(protocol)  # the probe is answered: waiting again
        assert wait.after_outcome(protocol)
    assert protocol.timeouts == [OUTCOME_TIMEOUT, PROBE_TIMEOUT, PROBE_TIMEOUT, OUTCOME_TIMEOUT]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not confirmed by 1 replicas" in warnings[0].getMessage()


def test_warnings_come_at_most_every_warn_every_seconds_and_count_what_they_cover(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wait, clock = outcome_wait(2)
    protocol: Any = Answers(*([1] * 50))
    with caplog.at_level(logging.WARNING, logger="blpopq.replication"):
        for _ in range(30):
            wait.after_outcome(protocol)
            clock.now += WARN_EVERY / 10
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 3  # at 0, WARN_EVERY, 2 * WARN_EVERY
    assert "10 outcome(s) on the primary only" in messages[1]


def test_progress_names_a_chunk_on_the_primary_only() -> None:
    progress = Progress("b", total=10, enqueued=4, unconfirmed=3)
    line = progress.partial(maybe_in_flight=True)
    assert line.startswith("enqueued 4 of 10 (batch=b)")
    assert "the next 3 are enqueued on the primary, not confirmed by its replicas" in line


def test_wait_replicas_is_read_from_the_environment_and_checked() -> None:
    assert build_settings({}, {"BLPOPQ_WAIT_REPLICAS": "2"}).wait_replicas == 2
    assert build_settings({"wait_replicas": 1}, {"BLPOPQ_WAIT_REPLICAS": "2"}).wait_replicas == 1
    with pytest.raises(ConfigError, match="wait replicas must be in 0..1000"):
        build_settings({"wait_replicas": -1}, {})
