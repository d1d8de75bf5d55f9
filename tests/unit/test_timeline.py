"""The timeline's numbers (blpopq/timeline.py), from Result values alone: lanes by host, bars,
waits, the batch's waiting tasks per tier, and aggregation when bars get thinner than a pixel."""

from __future__ import annotations

import random

from blpopq.outcomes import Result
from blpopq.timeline import CANCEL_LANE, build, host_of, lanes_of, to_dict

PREV = "ab" * 32


def result(
    position: int,
    worker: str = "h:1",
    tier: str = "vip",
    enqueued: float = 100.0,
    start: float = 101.0,
    end: float = 102.0,
    status: str = "ok",
) -> Result:
    return Result(
        position=position, id=f"b.{position}", batch="b", source="f", line=position, tier=tier,
        client="c", op="mine", status=status, prev=PREV, difficulty=1, nonce=1, hash="0" * 64,
        blocks=(), attempts=1, worker=worker, enqueued_at=enqueued, started_at=start,
        finished_at=end,
    )  # fmt: skip


def test_host_of_takes_the_part_before_the_pid() -> None:
    assert host_of("web-1.example:4242") == "web-1.example"
    assert host_of("a:b:12") == "a:b"
    assert host_of("cancel") == "cancel"
    assert host_of("odd:name") == "odd:name"


def test_lanes_are_grouped_by_host_then_pid_with_cancelled_last() -> None:
    results = [
        result(1, "beta:7"), result(2, CANCEL_LANE), result(3, "alpha:100"),
        result(4, "alpha:9"), result(5, "beta:7"),
    ]  # fmt: skip
    lanes = lanes_of(results)
    assert [(lane.host, lane.label) for lane in lanes] == [
        ("alpha", "9"), ("alpha", "100"), ("beta", "7"), ("", "cancelled"),
    ]  # fmt: skip


def test_bars_and_waits_are_in_seconds_from_the_first_enqueue() -> None:
    results = [
        result(1, "h:1", "vip", 10.0, 10.5, 11.0),
        result(2, "h:1", "alto", 10.0, 11.0, 12.0),
        result(3, "h:2", "comun", 11.0, 11.5, 11.75, status="error"),
    ]
    timeline = build(results, width_px=1000)
    assert not timeline.aggregated and timeline.tasks == 3
    assert timeline.origin == 10.0 and timeline.span == 2.0
    first, second, third = timeline.bars
    assert (first.lane, first.enqueued, first.start, first.end) == (0, 0.0, 0.5, 1.0)
    assert (second.lane, second.start, third.lane, third.status) == (0, 1.0, 1, "error")
    # Two tasks of one worker: their wait lines get different places in the lane.
    assert first.slot != second.slot and 0 < first.slot < 1 and 0 < second.slot < 1


def test_the_batch_waiting_per_tier_is_rebuilt_from_enqueue_and_start() -> None:
    results = [
        result(1, tier="vip", enqueued=0.0, start=1.0, end=1.5),
        result(2, tier="vip", enqueued=0.0, start=2.0, end=2.5),
        result(3, tier="comun", enqueued=0.5, start=3.0, end=3.5),
    ]
    waiting = build(results).waiting
    assert waiting["vip"] == ((0.0, 2), (1.0, 1), (2.0, 0))
    assert waiting["alto"] == ((0.0, 0),)
    assert waiting["comun"] == ((0.0, 0), (0.5, 1), (3.0, 0))


def test_an_empty_timeline_has_no_lanes() -> None:
    timeline = build([])
    assert timeline.tasks == 0 and timeline.lanes == () and not timeline.aggregated
    assert set(timeline.waiting) == {"vip", "alto", "comun"}


def synthetic(n: int, workers: int = 8, seed: int = 15) -> list[Result]:
    """``n`` quick tasks enqueued at once and served back to back by ``workers`` workers on
    two hosts, vip first, then alto, then comun (as the queue serves them)."""
    rng = random.Random(seed)
    tiers = sorted((rng.choice(["vip", "alto", "comun"]) for _ in range(n)),
                   key=["vip", "alto", "comun"].index)  # fmt: skip
    free = [1000.5] * workers  # the first tasks wait half a second too
    results = []
    for k, tier in enumerate(tiers):
        w = min(range(workers), key=free.__getitem__)
        start, run = free[w], rng.uniform(0.0005, 0.004)
        free[w] = start + run + 0.0002
        host = "alpha" if w < workers // 2 else "beta"
        results.append(result(k + 1, f"{host}:{100 + w}", tier, 1000.0, start, start + run))
    return results


def test_ten_thousand_quick_tasks_are_aggregated_into_pixel_bins() -> None:
    results = synthetic(10_000)
    timeline = build(results, width_px=900)
    assert timeline.aggregated and timeline.bars == () and timeline.tasks == 10_000
    assert len(timeline.lanes) == 8
    # At most one segment per lane and pixel, and every lane's busy time is covered.
    assert 0 < len(timeline.segments) <= 8 * 900
    pixel = timeline.span / 900
    for lane in range(8):
        mine = [s for s in timeline.segments if s.lane == lane]
        assert all(s.end - s.start >= pixel * 0.999 for s in mine)
        assert all(a.end <= b.start + 1e-9 for a, b in zip(mine, mine[1:], strict=False))
        assert sum(s.end - s.start for s in mine) >= 0.9 * (timeline.span - 0.5)  # busy after 0.5
    # vip was served first: the earliest segments are vip, the last ones comun.
    assert min(timeline.segments, key=lambda s: s.start).tier == "vip"
    assert max(timeline.segments, key=lambda s: s.end).tier == "comun"
    # The waiting steps are one point per bin at most, starting from every task waiting.
    assert all(len(steps) <= 900 for steps in timeline.waiting.values())
    assert sum(steps[0][1] for steps in timeline.waiting.values()) == 10_000


def test_thirty_tasks_are_drawn_one_by_one_even_when_thinner_than_a_pixel() -> None:
    results = synthetic(30, workers=2)
    results.append(result(31, "alpha:100", "vip", 1000.0, 1010.0, 1010.0))  # a long timeline
    timeline = build(results, width_px=900)
    assert not timeline.aggregated and len(timeline.bars) == 31


def test_to_dict_is_plain_json_values() -> None:
    import json

    body = to_dict(build(synthetic(40, workers=2)))
    again = json.loads(json.dumps(body))
    assert again["tasks"] == 40 and len(again["bars"]) == 40 and again["segments"] == []
    assert [lane["host"] for lane in again["lanes"]] == ["alpha", "beta"]
