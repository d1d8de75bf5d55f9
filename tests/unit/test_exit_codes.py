"""README's exit-code table, errors.py and the systemd units tell one story."""

from __future__ import annotations

import re
from pathlib import Path

from blpopq import errors

ROOT = Path(__file__).resolve().parents[2]


def readme_table() -> dict[int, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("Exit codes, the same for every command") :]
    rows = re.findall(r"^\| (\d+) \| (.*) \| (.*) \|$", section.split("\n\n")[1], re.M)
    return {int(code): restart for code, _, restart in rows}


def test_every_exit_code_in_errors_is_in_the_readme_table_and_back() -> None:
    codes = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    assert set(readme_table()) == codes | {130}


def test_every_exception_maps_to_a_code_of_the_table() -> None:
    table = readme_table()
    classes = [c for c in vars(errors).values() if isinstance(c, type)]
    for cls in classes:
        if issubclass(cls, errors.BlpopqError):
            assert cls.exit_code in table, cls


def test_the_units_do_not_restart_on_exactly_the_codes_the_table_says() -> None:
    never = {code for code, restart in readme_table().items() if restart == "not restarted"}
    assert never == {errors.EXIT_BAD_INPUT, errors.EXIT_REDIS_REFUSED}
    for unit in ("blpopq-daemon.service", "blpopq-daemon@.service"):
        text = (ROOT / "systemd" / unit).read_text(encoding="utf-8")
        [line] = re.findall(r"^RestartPreventExitStatus=(.*)$", text, re.M)
        assert {int(code) for code in line.split()} == never, unit


def test_the_per_command_table_names_every_command_and_only_codes_of_the_table() -> None:
    from blpopq.cli.entry import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("Which codes each command can end with") :].split("\n\n")[1]
    rows = dict(re.findall(r"^\| (\w+) \| (.*) \|$", section, re.M))
    rows.pop("command")
    parser = build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    assert set(rows) == set(commands.choices)  # type: ignore[arg-type]
    known = set(readme_table())
    for command, codes in rows.items():
        listed = {int(code) for code in re.findall(r"(?<![\w`-])(\d+)(?![\w`])", codes)}
        assert 0 in listed and listed <= known, (command, listed)
