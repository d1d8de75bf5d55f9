"""blpopq.instructions: the text and JSONL instruction-file parsers."""

from __future__ import annotations

import json
import pickle

import pytest

from blpopq.instructions import (
    DEFAULT_MAX_DIFFICULTY,
    MAX_COUNT,
    InstructionError,
    LineError,
    Request,
    decode_source,
    detect_format,
    parse,
    parse_jsonl,
    parse_text,
)
from blpopq.tiers import Tier

H = "00ab" + "c" * 60
H_UPPER = "00AB" + "C" * 60


def errors_of(text: str, source: str = "f.txt", **kwargs: int) -> list[tuple[int, str]]:
    with pytest.raises(InstructionError) as info:
        parse_text(text, source, **kwargs)
    return [(e.line, e.message) for e in info.value.errors]


def one_error(line: str) -> str:
    errors = errors_of(line)
    assert len(errors) == 1, errors
    return errors[0][1]


def json_errors(*lines: str) -> list[tuple[int, str]]:
    with pytest.raises(InstructionError) as info:
        parse_jsonl("\n".join(lines), "f.jsonl")
    return [(e.line, e.message) for e in info.value.errors]


_DROP = object()  # obj(field=_DROP) leaves the field out


def obj(**fields: object) -> str:
    base: dict[str, object] = {
        "tier": "vip",
        "client": "ana",
        "op": "mine",
        "prev": H,
        "difficulty": 5,
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not _DROP})


# --------------------------------------------------------------------------- text: happy paths


def test_mine_and_verify_lines() -> None:
    text = f"vip ana mine {H} 20 3\nalto bob verify {H} 12345 8\ncomun eve mine {H} 0\n"
    assert parse_text(text, "in.txt") == [
        Request(Tier.VIP, "ana", "mine", H, 20, 3, None, "in.txt", 1),
        Request(Tier.ALTO, "bob", "verify", H, 8, 1, 12345, "in.txt", 2),
        Request(Tier.COMUN, "eve", "mine", H, 0, 1, None, "in.txt", 3),
    ]


def test_crlf_and_bom() -> None:
    text = f"\ufeffvip ana mine {H} 1\r\n\r\nalto bob mine {H} 2\r\n"
    requests = parse_text(text, "w.txt")
    assert [(r.client, r.line, r.difficulty) for r in requests] == [("ana", 1, 1), ("bob", 3, 2)]


def test_no_trailing_newline() -> None:
    assert parse_text(f"vip ana mine {H} 1", "f")[0].line == 1


def test_comments_and_blank_lines() -> None:
    text = "\n".join(
        [
            "# a whole-line comment",
            "   # indented comment",
            "",
            "   \t  ",
            f"vip ana mine {H} 4   # trailing comment 1 2 3",
            f"vip ana#2 mine {H} 4\t#tab then comment",
        ]
    )
    requests = parse_text(text, "f")
    assert [(r.client, r.line, r.count) for r in requests] == [("ana", 5, 1), ("ana#2", 6, 1)]


def test_empty_or_comment_only_file_is_not_an_error() -> None:
    assert parse_text("", "f") == []
    assert parse_text("# nothing\n\n  # here\n", "f") == []
    assert parse_jsonl("", "f.jsonl") == []
    assert parse_jsonl("\n  \n", "f.jsonl") == []


def test_case_insensitive_tier_and_op_and_comun_accent() -> None:
    text = f"VIP a MINE {H} 1\nAlto b Verify {H} 7 1\ncomún c mine {H} 1\nCOMÚN d mine {H} 1\n"
    requests = parse_text(text, "f")
    assert [(r.tier, r.op) for r in requests] == [
        (Tier.VIP, "mine"),
        (Tier.ALTO, "verify"),
        (Tier.COMUN, "mine"),
        (Tier.COMUN, "mine"),
    ]


def test_hex_is_normalised_to_lower_case() -> None:
    assert parse_text(f"vip a mine {H_UPPER} 1", "f")[0].prev == H


def test_default_count_and_explicit_bounds() -> None:
    assert parse_text(f"vip a mine {H} 1", "f")[0].count == 1
    assert parse_text(f"vip a mine {H} 1 1", "f")[0].count == 1
    assert parse_text(f"vip a mine {H} 1 {MAX_COUNT}", "f")[0].count == MAX_COUNT


