"""The timeline of the attention order, as numbers a picture is drawn from (plot.py draws it,
the web dashboard sends it as JSON).

One lane per worker, grouped by host (a worker id is ``host:pid``; cancelled tasks, which no
worker ran, get a lane of their own), one bar per task from start to finish, and each task's
wait from enqueue to start. Beside it, the batch's own waiting tasks per tier over time,
rebuilt from its results' enqueue and start times: the batch's view, which knows nothing of
other batches waiting in the same tiers.

Bars thinner than a pixel cannot be drawn one by one when there are many (10,000 tasks of a
few ms each on a 1,000-pixel axis; see ``_too_thin``), so then the timeline is *aggregated*:
each lane is cut into pixel-wide bins, each bin shown in the colour of the tier that kept the
worker busiest in it, and consecutive bins of one tier merged into one segment.
Pure: Result values in, a Timeline out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .outcomes import Result
from .tiers import TIERS

#: The lane of tasks cancelled while they waited (their ``worker`` is ``cancel``).
CANCEL_LANE = "cancel"


@dataclass(frozen=True)
class Lane:
    worker: str
    host: str
    label: str  # what the lane is called beside its host: the pid, or the worker id


@dataclass(frozen=True)
class Bar:
    """One task, in seconds from the timeline's origin."""

    lane: int
    enqueued: float
    start: float
    end: float
    tier: str
    status: str
    #: Where in its lane's band the wait line goes (0..1), so the waits of tasks served one
    #: after another by one worker do not hide each other.
    slot: float


@dataclass(frozen=True)
class Segment:
    """A stretch of a lane busy with one tier's tasks (aggregated timelines only)."""

    lane: int
    start: float
    end: float
    tier: str


@dataclass(frozen=True)
class Timeline:
    origin: float  # Unix seconds of the earliest enqueue: time 0
    span: float  # seconds from the origin to the last finish
    lanes: tuple[Lane, ...]
    bars: tuple[Bar, ...]  # empty when aggregated
    segments: tuple[Segment, ...]  # empty unless aggregated
    #: Per tier, (time, tasks of the batch waiting from then on): a step function.
    waiting: dict[str, tuple[tuple[float, int], ...]]
    aggregated: bool
    tasks: int


def host_of(worker: str) -> str:
    """The host part of a worker id ``host:pid``; the whole id when it has no pid."""
    host, sep, pid = worker.rpartition(":")
    return host if sep and pid.isdigit() else worker


def lanes_of(results: Iterable[Result]) -> tuple[Lane, ...]:
    """Every worker once, by host, then pid; the cancel lane last."""
    workers = {r.worker for r in results}

    def key(worker: str) -> tuple[int, str, int, str]:
        pid = worker.rpartition(":")[2]
        return (worker == CANCEL_LANE, host_of(worker), int(pid) if pid.isdigit() else -1, worker)

    lanes = []
    for worker in sorted(workers, key=key):
        host = host_of(worker)
        if worker == CANCEL_LANE:
            lanes.append(Lane(worker, "", "cancelled"))
        else:
            lanes.append(Lane(worker, host, worker[len(host) + 1 :] or worker))
    return tuple(lanes)


def build(results: Sequence[Result], width_px: int = 1000) -> Timeline:
    """The timeline of ``results`` for an axis ``width_px`` pixels wide."""
    if not results:
        return Timeline(0.0, 0.0, (), (), (), {t.value: () for t in TIERS}, False, 0)
    origin = min(r.enqueued_at for r in results)
    span = max(max(r.finished_at, r.started_at) for r in results) - origin
    lanes = lanes_of(results)
    index = {lane.worker: i for i, lane in enumerate(lanes)}
    bars = _bars(results, origin, index)
    pixel = span / max(1, width_px) if span > 0 else 0.0
    aggregated = pixel > 0 and _too_thin(bars, pixel, width_px)
    if aggregated:
        segments = _aggregate(bars, len(lanes), pixel, width_px)
        waiting = {t: _per_bin(s, pixel, width_px) for t, s in _waiting(bars).items()}
        return Timeline(origin, span, lanes, (), segments, waiting, True, len(results))
    return Timeline(origin, span, lanes, tuple(bars), (), _waiting(bars), False, len(results))


#: Pixels a bar needs, on average, to be told from its neighbours.
PIXELS_PER_BAR = 4


def _too_thin(bars: Sequence[Bar], pixel: float, width_px: int) -> bool:
    """True when one lane holds more bars thinner than a pixel than its width can show one
    by one (a thin bar is drawn a pixel wide, so a few of them read well: 30 quick tasks)."""
    thin: dict[int, int] = {}
    for b in bars:
        if b.end - b.start < pixel:
            thin[b.lane] = thin.get(b.lane, 0) + 1
    return max(thin.values(), default=0) > width_px / PIXELS_PER_BAR


