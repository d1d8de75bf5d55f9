"""blpopq.instruction_file: a file checked a line at a time and spooled by tier gives exactly
what the whole-text parser gives (requests, their order and numbers, or the bad lines)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blpopq.instruction_file import MAX_REPORTED, read_checked
from blpopq.instructions import InstructionError, Request, decode_source, parse
from blpopq.producer import Listed
from blpopq.tiers import TIERS

PREV = "ab" * 32
GOOD = [
    f"vip ana mine {PREV} 5",
    f"alto bob mine {PREV} 3 2",
    f"comun 東京銀行 verify {PREV} 17 4",
    f'{{"tier": "alto", "client": "cai", "op": "mine", "prev": "{PREV}", "difficulty": 2}}',
]
BAD = ["vip", f"vip ana mine {PREV} 99", "gold x mine 00 1", f"alto ana verify {PREV} -1 3"]
NOISE = ["", "   ", "# a comment", f"comun eva mine {PREV} 1  # trailing comment"]


def by_tier(source: object) -> list[tuple[int, Request]]:
    return [pair for tier in TIERS for pair in source.in_tier(tier)]  # type: ignore[attr-defined]


def outcome_of_text(data: bytes, fmt: str, source: str) -> tuple[str, object]:
    try:
        requests = parse(decode_source(data, source), source, fmt)
    except InstructionError as exc:
        return "bad", [(e.line, e.message) for e in exc.errors]
    return "good", by_tier(Listed(requests))


def outcome_of_file(path: Path, fmt: str) -> tuple[str, object]:
    try:
        with read_checked(str(path), fmt, 32) as checked:
            return "good", by_tier(checked)
    except InstructionError as exc:
        return "bad", [(e.line, e.message) for e in exc.errors]


lines = st.lists(st.sampled_from(GOOD[:3] + BAD + NOISE), max_size=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=lines, crlf=st.booleans(), bom=st.booleans(), junk=st.booleans())
def test_streamed_check_equals_the_whole_text_parse(
    tmp_path: Path, lines: list[str], crlf: bool, bom: bool, junk: bool
) -> None:
    ending = "\r\n" if crlf else "\n"
    data = ("\ufeff" if bom else "").encode() + ending.join(lines).encode()
    if junk:
        data += b"\nvip ana mine \xff\xfe 3\n"  # invalid UTF-8 on the last line
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    streamed, whole = outcome_of_file(path, "text"), outcome_of_text(data, "text", str(path))
    if not junk:
        assert streamed == whole
    else:  # the whole-text decoder stops at invalid UTF-8; the stream reports every bad line
        assert streamed[0] == whole[0] == "bad"
        assert set(whole[1]) <= set(streamed[1])  # type: ignore[arg-type]


def test_auto_detects_json_lines_from_the_first_non_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("\n\n" + GOOD[3] + "\n" + GOOD[3] + "\n", encoding="utf-8")
    kind, pairs = outcome_of_file(path, "auto")
    assert kind == "good" and [(n, r.client, r.line) for n, r in pairs] == [  # type: ignore[attr-defined]
        (1, "cai", 3),
        (2, "cai", 4),
    ]


def test_spooled_requests_are_what_was_checked_even_if_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("\n".join(GOOD[:3]) + "\n", encoding="utf-8")
    with read_checked(str(path), "text", 32) as checked:
        path.write_text("vip zed mine 00 1\n", encoding="utf-8")  # now bad, and different
        assert len(checked) == 3 and checked.counts[TIERS[0]] == 1
        assert [(n, r.client) for n, r in by_tier(checked)] == [
            (1, "ana"),
            (2, "bob"),
            (3, "東京銀行"),
        ]


def test_standard_input_is_read_once_as_a_stream() -> None:
    stdin = io.BytesIO(("\n".join(GOOD[:2]) + "\n").encode())
    with read_checked("-", "auto", 32, stdin=stdin) as checked:
        assert checked.source == "<stdin>"
        assert [r.client for _, r in by_tier(checked)] == ["ana", "bob"]


def test_a_million_bad_lines_report_the_first_thousand_and_count_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("vip\n" * (MAX_REPORTED + 7) + GOOD[0] + "\n", encoding="utf-8")
    with pytest.raises(InstructionError) as info:
        read_checked(str(path), "text", 32)
    assert len(info.value.errors) == MAX_REPORTED and info.value.more == 7
    assert str(info.value).endswith("... and 7 more problems on later lines (not shown)")
    assert info.value.errors[-1].line == MAX_REPORTED


def test_heavy_requests_are_noted_first_five_by_name_and_all_counted(tmp_path: Path) -> None:
    path = tmp_path / "heavy.txt"
    path.write_text(
        "".join(f"vip c{n} mine {PREV} 30 8\n" for n in range(7)) + GOOD[0] + "\n",
        encoding="utf-8",
    )
    with read_checked(str(path), "text", 32, heavy_above=2**32) as checked:
        assert checked.heavy.count == 7 and checked.heavy.work == 7 * 8 * 2**30
        assert [r.client for r in checked.heavy.named] == [f"c{n}" for n in range(5)]
