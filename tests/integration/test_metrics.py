"""--metrics-port: one Prometheus endpoint for the whole worker pool.

The end-to-end test runs the installed ``blpopq-daemon`` with two workers against a private
redis-server, produces tasks of every tier, op and outcome (ok, valid, invalid, exhausted, a
dead letter), waits for them with ``blpopq-collect --expect``, then scrapes the endpoint until
the counters add up (workers write them as tasks finish: polled with a deadline, no sleeps)
and checks every figure against what was produced. The other tests cover the pieces that need
no daemon: the no-op recorder, the recording of one result, the optional library's absence.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from blpopq import metrics
from blpopq.cli import build_parser
from blpopq.config import Settings, build_settings
from blpopq.embedded import RedisServer, free_port
from blpopq.errors import ConfigError
from blpopq.outcomes import Result
from blpopq.pow import mine, verify
from blpopq.protocol import Keyspace
from blpopq.tiers import TIERS, Tier

from ..helpers import BIN, Daemon, cli_env, prev_hash, run_cli, wait_until

MAX_ATTEMPTS = 500
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# --- helpers --------------------------------------------------------------------------------


def target(server: RedisServer, namespace: str) -> list[str]:
    return ["--redis-url", server.url, "--namespace", namespace]


def scrape(port: int) -> Samples:
    """Every sample of the endpoint: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def by(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples called ``name``, keyed by the values of ``labels`` (in that order)."""
    found: dict[tuple[str, ...], float] = {}
    for (sample, pairs), value in samples.items():
        if sample == name:
            found[tuple(dict(pairs)[label] for label in labels)] = value
    return found


def first_invalid_nonce(prev: str, difficulty: int) -> int:
    return next(n for n in range(1000) if not verify(prev, n, difficulty)[0])


def requests() -> tuple[list[str], list[tuple[str, str, str, int]]]:
    """Instruction lines, and the (tier, op, status, attempts) each must end with."""
    valid_nonce = mine(prev_hash(3), 6).blocks[0].nonce
    invalid_nonce = first_invalid_nonce(prev_hash(4), 12)
    mines = [("vip", "ana", 1, 4, 1), ("vip", "bea", 2, 3, 2), ("comun", "eva", 5, 30, 1),
             ("comun", "fay", 6, 1, 1)]  # fmt: skip
    lines, expected = [], []
    for tier, who, n, difficulty, count in mines:
        lines.append(f"{tier} {who} mine {prev_hash(n)} {difficulty} {count}")
        outcome = mine(prev_hash(n), difficulty, count, max_attempts=MAX_ATTEMPTS)
        expected.append((tier, "mine", outcome.status, outcome.attempts))
    lines.append(f"alto cai verify {prev_hash(3)} {valid_nonce} 6")
    lines.append(f"alto dan verify {prev_hash(4)} {invalid_nonce} 12")
    expected += [("alto", "verify", "valid", 1), ("alto", "verify", "invalid", 1)]
    statuses = sorted(status for _, _, status, _ in expected)
    assert statuses == ["exhausted", "invalid", "ok", "ok", "ok", "valid"], expected
    return lines, expected


def produce(server: RedisServer, namespace: str, path: Path) -> None:
    done = run_cli("blpopq-produce", str(path), *target(server, namespace))
    assert done.returncode == 0, done.stderr


def collect(
    server: RedisServer, namespace: str, expect: int, daemon: Daemon
) -> list[dict[str, Any]]:
    args = ["--expect", str(expect), "--timeout", "30", "--format", "jsonl"]
    done = run_cli("blpopq-collect", *args, *target(server, namespace))
    assert done.returncode == 0, f"{done.stderr}\ndaemon log:\n{daemon.log}"
    return [json.loads(line) for line in done.stdout.splitlines()]


# --- the endpoint of a real pool ---------------------------------------------------------------


def test_one_endpoint_counts_the_work_of_every_worker(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: with --metrics-port, one endpoint on 127.0.0.1 reports what all workers did,
    by tier, op and status; the queue depths Redis holds at scrape time; the counts survive a
    worker's death; and the daemon removes its private metrics directory when it stops."""
    lines, expected = requests()
    path = tmp_path / "tasks.txt"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    client.rpush(Keyspace(namespace).tier(Tier.ALTO), "this is {not json")  # a dead letter
    produce(redis_server, namespace, path)
    port = free_port()

    with Daemon(
        "--workers", "2", "--block-timeout", "0.5", "--grace", "5",
        "--max-attempts", str(MAX_ATTEMPTS), "--metrics-port", str(port),
        *target(redis_server, namespace),
    ) as daemon:  # fmt: skip
        directory = Path(daemon.wait_for_line(r"worker files in (\S+)\)").group(1))
        daemon.wait_ready()
        results = collect(redis_server, namespace, len(expected) + 1, daemon)
        assert sorted((r["tier"], r["op"], r["status"]) for r in results) == sorted(
            (tier, op, status) for tier, op, status, _ in expected
        )

        completed = Counter((tier, op, status) for tier, op, status, _ in expected)
        last: list[Samples] = []

        def counted_everything() -> bool:
            last[:] = [scrape(port)]
            return by(last[0], "blpopq_tasks_completed_total", "tier", "op", "status") == {
                key: float(n) for key, n in completed.items()
            }

        wait_until(counted_everything, "completed counters for every result", daemon)
        samples = last[0]

        taken = Counter((tier, op) for tier, op, _, _ in expected)
        taken[("alto", "unknown")] += 1  # the dead letter
        assert by(samples, "blpopq_tasks_taken_total", "tier", "op") == {
            key: float(n) for key, n in taken.items()
        }
        assert by(samples, "blpopq_tasks_failed_total", "tier", "op", "reason") == {
            ("comun", "mine", "exhausted"): 1.0,
            ("alto", "unknown", "dead_letter"): 1.0,
        }
        attempts: Counter[tuple[str, str]] = Counter()
        for tier, op, _, n in expected:
            attempts[(tier, op)] += n
        assert attempts[("comun", "mine")] >= MAX_ATTEMPTS  # the exhausted task's share
        assert by(samples, "blpopq_hash_attempts_total", "tier", "op") == {
            key: float(n) for key, n in attempts.items()
        }

        per_tier = Counter(tier for tier, _, _, _ in expected)
        assert by(samples, "blpopq_task_wait_seconds_count", "tier") == {
            (tier,): float(n) for tier, n in per_tier.items()
        }
        wait_infinite = by(samples, "blpopq_task_wait_seconds_bucket", "tier", "le")
        assert {t: wait_infinite[(t, "+Inf")] for t in per_tier} == {
            t: float(n) for t, n in per_tier.items()
        }
        assert all(v >= 0 for v in by(samples, "blpopq_task_wait_seconds_sum", "tier").values())
        assert by(samples, "blpopq_task_run_seconds_count", "tier", "op") == {
            key: float(n) for key, n in Counter((t, o) for t, o, _, _ in expected).items()
        }

        assert by(samples, "blpopq_queue_depth", "tier") == {(t.value,): 0.0 for t in TIERS}
        assert by(samples, "blpopq_redis_up") == {(): 1.0}
        assert by(samples, "blpopq_workers_busy") == {(): 0.0}

        # A worker killed outright: its counts stay, its live gauge is forgotten, and the
        # worker started in its place adds to the same series.
        victim = daemon.worker_pids[0]
        assert (directory / f"gauge_livesum_{victim}.db").exists()
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(daemon.worker_pids) == 3, "a replacement worker", daemon)
        assert not (directory / f"gauge_livesum_{victim}.db").exists()
        after = scrape(port)
        for name in ("blpopq_tasks_taken_total", "blpopq_tasks_completed_total"):
            assert by(after, name, "tier", "op") == by(samples, name, "tier", "op"), name

        more = tmp_path / "more.txt"
        more.write_text(f"comun gus mine {prev_hash(9)} 1\n", encoding="utf-8")
        produce(redis_server, namespace, more)
        collect(redis_server, namespace, len(expected) + 2, daemon)
        taken[("comun", "mine")] += 1

        def counted_the_new_task() -> bool:
            return by(scrape(port), "blpopq_tasks_taken_total", "tier", "op") == taken

        wait_until(counted_the_new_task, "the new task counted", daemon)
        assert daemon.stop() == 0, daemon.log

    assert not directory.exists(), "the daemon left its metrics directory behind"
    with pytest.raises(urllib.error.URLError):
        scrape(port)


