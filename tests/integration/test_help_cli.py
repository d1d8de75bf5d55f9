"""What `--help` tells a newcomer, and the console scripts README promises, through the
installed commands (issue 11, item 11). No Redis is needed except by `blpopq-run`, which
embeds its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..helpers import BIN, cli_env, prev_hash, run_cli

COMMANDS = ("produce", "daemon", "run", "collect", "status", "cancel", "dead", "config")


def help_of(*command: str) -> str:
    done = run_cli("blpopq", *command, "--help", env=cli_env(COLUMNS="80"))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_top_level_help_says_what_blpopq_is_and_how_to_start() -> None:
    text = help_of()
    assert "priority task queue on Redis lists" in text
    assert "Command-line entry points" not in text  # not a code comment any more
    assert "blpopq run examples/instrucciones.txt" in text and "exit status:" in text
    for command in COMMANDS:
        assert f"\n    {command} " in text, command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description_and_examples_within_80_columns(command: str) -> None:
    text = help_of(command)
    usage, description = text.split("\n\n")[:2]
    assert usage.startswith(f"usage: blpopq {command}")
    assert len(description.split()) > 10, text  # a sentence or more, not a bare summary
    assert "\nexamples:\n  blpopq " + command in text
    assert max(len(line) for line in text.splitlines()) <= 80, text


@pytest.mark.parametrize("action", ["list", "show", "requeue", "purge"])
def test_each_dead_action_describes_itself(action: str) -> None:
    assert help_of("dead", action).split("\n\n")[1].strip().endswith(".")


def test_produce_help_describes_the_file_format() -> None:
    text = help_of("produce")
    assert "<tier> <client> mine   <prev_hash> <difficulty> [<count>]" in text
    assert "<tier> <client> verify <prev_hash> <nonce> <difficulty>" in text
    assert "JSON Lines" in text and "vip, alto or comun" in text


def test_defaults_and_environment_variables_are_shown() -> None:
    text = " ".join(help_of("daemon").split())  # undo argparse's wrapping
    for shown in (
        "(env BLPOPQ_GRACE; default 30)",
        "(env BLPOPQ_MAX_ATTEMPTS; default 2**36)",
        "(env BLPOPQ_BLOCK_TIMEOUT; default 2)",
        "(env BLPOPQ_NAMESPACE; default blpopq)",
        "(env BLPOPQ_LOG_LEVEL; default INFO)",
        "(env BLPOPQ_KEEP_RESULTS; default 0, keep all)",
        "default one per CPU this process may use,",
    ):
        assert shown in text, shown
    assert "(default table)" in " ".join(help_of("collect").split())
    assert "(default auto:" in " ".join(help_of("run").split())


def test_blpopq_run_is_installed_as_readme_promises(namespace: str, tmp_path: Path) -> None:
    """README: `blpopq produce|daemon|collect|run` is the same as the blpopq-* commands."""
    assert (BIN / "blpopq-run").exists()
    path = tmp_path / "one.txt"
    path.write_text(f"vip ana mine {prev_hash(1)} 1\n")
    done = run_cli("blpopq-run", str(path), "--workers", "1", "--namespace", namespace)
    assert done.returncode == 0, done.stderr
    assert "enqueued 1 request (vip=1 alto=0 comun=0)" in done.stderr  # not "1 requests"
    assert "ready: 1 worker waiting" in done.stderr  # not "1 workers"
