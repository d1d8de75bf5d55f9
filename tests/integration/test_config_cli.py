"""`blpopq config` and `--log-format json`, through the installed commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

from blpopq.embedded import RedisServer

from ..helpers import cli_env, run_cli


def test_config_prints_values_with_their_source_and_masks_the_password(tmp_path: Path) -> None:
    """One place shows the effective configuration; a secret never reaches the screen."""
    path = tmp_path / "blpopq.toml"
    path.write_text('workers = 3\nredis_url = "redis://:s3cret@db.internal:6379/0"\n')
    done = run_cli(
        "blpopq", "config", "--config", str(path), "--grace", "9",
        env=cli_env(BLPOPQ_LEASE="7"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()}
    assert rows["workers"][1:] == ["3", "file"]
    assert rows["grace"][1:] == ["9.0", "flag"]
    assert rows["lease"][1:] == ["7.0", "env", "BLPOPQ_LEASE"]
    assert rows["block_timeout"][1:] == ["2.0", "default"]
    assert "s3cret" not in done.stdout and "***" in rows["redis_url"][1]
    assert rows["log_level"][1:] == ["INFO", "default"]
    assert rows["log_format"][1:] == ["human", "default"]
    assert rows["config"][1:] == [str(path), "flag"]


def test_config_shows_the_resolved_worker_count_and_the_logging_options() -> None:
    """Issue 11, item 9: never `workers 0`; log level and format with their sources."""
    done = run_cli(
        "blpopq", "config", "--log-format", "json", env=cli_env(BLPOPQ_LOG_LEVEL="debug")
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()}
    assert rows["workers"][1] == str(len(os.sched_getaffinity(0)))
    assert rows["workers"][2] == "default"
    assert rows["log_level"][1:] == ["DEBUG", "env", "BLPOPQ_LOG_LEVEL"]
    assert rows["log_format"][1:] == ["json", "flag"]
    bad = run_cli("blpopq", "config", env=cli_env(BLPOPQ_LOG_FORMAT="xml"))
    assert bad.returncode == 2 and "BLPOPQ_LOG_FORMAT='xml' is not one of human, json" in bad.stderr


def test_a_bad_config_file_exits_2_naming_every_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("workerz = 3\ngrace = true\n")
    done = run_cli("blpopq", "config", "--config", str(path))
    assert done.returncode == 2
    assert f"{path}: unknown setting 'workerz'" in done.stderr and "Traceback" not in done.stderr
    assert f"{path}: grace = true is not a valid float" in done.stderr


def test_json_log_format_gives_one_json_object_per_stderr_line(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """Log shippers get parseable lines, bad-task dead letters carrying task fields."""
    path = tmp_path / "f.txt"
    path.write_text("vip ana mine " + "ab" * 32 + " 1\n")
    done = run_cli(
        "blpopq", "run", str(path), "--workers", "1", "--log-format", "json",
        "--redis-url", redis_server.url, "--namespace", namespace,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert lines, done.stderr
    bodies = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "pid", "message"} <= set(b) for b in bodies)
    assert any("ready" in b["message"] for b in bodies)
