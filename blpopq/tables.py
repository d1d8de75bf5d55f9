"""Plain-text tables measured in terminal cells, fitted to a width: the one table layout of
``collect``/``run``, ``status`` and ``dead list``.

Cells are measured by display width, not by characters: ``東京銀行`` takes 8 cells, a
decomposed ``José`` (``e`` + U+0301) takes 4, and an emoji sequence joined by ZWJ takes 2.
The widths come from ``wcwidth`` (grapheme clusters, East Asian width, zero-width and
combining marks, kept in step with new Unicode versions), which the standard library's
``unicodedata`` alone does not give. Control characters (an ESC in a hostile id, a newline)
are shown escaped, so no cell can move the cursor or break a line.

A table wider than the target width is fitted in two steps: the columns marked shrinkable
are clipped (``…``) down to their minimum, then droppable columns are left out, least useful
first, and a last line says which. Pure: it returns lines; the caller decides where they go
and picks the width (``terminal_width``).
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import wcwidth

#: Width assumed when the terminal's is unknown (output piped, no COLUMNS).
DEFAULT_WIDTH = 80
GAP = "  "
ELLIPSIS = "…"


@dataclass(frozen=True)
class Column:
    name: str
    right: bool = False  # numbers: right-aligned
    #: Cells this column may be clipped to when the table is too wide; None: never clipped.
    shrink_to: int | None = None
    #: Order in which columns are left out when clipping is not enough (1 first); None: kept.
    drop: int | None = None


def terminal_width() -> int:
    """Columns of the terminal on stdout (or $COLUMNS); DEFAULT_WIDTH when unknown."""
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns or DEFAULT_WIDTH


def printable(text: str) -> str:
    """``text`` with control characters and line separators escaped (``\\x1b``, ``\\n``)."""
    if text.isprintable():
        return text
    return "".join(
        repr(ch)[1:-1] if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text
    )


def cells(text: str) -> int:
    """Terminal cells ``text`` takes (after ``printable``)."""
    return max(0, wcwidth.width(printable(text)))


def clip(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut between grapheme clusters, ending in ``…``."""
    text = printable(text)
    if cells(text) <= width:
        return text
    kept, used = [], 0
    for grapheme in wcwidth.iter_graphemes(text):
        size = cells(grapheme)
        if used + size > width - 1:
            break
        kept.append(grapheme)
        used += size
    return "".join(kept) + ELLIPSIS if width >= 1 else ""


def pad(text: str, width: int, right: bool = False) -> str:
    space = " " * max(0, width - cells(text))
    return space + text if right else text + space


@dataclass(frozen=True)
class Layout:
    """Which columns a table shows and how wide each is: fixed by a table's first rows, it
    keeps later rows under the same header (``collect --follow``)."""

    shown: tuple[int, ...]
    widths: tuple[int, ...]


def layout(
    columns: Sequence[Column], rows: Sequence[Sequence[object]], width: int | None = None
) -> Layout:
    """The layout that fits ``rows`` in ``width`` cells (None: no limit)."""
    natural = [
        max([cells(c.name)] + [cells(str(row[i])) for row in rows]) for i, c in enumerate(columns)
    ]
    shown, widths = fit(columns, natural, width)
    return Layout(tuple(shown), tuple(widths))


def render(
    columns: Sequence[Column],
    rows: Sequence[Sequence[object]],
    width: int | None = None,
    header: bool = True,
    fixed: Layout | None = None,
) -> list[str]:
    """The table as lines (no newlines), fitted to ``width`` cells (None: no limit), or laid
    out as ``fixed`` (cells clipped to it)."""
    texts = [[printable(str(value)) for value in row] for row in rows]
    chosen = fixed or layout(columns, texts, width)
    shown, widths = chosen.shown, chosen.widths
    lines = []
    for row in ([[c.name for c in columns]] if header else []) + texts:
        # Numbers are never clipped: a wider one shifts its row rather than lie.
        cells_ = [
            pad(
                row[i] if columns[i].right else clip(row[i], widths[i]), widths[i], columns[i].right
            )
            for i in shown
        ]
        lines.append(GAP.join(cells_).rstrip())
    dropped = [c.name for i, c in enumerate(columns) if i not in shown]
    if dropped and header:
        lines.append(clip(f"({', '.join(dropped)} left out to fit {width} columns)", width or 0))
    return lines


def fit(
    columns: Sequence[Column], natural: Sequence[int], width: int | None
) -> tuple[list[int], list[int]]:
    """Which columns to show (indexes) and each column's width, to fit ``width`` cells."""
    widths = list(natural)
    shown = list(range(len(columns)))
    if width is None:
        return shown, widths

    def excess() -> int:
        return sum(widths[i] for i in shown) + len(GAP) * (len(shown) - 1) - width

    for i, column in enumerate(columns):
        if column.shrink_to is not None and excess() > 0:
            floor = max(column.shrink_to, cells(column.name))
            widths[i] = max(min(widths[i], floor), widths[i] - excess())
    droppable = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop is not None)
    for _, i in droppable:
        if excess() <= 0:
            break
        shown.remove(i)
    # Dropping a column may leave room: give it back to the clipped ones.
    for i in shown:
        if widths[i] < natural[i] and excess() < 0:
            widths[i] = min(natural[i], widths[i] - excess())
    return shown, widths