def test_accented_client_names_count_characters() -> None:
    assert parse_text(f"vip José mine {H} 1", "f")[0].client == "José"
    name64 = "é" * 64  # 128 bytes in UTF-8, but 64 characters
    assert parse_text(f"vip {name64} mine {H} 1", "f")[0].client == name64
    assert one_error(f"vip {'é' * 65} mine {H} 1") == "client must be 1-64 characters, got 65"


def test_difficulty_bounds_and_max_parameter() -> None:
    assert parse_text(f"vip a mine {H} {DEFAULT_MAX_DIFFICULTY}", "f")[0].difficulty == 32
    assert one_error(f"vip a mine {H} 33") == "difficulty 33 is above the maximum 32"
    assert parse_text(f"vip a mine {H} 40", "f", max_difficulty=40)[0].difficulty == 40
    assert errors_of(f"vip a verify {H} 1 41", max_difficulty=40) == [
        (1, "difficulty 41 is above the maximum 40")
    ]
    mine_256 = parse_text(f"vip a mine {H} 256", "f", max_difficulty=256, max_work=2**256)
    assert mine_256[0].difficulty == 256
    assert errors_of(f"vip a mine {H} 1", max_difficulty=0) == [
        (1, "difficulty 1 is above the maximum 0")
    ]


def test_expected_work_above_max_work_is_a_bad_line() -> None:
    """count * 2**difficulty attempts: count 1000 at difficulty 32 is weeks of one core."""
    assert parse_text(f"vip a mine {H} 30 1000", "f")[0].count == 1000  # ~2**40, below it
    at_limit = parse_text(f"vip a mine {H} 20 4", "f", max_work=4 * 2**20)
    assert at_limit[0].count == 4  # exactly at the limit is allowed
    [(line, message)] = errors_of(f"vip a mine {H} 30 1\nvip b mine {H} 32 1000")
    assert line == 2 and "above --max-work 2**40 (BLPOPQ_MAX_WORK)" in message
    assert "1000 * 2**32" in message
    assert errors_of(f"vip a mine {H} 20 5", max_work=4 * 2**20)[0][0] == 1
    assert parse_text(f"vip a verify {H} 1 32", "f", max_work=1)[0].op == "verify"


@pytest.mark.parametrize("bad", [-1, 257])
def test_max_difficulty_parameter_is_checked(bad: int) -> None:
    with pytest.raises(ValueError) as info:
        parse_text("", "f", max_difficulty=bad)
    assert not isinstance(info.value, InstructionError)


def test_nonce_bounds() -> None:
    top = 2**64 - 1
    assert parse_text(f"vip a verify {H} {top} 1", "f")[0].nonce == top
    assert parse_text(f"vip a verify {H} 0 1", "f")[0].nonce == 0
    assert one_error(f"vip a verify {H} {2**64} 1") == (
        f"nonce {2**64} is too large: it must be below 2**64"
    )


def test_leading_zeros_are_plain_decimal() -> None:
    request = parse_text(f"vip a verify {H} 007 08", "f")[0]
    assert (request.nonce, request.difficulty) == (7, 8)


# --------------------------------------------------------------------------- text: errors


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"gold a mine {H} 1", "unknown tier 'gold': expected one of vip, alto, comun"),
        (f"vip a dance {H} 1", "unknown op 'dance': expected mine or verify"),
        (f"vip a mine {H[:63]} 1", "prev_hash must be 64 hexadecimal digits, got 63"),
        (f"vip a mine {H}0 1", "prev_hash must be 64 hexadecimal digits, got 65"),
        (f"vip a mine {H[:-1]}g 1", "prev_hash must be 64 hexadecimal digits, found 'g'"),
        (
            f"vip a mine {H}",
            "mine takes <prev_hash> <difficulty> [<count>]; got 1 field after 'mine'",
        ),
        (
            f"vip a mine {H} 1 2 3 4",
            "mine takes <prev_hash> <difficulty> [<count>]; got 5 fields after 'mine'",
        ),
        (
            f"vip a verify {H} 1",
            "verify takes <prev_hash> <nonce> <difficulty>; got 2 fields after 'verify'",
        ),
        (
            f"vip a verify {H} 1 2 3",
            "verify takes <prev_hash> <nonce> <difficulty>; got 4 fields after 'verify'",
        ),
        ("vip a", "expected <tier> <client> <op> ...; got 2 fields"),
        ("vip", "expected <tier> <client> <op> ...; got 1 field"),
        (f"vip a mine {H} 1 0", "count must be >= 1, got 0"),
        (f"vip a mine {H} 1 1001", "count 1001 is above the maximum 1000"),
        (f"vip a mine {H} 1 {'9' * 41}", f"count {'9' * 39}… is too large"),
    ],
)
def test_single_error_messages(line: str, message: str) -> None:
    assert one_error(line) == message