def _bars(results: Sequence[Result], origin: float, index: dict[str, int]) -> list[Bar]:
    per_lane: dict[int, list[Result]] = {}
    for r in sorted(results, key=lambda r: (r.started_at, r.position)):
        per_lane.setdefault(index[r.worker], []).append(r)
    bars = []
    for lane, served in per_lane.items():
        for k, r in enumerate(served):
            bars.append(
                Bar(
                    lane=lane,
                    enqueued=r.enqueued_at - origin,
                    start=r.started_at - origin,
                    end=max(r.finished_at, r.started_at) - origin,
                    tier=r.tier,
                    status=r.status,
                    slot=(k + 0.5) / len(served),
                )
            )
    bars.sort(key=lambda b: (b.start, b.lane))
    return bars


def _waiting(bars: Sequence[Bar]) -> dict[str, tuple[tuple[float, int], ...]]:
    """Per tier, the count of the batch's tasks enqueued and not yet started, as steps."""
    events: dict[str, list[tuple[float, int]]] = {t.value: [] for t in TIERS}
    for b in bars:
        events.setdefault(b.tier, []).extend(((b.enqueued, 1), (b.start, -1)))
    steps: dict[str, tuple[tuple[float, int], ...]] = {}
    for tier, changes in events.items():
        changes.sort()
        level, points = 0, [(0.0, 0)]
        for at, delta in changes:
            level += delta
            if points[-1][0] == at:
                points[-1] = (at, level)  # several at one instant: one step
            else:
                points.append((at, level))
        steps[tier] = tuple(points)
    return steps


def _per_bin(
    steps: Sequence[tuple[float, int]], pixel: float, width_px: int
) -> tuple[tuple[float, int], ...]:
    """The steps reduced to one point per pixel-wide bin, the bin's highest count (a peak
    narrower than a pixel stays visible)."""
    peaks: dict[int, int] = {}
    for k, (at, level) in enumerate(steps):
        end = steps[k + 1][0] if k + 1 < len(steps) else at
        for b in range(_bin(at, pixel, width_px), _bin(end, pixel, width_px) + 1):
            peaks[b] = max(peaks.get(b, 0), level)
    return tuple((b * pixel, level) for b, level in sorted(peaks.items()))


def _bin(at: float, pixel: float, width_px: int) -> int:
    return min(width_px - 1, max(0, int(at / pixel)))


def _aggregate(bars: Sequence[Bar], lanes: int, pixel: float, width_px: int) -> tuple[Segment, ...]:
    """Each lane as pixel-wide bins in the colour of the tier busiest in it, merged."""
    busy: list[dict[int, dict[str, float]]] = [{} for _ in range(lanes)]
    for b in bars:
        first, last = _bin(b.start, pixel, width_px), _bin(b.end, pixel, width_px)
        for k in range(first, last + 1):
            overlap = min(b.end, (k + 1) * pixel) - max(b.start, k * pixel)
            tiers = busy[b.lane].setdefault(k, {})
            # A task of zero length still marks its bin (a cancel, a quick verify).
            tiers[b.tier] = tiers.get(b.tier, 0.0) + max(overlap, 1e-9)
    segments: list[Segment] = []
    for lane, bins in enumerate(busy):
        tier_open: str | None = None  # the run of bins being merged: its tier, first, end
        first = end = 0
        for k in sorted(bins):
            tier = max(bins[k].items(), key=lambda item: item[1])[0]
            if tier == tier_open and k == end:
                end = k + 1
                continue
            if tier_open is not None:
                segments.append(Segment(lane, first * pixel, end * pixel, tier_open))
            tier_open, first, end = tier, k, k + 1
        if tier_open is not None:
            segments.append(Segment(lane, first * pixel, end * pixel, tier_open))
    return tuple(segments)


def to_dict(timeline: Timeline) -> dict[str, object]:
    """The timeline as JSON-ready values (the web dashboard draws it in the browser)."""
    return {
        "origin": timeline.origin,
        "span": round(timeline.span, 6),
        "aggregated": timeline.aggregated,
        "tasks": timeline.tasks,
        "lanes": [{"worker": w.worker, "host": w.host, "label": w.label} for w in timeline.lanes],
        "bars": [
            [b.lane, round(b.enqueued, 6), round(b.start, 6), round(b.end, 6), b.tier, b.slot]
            for b in timeline.bars
        ],
        "segments": [
            [s.lane, round(s.start, 6), round(s.end, 6), s.tier] for s in timeline.segments
        ],
        "waiting": {
            tier: [[round(at, 6), n] for at, n in steps] for tier, steps in timeline.waiting.items()
        },
    }
