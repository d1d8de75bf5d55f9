"""``collect --plot``: the timeline (timeline.py) drawn with matplotlib, to SVG or PNG.

matplotlib is the ``plot`` extra: only this module imports it, and only ``collect --plot``
imports this module. The figure is built with ``matplotlib.figure.Figure`` directly, never
through pyplot, which keeps a process-wide registry of figures and picks a GUI backend.
Rectangles go in one PolyCollection per tier (thousands of patches would take seconds).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import timeline as tl
from .outcomes import FAILED_STATUSES, Result
from .tiers import TIERS

#: Tier colours, the same in the dashboard (web/static/dashboard.css).
COLOURS = {"vip": "#c0392b", "alto": "#e08e0b", "comun": "#2e86c1"}
OTHER = "#7f8c8d"
WIDTH_IN, DPI = 12.0, 100
LEFT, RIGHT = 0.09, 0.86  # the axes' left and right edges, as fractions of the figure
#: The axes' width in pixels (at DPI; an SVG's nominal pixels): what "thinner than a pixel"
#: is measured against.
AXIS_PX = int(WIDTH_IN * DPI * (RIGHT - LEFT))


def colour(tier: str) -> str:
    return COLOURS.get(tier, OTHER)


def write_timeline(results: Sequence[Result], path: str) -> None:
    """Draw ``results`` into ``path`` (.svg or .png, by its suffix); OSError if it cannot be
    written."""
    timeline = tl.build(results, AXIS_PX)
    figure = draw(timeline, _title(results, timeline))
    fmt = Path(path).suffix.lower().lstrip(".")
    # Text stays text in an SVG (smaller, searchable); fixed metadata keeps files comparable.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "blpopq"}):
        figure.savefig(path, format=fmt, dpi=DPI, metadata=_metadata(fmt))


def _metadata(fmt: str) -> dict[str, str | None]:
    return {"Date": None} if fmt == "svg" else {"Software": "blpopq (matplotlib)"}


def _title(results: Sequence[Result], timeline: tl.Timeline) -> str:
    batches = sorted({r.batch for r in results})
    which = f"batch {batches[0]}" if len(batches) == 1 else f"{len(batches)} batches"
    workers = sum(1 for lane in timeline.lanes if lane.worker != tl.CANCEL_LANE)
    return f"blpopq timeline: {which}, {timeline.tasks} tasks, {workers} workers"


def draw(timeline: tl.Timeline, title: str) -> Figure:
    lanes = max(1, len(timeline.lanes))
    top_in = min(14.0, max(2.2, 0.32 * lanes + 1.0))
    figure = Figure(figsize=(WIDTH_IN, top_in + 2.6), dpi=DPI)
    grid = figure.add_gridspec(2, 1, height_ratios=[top_in, 1.6], hspace=0.45)
    figure.subplots_adjust(left=LEFT, right=RIGHT, top=1 - 0.55 / (top_in + 2.6), bottom=0.1)
    lanes_ax = figure.add_subplot(grid[0])
    waiting_ax = figure.add_subplot(grid[1], sharex=lanes_ax)
    figure.suptitle(title, fontsize=12)
    if not timeline.tasks:
        lanes_ax.text(
            0.5, 0.5, "no results yet", ha="center", va="center", transform=lanes_ax.transAxes
        )
    _draw_lanes(lanes_ax, timeline)
    _draw_waiting(waiting_ax, timeline)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timeline.origin))
    waiting_ax.set_xlabel(f"seconds since the first enqueue ({stamp})")
    lanes_ax.set_xlim(0, max(timeline.span, 1e-3) * 1.01)
    return figure


Span = tuple[float, float, float, float]  # x0, x1, y0, y1


def _rectangles(spans: Sequence[Span]) -> list[list[tuple[float, float]]]:
    return [[(x0, y0), (x1, y0), (x1, y1), (x0, y1)] for x0, x1, y0, y1 in spans]


def _draw_lanes(ax: Axes, timeline: tl.Timeline) -> None:
    pixel = max(timeline.span, 1e-3) / AXIS_PX  # a thin bar is drawn a pixel wide
    by_tier: dict[str, list[Span]] = {}
    failed: list[Span] = []
    waits: dict[str, list[list[tuple[float, float]]]] = {}
    for b in timeline.bars:
        span = (b.start, max(b.end, b.start + pixel), b.lane - 0.45, b.lane - 0.05)
        by_tier.setdefault(b.tier, []).append(span)
        if b.status in FAILED_STATUSES:
            failed.append(span)
        y = b.lane + 0.08 + 0.34 * b.slot
        waits.setdefault(b.tier, []).append([(b.enqueued, y), (b.start, y)])
    for s in timeline.segments:
        by_tier.setdefault(s.tier, []).append((s.start, s.end, s.lane - 0.4, s.lane + 0.4))
    for tier, spans in by_tier.items():
        ax.add_collection(
            PolyCollection(_rectangles(spans), facecolors=colour(tier), edgecolors="none")
        )
    if failed:
        ax.add_collection(
            PolyCollection(
                _rectangles(failed), facecolors="none", edgecolors="black", linewidths=1.0
            )
        )
    for tier, lines in waits.items():
        ax.add_collection(LineCollection(lines, colors=colour(tier), linewidths=0.7, alpha=0.6))
    _label_lanes(ax, timeline.lanes, bool(timeline.bars))
    ax.set_ylim(len(timeline.lanes) - 0.5, -0.6)
    ax.set_title(_lanes_title(timeline), fontsize=9, loc="left")
    ax.legend(
        handles=_legend(timeline),
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        fontsize=8,
        frameon=False,
    )


def _lanes_title(timeline: tl.Timeline) -> str:
    if timeline.aggregated:
        return (
            f"one lane per worker, by host; {timeline.tasks} tasks, too many to draw one by "
            "one: each pixel shows the tier that kept the worker busiest (waits: panel below)"
        )
    return (
        "one lane per worker, by host: a bar per task (start to finish), a thin line per task "
        "from enqueue to start (its wait)"
    )


def _legend(timeline: tl.Timeline) -> list[Patch | Line2D]:
    tiers = [t.value for t in TIERS]
    seen = {b.tier for b in timeline.bars} | {s.tier for s in timeline.segments}
    tiers += sorted(seen - set(tiers))
    handles: list[Patch | Line2D] = [Patch(color=colour(t), label=t) for t in tiers]
    if timeline.bars:
        handles.append(Line2D([], [], color="grey", linewidth=0.7, label="wait"))
        handles.append(Patch(facecolor="none", edgecolor="black", label="failed"))
    return handles


def _label_lanes(ax: Axes, lanes: Sequence[tl.Lane], bars: bool) -> None:
    """Tick labels: each lane's pid (beside its bars, which sit above the wait lines); each
    host's name once beside its group, groups apart."""
    ax.set_yticks([i - 0.25 if bars else i for i in range(len(lanes))])
    ax.set_yticklabels([lane.label for lane in lanes], fontsize=7)
    groups: dict[str, list[int]] = {}
    for i, lane in enumerate(lanes):
        groups.setdefault(lane.host, []).append(i)
    for host, members in groups.items():
        if members[0] > 0:
            ax.axhline(members[0] - 0.5, color="#bbbbbb", linewidth=0.8)
        if host:
            ax.text(
                -0.07,
                (members[0] + members[-1]) / 2,
                host,
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="center",
                fontsize=8,
                rotation=0,
            )
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)


def _draw_waiting(ax: Axes, timeline: tl.Timeline) -> None:
    for tier, steps in timeline.waiting.items():
        if len(steps) < 2:
            continue
        xs = [at for at, _ in steps] + [timeline.span]
        ys = [n for _, n in steps] + [steps[-1][1]]
        ax.step(xs, ys, where="post", color=colour(tier), linewidth=1.2, label=tier)
    ax.set_title(
        "the batch's view: its own tasks waiting per tier, rebuilt from their enqueue and start "
        "times (other batches' tasks not shown)",
        fontsize=9,
        loc="left",
    )
    ax.set_ylabel("waiting", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.grid(color="#eeeeee", linewidth=0.6)