def test_a_busy_metrics_port_is_a_clear_configuration_error(
    redis_server: RedisServer, namespace: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(
            "blpopq-daemon", "--workers", "1", "--metrics-port", str(port),
            *target(redis_server, namespace), timeout=60,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert "worker 0 started" not in done.stderr


# --- pieces ---------------------------------------------------------------------------------


def test_without_a_metrics_port_nothing_records_and_the_library_is_not_imported() -> None:
    """Core blpopq (worker, supervisor, CLI) runs without prometheus_client loaded."""
    code = """
import sys
from blpopq import cli, metrics, supervisor, worker
from blpopq.config import Settings
m = metrics.worker_metrics(Settings())
assert m is metrics.NO_METRICS
assert metrics.worker_metrics(Settings(metrics_port=9100)) is metrics.NO_METRICS  # no pool dir
m.taken("vip", "mine")
with m.busy():
    pass
m.dead_lettered("alto")
endpoint = metrics.start_endpoint(Settings())
endpoint.worker_exited(1)
endpoint.close()
assert "prometheus_client" not in sys.modules, "imported without --metrics-port"
"""
    env = {k: v for k, v in cli_env().items() if k != metrics.MULTIPROC_ENV}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_no_op_metrics_accept_every_event() -> None:
    none = metrics.Metrics()
    result = sample_result("ok")
    assert none.taken("vip", "mine") is None
    with none.busy():
        assert none.finished(result) is None
    assert none.dead_lettered("comun") is None


def sample_result(status: str, attempts: int = 7) -> Result:
    return Result(
        position=1, id="b.1", batch="b", source="f.txt", line=1, tier="alto", client="c",
        op="mine", status=status, prev=prev_hash(1), difficulty=1, nonce=None, hash=None,
        blocks=(), attempts=attempts, worker="w:1", enqueued_at=100.0, started_at=102.5,
        finished_at=103.0,
    )  # fmt: skip


def test_a_result_is_recorded_under_its_tier_op_and_status() -> None:
    registry = CollectorRegistry()
    recorder = metrics.PrometheusMetrics(registry)
    recorder.taken("alto", "mine")
    with recorder.busy():
        assert registry.get_sample_value("blpopq_workers_busy") == 1.0
    recorder.finished(sample_result("exhausted", attempts=500))
    recorder.dead_lettered("vip")

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("blpopq_workers_busy") == 0.0
    assert value("blpopq_tasks_taken_total", tier="alto", op="mine") == 1.0
    assert value("blpopq_tasks_taken_total", tier="vip", op="unknown") == 1.0
    labels = {"tier": "alto", "op": "mine"}
    assert value("blpopq_tasks_completed_total", **labels, status="exhausted") == 1.0
    assert value("blpopq_tasks_failed_total", **labels, reason="exhausted") == 1.0
    assert value("blpopq_tasks_failed_total", tier="vip", op="unknown", reason="dead_letter") == 1
    assert value("blpopq_hash_attempts_total", **labels) == 500.0
    assert value("blpopq_task_wait_seconds_sum", tier="alto") == pytest.approx(2.5)
    assert value("blpopq_task_run_seconds_sum", **labels) == pytest.approx(0.5)
    assert value("blpopq_task_run_seconds_count", **labels) == 1.0


def test_a_missing_library_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["daemon", "--metrics-port", "9100"])
    assert exit_.value.code == 2
    assert "pip install 'blpopq[metrics]'" in capsys.readouterr().err
    # Set through BLPOPQ_METRICS_PORT instead of the flag: the supervisor refuses to start.
    with pytest.raises(ConfigError, match=r"pip install 'blpopq\[metrics\]'"):
        metrics.start_endpoint(Settings(metrics_port=9100))
    assert build_parser().parse_args(["daemon", "--metrics-port", "0"]).metrics_port == 0


def test_the_metrics_port_comes_from_flag_or_environment_and_is_checked() -> None:
    assert build_settings({}, {"BLPOPQ_METRICS_PORT": "9100"}).metrics_port == 9100
    flag_wins = build_settings({"metrics_port": 9200}, {"BLPOPQ_METRICS_PORT": "9100"})
    assert flag_wins.metrics_port == 9200
    with pytest.raises(ConfigError, match="metrics port"):
        build_settings({}, {"BLPOPQ_METRICS_PORT": "70000"})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["daemon", "--metrics-port", "-1"])


def test_the_daemon_help_documents_the_flag() -> None:
    done = subprocess.run(
        [str(BIN / "blpopq-daemon"), "--help"], capture_output=True, text=True, env=cli_env()
    )
    assert "--metrics-port" in done.stdout and "127.0.0.1" in done.stdout