def test_many_leading_zeros_are_still_small() -> None:
    assert parse_text(f"vip a mine {H} 1 {'0' * 40}1", "f")[0].count == 1


@pytest.mark.parametrize("token", ["+5", "-1", "1e3", "0x10", "٣", "²", "1.0", "1_0", "five"])
def test_numbers_must_be_plain_ascii_digits(token: str) -> None:
    expected = f"difficulty must be a whole number in plain digits, got {token!r}"
    assert one_error(f"vip a mine {H} {token}") == expected
    assert one_error(f"vip a verify {H} {token} 1") == expected.replace("difficulty", "nonce")
    assert one_error(f"vip a mine {H} 1 {token}") == expected.replace("difficulty", "count")


def test_control_character_in_client() -> None:
    assert one_error(f"vip a\x00b mine {H} 1") == (
        "client must not contain whitespace or control characters"
    )


def test_every_bad_line_reported_in_order_with_line_numbers() -> None:
    text = "\n".join(
        [
            "# header",  # 1
            f"vip ana mine {H} 4",  # 2 ok
            f"gold ana mine {H} 4",  # 3
            "",  # 4
            f"vip ana mine {H} 40",  # 5
            f"alto bob verify {H} x 1",  # 6
            f"comun eve mine {H} 1",  # 7 ok
            f"vip {'x' * 65} mine {H[:10]} 99 0",  # 8: four problems
        ]
    )
    assert errors_of(text) == [
        (3, "unknown tier 'gold': expected one of vip, alto, comun"),
        (5, "difficulty 40 is above the maximum 32"),
        (6, "nonce must be a whole number in plain digits, got 'x'"),
        (8, "client must be 1-64 characters, got 65"),
        (8, "prev_hash must be 64 hexadecimal digits, got 10"),
        (8, "difficulty 99 is above the maximum 32"),
        (8, "count must be >= 1, got 0"),
    ]


def test_tier_and_client_problems_kept_with_op_problem() -> None:
    assert errors_of(f"gold {'y' * 70} fly {H}") == [
        (1, "unknown tier 'gold': expected one of vip, alto, comun"),
        (1, "client must be 1-64 characters, got 70"),
        (1, "unknown op 'fly': expected mine or verify"),
    ]


def test_error_str_has_file_line_prefix_and_text() -> None:
    text = f"# c\r\nvip ana mine {H} 40\r\n"
    with pytest.raises(InstructionError) as info:
        parse_text(text, "instrucciones.txt")
    assert str(info.value) == (
        f"instrucciones.txt:2: difficulty 40 is above the maximum 32 (vip ana mine {H} 40)"
    )
    (error,) = info.value.errors
    assert error == LineError(
        "instrucciones.txt", 2, "difficulty 40 is above the maximum 32", f"vip ana mine {H} 40"
    )


def test_instruction_error_str_joins_lines() -> None:
    with pytest.raises(InstructionError) as info:
        parse_text(f"vip a mine {H} 99\nvip b mine {H} 98\n", "-")
    assert str(info.value).splitlines() == [
        f"-:1: difficulty 99 is above the maximum 32 (vip a mine {H} 99)",
        f"-:2: difficulty 98 is above the maximum 32 (vip b mine {H} 98)",
    ]
    assert isinstance(info.value, ValueError)


def test_long_lines_are_truncated_in_errors() -> None:
    line = f"vip a mine {H} 1 " + "9" * 500
    with pytest.raises(InstructionError) as info:
        parse_text(line, "f")
    (error,) = info.value.errors
    assert len(error.text) == 120
    assert error.text.endswith("…")
    assert line.startswith(error.text[:-1])
    assert len(str(error)) < 250


def test_long_tokens_are_clipped_in_messages() -> None:
    message = one_error(f"{'g' * 500} a mine {H} 1")
    assert message.startswith("unknown tier 'ggg")
    assert len(message) < 120


