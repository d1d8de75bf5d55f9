"""The plain progress line (stderr not a terminal) and the expected-time wording."""

from __future__ import annotations

import io

from blpopq.cli.common import _duration
from blpopq.cli.progress import PlainLines


def test_plain_line_has_done_per_tier_rate_elapsed_and_eta() -> None:
    lines = PlainLines(10, {"vip": 2, "alto": 3, "comun": 5}, io.StringIO())
    lines._done = {"vip": 2, "alto": 1, "comun": 1}
    assert lines.line(8.0) == (
        "done 4/10 (vip 2/2, alto 1/3, comun 1/5) 0.5/s, elapsed 8s, eta 12s"
    )


def test_plain_line_without_tier_totals_and_when_finished() -> None:
    lines = PlainLines(3, None, io.StringIO())
    lines._done = {"vip": 1, "alto": 0, "comun": 2}
    assert lines.line(2.0) == "done 3/3 (vip 1, alto 0, comun 2) 1.5/s, elapsed 2s, eta -"
    lines._done = {}
    assert lines.line(0.0) == "done 0/3 (vip 0, alto 0, comun 0) 0.0/s, elapsed 0s, eta -"


def test_closing_writes_the_last_line() -> None:
    stream = io.StringIO()
    with PlainLines(1, None, stream):
        pass
    assert stream.getvalue().startswith("done 0/1 ")


def test_expected_times_read_in_a_fitting_unit() -> None:
    assert [_duration(s) for s in (5, 119, 600, 3 * 3600, 5 * 86400)] == [
        "5 s", "119 s", "10 min", "3.0 h", "5.0 days",
    ]  # fmt: skip
