"""``collect --plot``'s drawing (blpopq/plot.py) on synthetic results: files that are what
their suffix says, for 30 tasks and for 10,000 (aggregated); and without matplotlib, exit 2
with the pip line."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from blpopq.plot import write_timeline  # the test extra brings matplotlib: never skipped

from .test_timeline import synthetic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()  # well-formed XML, or this raises
    assert root.tag.endswith("svg")
    return " ".join(t.strip() for t in root.itertext() if t.strip())


def test_thirty_tasks_one_bar_each_with_their_waits(tmp_path: Path) -> None:
    results = synthetic(30, workers=2)
    png, svg = tmp_path / "t.png", tmp_path / "t.svg"
    write_timeline(results, str(png))
    write_timeline(results, str(svg))
    assert png.read_bytes().startswith(PNG_MAGIC)
    text = svg_text(svg)
    assert "30 tasks, 2 workers" in text and "a thin line per task from enqueue" in text
    assert "the batch's view" in text and "alpha" in text and "beta" in text


def test_ten_thousand_tasks_are_aggregated(tmp_path: Path) -> None:
    results = synthetic(10_000)
    png, svg = tmp_path / "big.png", tmp_path / "big.svg"
    write_timeline(results, str(png))
    write_timeline(results, str(svg))
    assert png.read_bytes().startswith(PNG_MAGIC)
    text = svg_text(svg)
    assert "10000 tasks, 8 workers" in text and "too many to draw one by one" in text
    # One shape per pixel and lane at most, not one per task: the file stays small.
    assert svg.stat().st_size < 3_000_000


def test_no_results_still_makes_a_picture_saying_so(tmp_path: Path) -> None:
    svg = tmp_path / "empty.svg"
    write_timeline([], str(svg))
    assert "no results yet" in svg_text(svg)


def test_without_matplotlib_plot_exits_2_with_the_install_line(tmp_path: Path) -> None:
    """matplotlib hidden from the import system, as in an install without the extra; the
    check comes before Redis is asked (the URL here reaches nothing)."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from blpopq.cli import main\n"
        f"sys.exit(main(['collect', '--plot', {str(tmp_path / 'x.png')!r}, "
        "'--redis-url', 'redis://127.0.0.1:9/0']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "pip install 'blpopq[plot]'" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and not (tmp_path / "x.png").exists()