def test_control_characters_escaped_in_str() -> None:
    with pytest.raises(InstructionError) as info:
        parse_text(f"vip a\x1bb mine {H} 1", "f")
    assert "\x1b" not in str(info.value)
    assert "\\x1b" in str(info.value)


def test_instruction_error_survives_pickle() -> None:
    with pytest.raises(InstructionError) as info:
        parse_text("vip a\nvip b\n", "f")
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.errors == info.value.errors
    assert str(copy) == str(info.value)


# --------------------------------------------------------------------------- jsonl


def test_jsonl_happy_path() -> None:
    text = "\n".join(
        [
            obj(),
            "",
            obj(tier="COMÚN", client="José", op="verify", prev=H_UPPER, nonce=2**64 - 1),
            obj(tier="alto", count=1000, difficulty=30),
        ]
    )
    assert parse_jsonl(text + "\r\n", "in.jsonl") == [
        Request(Tier.VIP, "ana", "mine", H, 5, 1, None, "in.jsonl", 1),
        Request(Tier.COMUN, "José", "verify", H, 5, 1, 2**64 - 1, "in.jsonl", 3),
        Request(Tier.ALTO, "ana", "mine", H, 30, 1000, None, "in.jsonl", 4),
    ]


def test_jsonl_bom() -> None:
    assert len(parse_jsonl("\ufeff" + obj(), "f.jsonl")) == 1


def test_jsonl_syntax_and_shape_errors() -> None:
    assert json_errors(obj(), "{bad", "[1, 2]", '"vip"', "null", obj()) == [
        (2, "invalid JSON: Expecting property name enclosed in double quotes at column 2"),
        (3, "expected a JSON object, got array [1, 2]"),
        (4, 'expected a JSON object, got string "vip"'),
        (5, "expected a JSON object, got null null"),
    ]


def test_jsonl_key_errors() -> None:
    assert json_errors(
        obj(colour="red"),
        obj(tier=_DROP),
        obj(op=_DROP),
        obj(op="verify"),
        obj(op="verify", nonce=1, count=2),
        obj(nonce=1),
        obj(op="fly"),
        '{"op": "mine", "op": "verify"}',
    ) == [
        (1, "unknown key 'colour'"),
        (2, "missing key 'tier'"),
        (3, "missing key 'op'"),
        (4, "missing key 'nonce'"),
        (5, "verify does not take 'count'"),
        (6, "mine does not take 'nonce'"),
        (7, 'unknown op "fly": expected mine or verify'),
        (8, "invalid JSON: duplicate key 'op'"),
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(True, "boolean true"), (5.0, "number 5.0"), ("5", 'string "5"'), (None, "null null")],
)
def test_jsonl_numbers_must_be_integers(value: object, shown: str) -> None:
    assert json_errors(obj(difficulty=value)) == [
        (1, f"difficulty must be a JSON integer, got {shown}")
    ]
    assert json_errors(obj(count=value)) == [(1, f"count must be a JSON integer, got {shown}")]
    assert json_errors(obj(op="verify", nonce=value)) == [
        (1, f"nonce must be a JSON integer, got {shown}")
    ]


def test_jsonl_field_validation_matches_text() -> None:
    assert json_errors(
        obj(tier="gold"),
        obj(tier=1),
        obj(client=""),
        obj(client="a b"),
        obj(prev=H[:63]),
        obj(difficulty=33),
        obj(difficulty=-1),
        obj(count=0),
        obj(count=1001),
        obj(op="verify", nonce=-1),
        obj(op="verify", nonce=2**64),
    ) == [
        (1, "unknown tier 'gold': expected one of vip, alto, comun"),
        (2, "tier must be a JSON string, got integer 1"),
        (3, "client must be 1-64 characters, got 0"),
        (4, "client must not contain whitespace or control characters"),
        (5, "prev must be 64 hexadecimal digits, got 63"),
        (6, "difficulty 33 is above the maximum 32"),
        (7, "difficulty must be >= 0, got -1"),
        (8, "count must be >= 1, got 0"),
        (9, "count 1001 is above the maximum 1000"),
        (10, "nonce must be >= 0, got -1"),
        (11, f"nonce {2**64} is too large: it must be below 2**64"),
    ]


def test_jsonl_several_problems_on_one_line() -> None:
    line = obj(tier=True, client="x" * 65, difficulty=1.5, extra=1)
    assert json_errors(line) == [(1, "unknown key 'extra'")]
    line = obj(tier=True, client="x" * 65, difficulty=1.5)
    assert json_errors(line) == [
        (1, "tier must be a JSON string, got boolean true"),
        (1, "client must be 1-64 characters, got 65"),
        (1, "difficulty must be a JSON integer, got number 1.5"),
    ]


