"""blpopq.tables and the tables built on it (collect/run, status, dead list): columns line up
in terminal cells, whatever the script of the text, and fit the width they are given."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from dataclasses import replace

import pytest

from blpopq import deadletters, tables
from blpopq.collector import COLUMNS, render, table_layout
from blpopq.outcomes import Result
from blpopq.status import InFlight, Recent, Status, TierStatus, WorkerStatus, render_table
from blpopq.tables import Column, cells, clip

TOKYO = "東京銀行"
JOSE_DECOMPOSED = unicodedata.normalize("NFD", "José")  # "e" + U+0301: 5 code points


def result(position: int, client: str = "ana", worker: str = "h:1") -> Result:
    return Result(
        position=position, id=f"b.{position}", batch="b", source="f", line=position, tier="vip",
        client=client, op="mine", status="ok", prev="cd" * 32, difficulty=1, nonce=3,
        hash="0" * 64, blocks=({"nonce": 3, "hash": "0" * 64},), attempts=4, worker=worker,
        enqueued_at=10.0, started_at=10.5, finished_at=10.75,
    )  # fmt: skip


def starts(line: str, word: str) -> int:
    """The terminal cell at which ``word`` begins on ``line``."""
    return cells(line[: line.index(word)])


def test_cells_counts_terminal_cells_not_characters() -> None:
    assert (len(TOKYO), cells(TOKYO)) == (4, 8)
    assert (len(JOSE_DECOMPOSED), cells(JOSE_DECOMPOSED)) == (5, 4)
    assert cells("👩‍👩‍👧") == 2  # one ZWJ sequence, one glyph
    assert cells("ana") == 3


def test_clip_cuts_between_graphemes_and_fits_the_width() -> None:
    assert clip("Farmacia_Central", 8) == "Farmaci…"
    assert clip(TOKYO, 5) == "東京…" and cells(clip(TOKYO, 5)) == 5
    assert clip(TOKYO, 8) == TOKYO
    clipped = clip("Jose\u0301phine", 5)
    assert clipped == "Jose\u0301…"  # the accent stays with its e
    assert clip("short", 10) == "short"


def test_control_characters_are_escaped_so_they_cannot_move_the_cursor() -> None:
    assert tables.printable("a\x1b[2Jb\nc") == "a\\x1b[2Jb\\nc"
    (line,) = tables.render([Column("id")], [["x\x1b]0;pwned\x07"]], header=False)
    assert "\x1b" not in line and "\x07" not in line


@pytest.mark.parametrize("client", [TOKYO, JOSE_DECOMPOSED, "Ana"])
def test_collect_table_columns_line_up_in_cells(client: str) -> None:
    """Issue 11, item 10: a wide or decomposed client does not shift the columns after it."""
    text = render([result(1, client), result(2, "Banco_Andino")], "table", width=200)
    header, first, second = text.splitlines()
    assert starts(first, "mine") == starts(second, "mine") == starts(header, "op")
    assert starts(first, "h:1") == starts(second, "h:1") == starts(header, "worker")
    assert cells(first.rstrip()) == cells(second.rstrip())


def test_the_demo_table_fits_80_columns_and_csv_jsonl_keep_every_field() -> None:
    """The demo's 98-cell table fits 80 columns by clipping and leaving out the least needed
    columns, and says which; csv and jsonl never lose a field."""
    rows = [result(n, "Farmacia_Central", "vm:24414") for n in range(1, 31)]
    wide = render(rows, "table", width=200).splitlines()
    assert max(cells(line) for line in wide) > 80 and wide[0].split() == list(COLUMNS)
    fitted = render(rows, "table", width=80).splitlines()
    assert max(cells(line) for line in fitted) <= 80
    assert fitted[0].split()[:5] == ["position", "tier", "client", "op", "status"]
    assert fitted[-1] == "(worker left out to fit 80 columns)"
    narrow = render(rows, "table", width=50).splitlines()
    assert max(cells(line) for line in narrow) <= 50
    assert narrow[0].split()[:5] == ["position", "tier", "client", "op", "status"]
    parsed = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert list(parsed[0]) == list(COLUMNS) and parsed[0]["worker"] == "vm:24414"
    assert parsed[0]["hash"] == "0" * 16
    assert json.loads(render(rows, "jsonl").splitlines()[0])["hash"] == "0" * 64


def test_without_a_width_the_table_fits_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert tables.terminal_width() == 60
    lines = render([result(1, "Farmacia_Central")], "table").splitlines()
    assert max(cells(line) for line in lines) <= 60
    monkeypatch.delenv("COLUMNS")
    assert tables.terminal_width() == 80  # pytest's stdout is not a terminal


def status(worker: str, task_id: str) -> Status:
    return Status(
        namespace="ns", time=100.0,
        tiers=(TierStatus("vip", 1, 5.0), TierStatus("alto", 0, None)),
        in_flight=(InFlight(task_id, "vip", worker, 7, 3.0),),
        workers=(WorkerStatus(worker, 10.0, 3, (task_id,)),),
        results=1, dead_letters=0, open_tasks=1, recent=Recent(60.0, 1, 1),
    )  # fmt: skip


def test_status_tables_line_up_in_cells_and_fit_the_width() -> None:
    ascii_lines = render_table(status("host-a:1", "b.1"), width=200).splitlines()
    wide_lines = render_table(status("東京ab:1", "b.1"), width=200).splitlines()  # 8 cells too
    for a, w in zip(ascii_lines, wide_lines, strict=True):
        if "lease" in a or "vip" in a:
            assert cells(a) == cells(w), (a, w)
    long_id = "20261201T220135-b6c9356c4b212f84.17"
    long_worker = "a-very-long-hostname.example.internal:123456"
    lines = render_table(status(long_worker, long_id), width=60).splitlines()
    tabular = [line for line in lines if not line.startswith(("blpopq", "results:", "recent:"))]
    assert max(cells(line) for line in tabular) <= 60  # the sentences may wrap, not the tables


def letter(index: int, task_id: str | None, reason: str) -> deadletters.Letter:
    body = {"id": task_id, "tier": "vip", "batch": "20261201T220135-b6c9", "reason": reason,
            "at": 1796162495.0}  # fmt: skip
    return deadletters.Letter(index, json.dumps(body), body)


def test_dead_list_lines_up_in_cells_and_fits_the_width() -> None:
    letters = [letter(1, f"{TOKYO}.1", "task raised"), letter(2, "b.2", "task raised")]
    first, second = deadletters.render_list(letters, width=200).splitlines()[1:3]
    assert starts(first, "vip") == starts(second, "vip")
    assert starts(first, "task raised") == starts(second, "task raised")
    long = [letter(1, "b.1", "could not decode the task: " + "x" * 200)]
    lines = deadletters.render_list(long, width=80).splitlines()
    assert max(cells(line) for line in lines) <= 80 and lines[-1] == "1 dead letter"
    narrow = deadletters.render_list(long, width=50).splitlines()
    assert max(cells(line) for line in narrow[:-1]) <= 50


def test_fit_gives_room_back_after_dropping_a_column() -> None:
    columns = [Column("a", shrink_to=16), Column("b", drop=1)]
    shown, widths = tables.fit(columns, [20, 10], 24)  # a clipped to 16 is not enough
    assert shown == [0] and widths[0] == 20
    assert tables.fit(columns, [20, 10], None) == ([0, 1], [20, 10])
    assert replace(columns[0], right=True).right


def test_a_followed_table_keeps_the_layout_of_its_first_arrival() -> None:
    """collect --follow prints one header: later arrivals, wider or not, stay under it."""
    first = [result(1, "ana")]
    fixed = table_layout(first, width=80)
    head = render(first, "table", width=80, fixed=fixed).splitlines()
    later = render([result(2, "Farmacia_Central_de_Lima")], "table", header=False, fixed=fixed)
    (line,) = later.splitlines()
    assert starts(line, "mine") == starts(head[0], "op")
    assert "Farma…" in line and "Farmacia" not in line  # clipped to the width of "client"
    big = render([result(123456789)], "table", header=False, fixed=fixed)
    assert big.split()[0] == "123456789"  # a number is never clipped