def test_jsonl_big_integers_are_clipped_in_messages() -> None:
    big = 10**100
    assert json_errors(obj(op="verify", nonce=big)) == [
        (1, f"nonce {str(big)[:39]}… is too large: it must be below 2**64")
    ]


def test_jsonl_huge_integer() -> None:
    assert json_errors("1" * 5000) == [(1, "invalid JSON: integer too long")]


def test_jsonl_max_difficulty_parameter() -> None:
    assert (
        parse_jsonl(obj(difficulty=50), "f", max_difficulty=50, max_work=2**50)[0].difficulty == 50
    )


# --------------------------------------------------------------------------- parse()


def test_parse_auto_picks_format_by_suffix() -> None:
    assert parse(obj(), "x.jsonl")[0].source == "x.jsonl"
    assert parse(f"vip a mine {H} 1", "x.txt")[0].client == "a"
    assert parse(f"vip a mine {H} 1", "-")[0].source == "-"
    with pytest.raises(InstructionError):
        parse(f"vip a mine {H} 1", "x.jsonl")


def test_parse_auto_reads_json_lines_by_their_first_line() -> None:
    """JSON Lines on stdin or under any name are read as such (issue 11, item 6)."""
    text = "\n  \n" + obj() + "\n" + obj(client="bob") + "\n"
    assert [r.client for r in parse(text, "<stdin>")] == ["ana", "bob"]
    assert [r.line for r in parse("\ufeff" + text, "requests.data")] == [3, 4]
    assert detect_format("# comment\n" + obj(), "f") == "text"  # JSON Lines have no comments
    assert detect_format("", "<stdin>") == detect_format(f"vip a mine {H} 1", "f") == "text"
    assert detect_format(f"vip a mine {H} 1", "f.jsonl") == "jsonl"


def test_json_forced_through_the_text_parser_gets_one_hint_per_line() -> None:
    text = obj().replace(",", ", ") + "\n" + obj(client="bob").replace(",", ", ")
    with pytest.raises(InstructionError) as info:
        parse(text, "<stdin>", fmt="text")
    assert [(e.line, e.message) for e in info.value.errors] == [
        (1, "looks like JSON Lines: use --input-format jsonl (or auto)"),
        (2, "looks like JSON Lines: use --input-format jsonl (or auto)"),
    ]


def test_text_forced_through_the_json_parser_gets_a_hint() -> None:
    assert json_errors(f"vip a mine {H} 1", "hello") == [
        (1, "looks like the text format: use --input-format text (or auto)"),
        (2, "invalid JSON: Expecting value at column 1"),
    ]


def test_parse_explicit_format() -> None:
    assert parse(obj(), "<stdin>", fmt="jsonl")[0].client == "ana"
    assert parse(f"vip a mine {H} 40", "x.jsonl", fmt="text", max_difficulty=40)[0].difficulty == 40
    with pytest.raises(ValueError, match="unknown instruction format"):
        parse("", "f", fmt="yaml")


# --------------------------------------------------------------------------- decode_source


def test_decode_source_strips_bom_and_keeps_crlf() -> None:
    data = "\ufeffvip José\r\n".encode()
    assert decode_source(data, "f") == "vip José\r\n"


def test_decode_source_reports_every_bad_line() -> None:
    data = b"ok\n\xff\xfe tail\nfine \xc3\xa9\nbad \xc3(\n"
    with pytest.raises(InstructionError) as info:
        decode_source(data, "in.txt")
    errors = info.value.errors
    assert [(e.source, e.line, e.message) for e in errors] == [
        ("in.txt", 2, "invalid UTF-8: byte 0xff at byte column 1"),
        ("in.txt", 4, "invalid UTF-8: byte 0xc3 at byte column 5"),
    ]
    assert errors[1].text == "bad \ufffd("
    assert str(info.value).startswith("in.txt:2: invalid UTF-8")


def test_decode_source_line_numbers_after_bom() -> None:
    with pytest.raises(InstructionError) as info:
        decode_source(b"\xef\xbb\xbf\n\n\x80\r\n", "f")
    assert [(e.line, e.text) for e in info.value.errors] == [(3, "\ufffd")]
