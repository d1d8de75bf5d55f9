"""The console scripts end to end, as real processes against a private redis-server.

Each test drives ``blpopq-produce`` / ``blpopq-daemon`` / ``blpopq-collect`` / ``blpopq run``
the way a user would and checks one promise of the product from the outside: one result per
request, correct proofs of work, the attention order, all-or-nothing produce, dead letters,
graceful and immediate stops, and clear failures when Redis is unreachable.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
import wcwidth

from blpopq.embedded import RedisServer, free_port
from blpopq.protocol import Keyspace
from blpopq.tiers import TIERS, Tier

from ..helpers import (
    BIN,
    SHARED_REDIS_PORT,
    Daemon,
    LineReader,
    cli_env,
    prev_hash,
    run_cli,
    wait_until,
)

RESULT_KEYS = (
    "position", "id", "batch", "source", "line", "tier", "client", "op", "status", "prev",
    "difficulty", "nonce", "hash", "blocks", "attempts", "worker", "enqueued_at", "started_at",
    "finished_at", "error",
)  # fmt: skip
SUMMARY = re.compile(
    r"^enqueued (\d+) requests? \(vip=(\d+) alto=(\d+) comun=(\d+)\) batch=(\S+)$", re.MULTILINE
)

#: prev_hash(27) at difficulty 22: the smallest qualifying nonce, found once offline with
#: blpopq.pow.search over [0, 12e6). About 6.6 M hashes: a few seconds of one worker here.
SLOW_PREV, SLOW_DIFFICULTY, SLOW_NONCE = prev_hash(27), 22, 6_613_048
#: prev_hash(7) at difficulty 28: no nonce below 150 M qualifies (checked offline), so this
#: task runs for a minute or more: it cannot finish while a test waits for a stop.
ENDLESS_PREV, ENDLESS_DIFFICULTY = prev_hash(7), 28


# --- helpers --------------------------------------------------------------------------------


def target(server: RedisServer, namespace: str) -> list[str]:
    return ["--redis-url", server.url, "--namespace", namespace]


def digest(prev: str, nonce: int) -> str:
    return hashlib.sha256(f"{prev}{nonce}".encode("ascii")).hexdigest()


def meets(hash_hex: str, difficulty: int) -> bool:
    return int(hash_hex, 16) >> (256 - difficulty) == 0


def smallest_nonce(prev: str, difficulty: int) -> tuple[int, str]:
    nonce = 0
    while not meets(digest(prev, nonce), difficulty):
        nonce += 1
    return nonce, digest(prev, nonce)


def write(tmp_path: Path, name: str, lines: Sequence[str]) -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def produce(server: RedisServer, namespace: str, path: Path | str, *extra: str) -> str:
    """Run blpopq-produce, insist on success, return the batch id it printed."""
    done = run_cli("blpopq-produce", str(path), *extra, *target(server, namespace))
    assert done.returncode == 0, done.stderr
    match = SUMMARY.search(done.stdout)
    assert match, done.stdout
    return match.group(5)


def collect_jsonl(
    server: RedisServer,
    namespace: str,
    expect: int,
    batch: str | None = None,
    daemon: Daemon | None = None,
) -> list[dict[str, Any]]:
    """blpopq-collect --expect N --format jsonl: the printed results, in printed order."""
    args = ["--expect", str(expect), "--timeout", "30", "--format", "jsonl"]
    args += ["--batch", batch] if batch else []
    done = run_cli("blpopq-collect", *args, *target(server, namespace))
    log = daemon.log if daemon else ""
    assert done.returncode == 0, f"{done.stderr}\ndaemon log:\n{log}"
    return [json.loads(line) for line in done.stdout.splitlines()]


def start_daemon(server: RedisServer, namespace: str, workers: int, grace: float = 5.0) -> Daemon:
    return Daemon(
        "--workers", str(workers), "--block-timeout", "0.5", "--grace", str(grace),
        *target(server, namespace),
    )  # fmt: skip


def tier_lengths(client: redis.Redis, namespace: str) -> dict[str, int]:
    keys = Keyspace(namespace)
    return {tier.value: int(client.llen(keys.tier(tier))) for tier in TIERS}


def mixed_file(count: int, difficulty: int) -> tuple[list[str], list[tuple[str, int]]]:
    """Interleaved tiers; also the expected attention order as (tier, line) pairs."""
    pattern = ["comun", "alto", "vip", "comun", "comun", "alto", "vip", "alto", "comun", "vip"]
    lines = ["# mixed tiers, interleaved on purpose"]
    for n in range(count):
        lines.append(f"{pattern[n % len(pattern)]} c{n} mine {prev_hash(n)} {difficulty}")
    numbered = [(line.split()[0], number) for number, line in enumerate(lines, start=1)][1:]
    expected = [pair for tier in TIERS for pair in numbered if pair[0] == tier.value]
    return lines, expected


# --- 1. the whole pipeline --------------------------------------------------------------------


def test_every_request_gets_exactly_one_correct_result(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: produce -> daemon -> collect answers each request exactly once, and every
    answer is right: mined nonces are the smallest that meet the difficulty (recomputed here
    with hashlib, chained for count > 1) and verify says valid exactly when the hash meets it."""
    p = [prev_hash(n) for n in range(8)]
    valid_nonce = smallest_nonce(p[5], 8)[0]
    invalid_nonce = next(n for n in range(1000) if not meets(digest(p[6], n), 8))
    lines = [
        "# tier client op ...",
        f"comun ana mine {p[0]} 0",
        f"vip bob mine {p[1]} 1",
        "",
        f"alto cai mine {p[2]} 4  # trailing comment",
        f"vip dan mine {p[3]} 8",
        f"comun eva mine {p[4]} 6 3",
        f"alto fay verify {p[5]} {valid_nonce} 8",
        f"comun gus verify {p[6]} {invalid_nonce} 8",
        f"vip hal verify {p[7]} 12345 0",
        f"alto ivy mine {p[0].upper()} 5 2",
    ]
    path = write(tmp_path, "requests.txt", lines)
    requests = {
        n: line.split("#")[0].split() for n, line in enumerate(lines, 1) if line[:1].isalpha()
    }
    batch = produce(redis_server, namespace, path)

    with start_daemon(redis_server, namespace, workers=2) as daemon:
        daemon.wait_ready()
        results = collect_jsonl(redis_server, namespace, len(requests), batch, daemon)
        assert daemon.stop() == 0, daemon.log

    assert client.llen(Keyspace(namespace).results) == len(requests), "a duplicate result"
    assert sorted(r["line"] for r in results) == sorted(requests)
    for result in results:
        assert tuple(result)[: len(RESULT_KEYS)] == RESULT_KEYS
        tier, who, op, prev, *args = requests[result["line"]]
        assert (result["batch"], result["source"]) == (batch, str(path))
        assert (result["tier"], result["client"], result["op"]) == (tier, who, op)
        assert result["prev"] == prev.lower()
        if op == "mine":
            difficulty, count = int(args[0]), int(args[1]) if args[1:] else 1
            assert result["status"] == "ok", result
            assert len(result["blocks"]) == count
            current = prev.lower()
            for block in result["blocks"]:
                assert (block["nonce"], block["hash"]) == smallest_nonce(current, difficulty)
                current = block["hash"]
            last = result["blocks"][-1]
            assert (result["nonce"], result["hash"]) == (last["nonce"], last["hash"])
        else:
            nonce, difficulty = int(args[0]), int(args[1])
            expected_hash = digest(prev, nonce)
            assert result["status"] == ("valid" if meets(expected_hash, difficulty) else "invalid")
            assert (result["nonce"], result["hash"]) == (nonce, expected_hash)
    by_client = {r["client"]: r["status"] for r in results}
    assert (by_client["fay"], by_client["gus"], by_client["hal"]) == ("valid", "invalid", "valid")


# --- 2, 3. the attention order ----------------------------------------------------------------


def test_one_worker_serves_exactly_in_priority_then_file_order(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """Guarantee: with one worker and the queue filled first, the attention order is every vip
    in file order, then every alto in file order, then every comun in file order."""
    lines, expected = mixed_file(30, difficulty=4)
    batch = produce(redis_server, namespace, write(tmp_path, "mixed.txt", lines))

    with start_daemon(redis_server, namespace, workers=1) as daemon:
        daemon.wait_ready()
        results = collect_jsonl(redis_server, namespace, len(expected), batch, daemon)
        assert daemon.stop() == 0, daemon.log

    ordered = sorted(results, key=lambda r: r["position"])
    assert [(r["tier"], r["line"]) for r in ordered] == expected
    assert results == ordered, "collect must print in attention order"
    assert all(r["status"] == "ok" for r in results)


def test_two_workers_serve_at_most_one_place_from_priority_order(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """Guarantee: with N workers a request is served at most N-1 places away from its place
    in the priority order (vip, alto, comun; file order within a tier)."""
    workers = 2
    lines, expected = mixed_file(60, difficulty=6)
    batch = produce(redis_server, namespace, write(tmp_path, "mixed.txt", lines))

    with start_daemon(redis_server, namespace, workers=workers) as daemon:
        daemon.wait_ready()
        results = collect_jsonl(redis_server, namespace, len(expected), batch, daemon)
        assert daemon.stop() == 0, daemon.log

    positions = [r["position"] for r in results]
    assert positions == sorted(positions) and len(set(positions)) == len(expected)
    printed = [(r["tier"], r["line"]) for r in results]
    assert sorted(printed) == sorted(expected), "every request exactly once"
    displacement = {pair: abs(printed.index(pair) - index) for index, pair in enumerate(expected)}
    worst = max(displacement.values())
    assert worst <= workers - 1, (worst, printed)


# --- 4. a bad file enqueues nothing -----------------------------------------------------------


def test_bad_file_reports_every_bad_line_and_enqueues_nothing(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: a file with bad lines is refused whole (exit 2, nothing enqueued), and every
    bad line is reported as FILE:LINE: so the user fixes them all in one go."""
    lines = [
        f"vip ana mine {prev_hash(1)} 3",
        f"alto bob mine {prev_hash(2)} 2",
        "vip cai mine not-a-hash 3",
        f"comun dan verify {prev_hash(3)} 7 1",
        f"gold eva mine {prev_hash(4)} 2",
        f"comun fay mine {prev_hash(5)} 1",
    ]
    path = write(tmp_path, "bad.txt", lines)

    done = run_cli("blpopq-produce", str(path), *target(redis_server, namespace))

    assert done.returncode == 2, (done.stdout, done.stderr)
    reported = sorted({int(n) for n in re.findall(rf"{re.escape(str(path))}:(\d+):", done.stderr)})
    assert reported == [3, 5], done.stderr
    assert "Traceback" not in done.stderr
    assert "enqueued" not in done.stdout
    assert tier_lengths(client, namespace) == {"vip": 0, "alto": 0, "comun": 0}


# --- 5. bad tasks in Redis become dead letters ------------------------------------------------


def test_bad_tasks_in_redis_are_dead_lettered_and_the_daemon_keeps_serving(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: a malformed task found in Redis becomes a dead letter (with its reason and
    the raw task) instead of crashing a worker or blocking the queue."""
    keys = Keyspace(namespace)
    not_json = "this is {not json"
    bad_prev = json.dumps({
        "v": 1, "id": "bogus.1", "batch": "bogus", "tier": "alto", "client": "x", "op": "mine",
        "prev": "zz" * 32, "difficulty": 1, "count": 1, "nonce": None, "source": "f", "line": 1,
        "enqueued_at": 0.0,
    })  # fmt: skip
    client.rpush(keys.tier(Tier.ALTO), not_json, bad_prev)
    good = write(tmp_path, "good.txt", [f"alto ana mine {prev_hash(1)} 3"])
    batch = produce(redis_server, namespace, good)

    with start_daemon(redis_server, namespace, workers=2) as daemon:
        daemon.wait_ready()
        [result] = collect_jsonl(redis_server, namespace, 1, batch, daemon)
        assert (result["client"], result["status"]) == ("ana", "ok")
        wait_until(lambda: client.llen(keys.dead) >= 2, "two dead letters", daemon)
        letters = [json.loads(raw) for raw in client.lrange(keys.dead, 0, -1)]
        assert sorted(letter["raw"] for letter in letters) == sorted([not_json, bad_prev])
        for letter in letters:
            assert isinstance(letter["reason"], str) and letter["reason"], letter
            assert letter["tier"] == "alto"

        assert daemon.process.poll() is None, daemon.log
        later = produce(redis_server, namespace, write(tmp_path, "later.txt", [
            f"comun bob mine {prev_hash(2)} 2",
        ]))  # fmt: skip
        [second] = collect_jsonl(redis_server, namespace, 1, later, daemon)
        assert (second["client"], second["status"]) == ("bob", "ok")
        assert daemon.stop() == 0, daemon.log

    assert client.llen(keys.dead) == 2
    assert client.hlen(keys.inflight) == 0


# --- 6, 7. stopping -----------------------------------------------------------------------------


def test_sigterm_lets_the_running_task_finish_within_grace(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: on SIGTERM the daemon finishes the task it is running (within --grace),
    writes its result exactly once, leaves nothing in flight or queued, and exits 0."""
    keys = Keyspace(namespace)
    path = write(tmp_path, "slow.txt", [f"vip ana mine {SLOW_PREV} {SLOW_DIFFICULTY}"])

    with start_daemon(redis_server, namespace, workers=1, grace=30) as daemon:
        daemon.wait_ready()
        batch = produce(redis_server, namespace, path)
        wait_until(lambda: client.hlen(keys.inflight) == 1, "task in flight", daemon)
        signalled_at = time.time()
        daemon.signal(signal.SIGTERM)
        code = daemon.process.wait(60)

    assert code == 0, daemon.log
    results = [json.loads(raw) for raw in client.lrange(keys.results, 0, -1)]
    assert len(results) == 1, results
    [result] = results
    assert (result["batch"], result["status"]) == (batch, "ok")
    assert result["nonce"] == SLOW_NONCE
    assert result["hash"] == digest(SLOW_PREV, SLOW_NONCE)
    assert meets(result["hash"], SLOW_DIFFICULTY)
    # Precondition, not a timing claim: the task was still running when the signal came.
    assert result["finished_at"] >= signalled_at, (
        "task finished before SIGTERM: test proved nothing"
    )
    assert client.hlen(keys.inflight) == 0
    assert tier_lengths(client, namespace) == {"vip": 0, "alto": 0, "comun": 0}
    assert client.llen(keys.dead) == 0


def test_second_sigterm_puts_the_running_task_back_at_the_head_at_once(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: a second SIGTERM stops the daemon without waiting out the grace period: the
    running task gets no result and goes back to the HEAD of its tier, ahead of the rest."""
    keys = Keyspace(namespace)
    lines = [
        f"alto ana mine {ENDLESS_PREV} {ENDLESS_DIFFICULTY}",
        f"alto bob mine {prev_hash(2)} 1",
    ]
    produce(redis_server, namespace, write(tmp_path, "endless.txt", lines))
    queued = client.lrange(keys.tier(Tier.ALTO), 0, -1)
    assert [json.loads(raw)["client"] for raw in queued] == ["ana", "bob"]

    with start_daemon(redis_server, namespace, workers=1, grace=60) as daemon:
        daemon.wait_ready()
        wait_until(lambda: client.hlen(keys.inflight) == 1, "task in flight", daemon)
        [claimed] = client.hkeys(keys.inflight)
        assert claimed.decode() == json.loads(queued[0])["id"]
        daemon.signal(signal.SIGTERM)
        daemon.wait_for_line(r"stopping: finishing running tasks")
        daemon.signal(signal.SIGTERM)
        try:
            code = daemon.process.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"daemon ignored the second SIGTERM:\n{daemon.log}") from None

    assert code == 0, daemon.log
    assert client.llen(keys.results) == 0
    back = [json.loads(raw) for raw in client.lrange(keys.tier(Tier.ALTO), 0, -1)]
    assert [t["id"] for t in back] == [json.loads(raw)["id"] for raw in queued], "not at the head"
    # The stopped task keeps what it did: the nonces it already rejected are not redone.
    assert back[0]["progress"]["next_nonce"] == back[0]["progress"]["attempts"]
    assert {k: v for k, v in back[0].items() if k != "progress"} == json.loads(queued[0])
    assert client.hlen(keys.inflight) == 0
    assert client.llen(keys.dead) == 0


def test_idle_daemon_stops_on_sigterm_without_waiting_out_the_grace(
    redis_server: RedisServer, namespace: str
) -> None:
    """Guarantee: SIGTERM stops an idle daemon promptly: with nothing running there is nothing
    to wait for, so a long --grace must not delay the exit. Repeated, because the workers all
    exit at nearly the same moment and a stop loop that misses that moment shows it only
    sometimes."""
    for attempt in range(1, 9):
        with start_daemon(redis_server, namespace, workers=2, grace=60) as daemon:
            daemon.wait_ready()
            daemon.signal(signal.SIGTERM)
            try:
                code = daemon.process.wait(20)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"stop #{attempt}: idle daemon still running 20 s after SIGTERM "
                    f"(grace 60 s):\n{daemon.log}"
                ) from None
        assert code == 0, daemon.log


# --- 8. Redis unreachable ---------------------------------------------------------------------


def test_unreachable_redis_exits_3_with_one_clear_line_and_no_secret(
    namespace: str, tmp_path: Path
) -> None:
    """Guarantee: every command fails fast on an unreachable Redis with exit 3 and one clear
    line naming the URL (never a traceback), and never echoes the password in that URL."""
    port = free_port()  # bound and released: nothing listens there
    assert port != SHARED_REDIS_PORT
    path = write(tmp_path, "ok.txt", [f"vip ana mine {prev_hash(1)} 1"])
    commands = {
        "blpopq-produce": [str(path)],
        "blpopq-daemon": ["--workers", "1", "--block-timeout", "0.5"],
        "blpopq-collect": [],
    }
    for url in (f"redis://127.0.0.1:{port}", f"redis://:s3cret@127.0.0.1:{port}/0"):
        for command, args in commands.items():
            done = run_cli(command, *args, "--redis-url", url, "--namespace", namespace)
            where = f"{command} {url}: {done.stderr!r}"
            assert done.returncode == 3, where
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, where
            assert f"127.0.0.1:{port}" in lines[0], where
            assert "Traceback" not in done.stderr, where
            assert "s3cret" not in done.stderr + done.stdout, where


# --- 9. blpopq run with an embedded Redis -----------------------------------------------------


def run_embedded(
    path: Path, namespace: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = env or cli_env()
    assert "REDIS_URL" not in env
    return run_cli(
        "blpopq", "run", str(path), "--workers", "2", "--block-timeout", "0.5", "--grace", "5",
        "--namespace", namespace, *extra, env=env,
    )  # fmt: skip


def test_run_embeds_redis_and_prints_one_row_per_request(namespace: str, tmp_path: Path) -> None:
    """Guarantee: `blpopq run` without any Redis configured starts its own, serves the file
    and prints the attention order: one table row, or one JSON line, per request; exit 0."""
    lines = [
        "# like examples/: a few clients of each tier",
        f"comun ana mine {prev_hash(1)} 4",
        f"vip bob mine {prev_hash(2)} 5",
        f"alto cai mine {prev_hash(3)} 3 2",
        f"vip dan verify {prev_hash(4)} {smallest_nonce(prev_hash(4), 6)[0]} 6",
        f"comun eva mine {prev_hash(5)} 2",
    ]
    path = write(tmp_path, "small.txt", lines)

    table = run_embedded(path, namespace)
    assert table.returncode == 0, table.stderr
    header, *rows, note = table.stdout.splitlines()
    assert header.split()[:5] == ["position", "tier", "client", "op", "status"]
    assert len(rows) == 5, table.stdout
    assert note.endswith("left out to fit 80 columns)")  # piped: 80 columns
    assert sorted(row.split()[2] for row in rows) == ["ana", "bob", "cai", "dan", "eva"]

    jsonl = run_embedded(path, namespace, "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    results = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert sorted(r["line"] for r in results) == [2, 3, 4, 5, 6]
    positions = [r["position"] for r in results]
    assert positions == sorted(positions) and len(set(positions)) == 5
    assert {r["status"] for r in results} == {"ok", "valid"}


def test_run_table_aligns_by_terminal_cells_and_fits_the_terminal(
    namespace: str, tmp_path: Path
) -> None:
    """Issue 11, item 10: wide (東京銀行) and decomposed (José as e + U+0301) client names keep
    the columns after them in place, and the table fits the terminal's width ($COLUMNS here)
    by clipping and leaving out columns."""
    jose = unicodedata.normalize("NFD", "José")
    clients = ["東京銀行", jose, "Ana"]
    lines = [f"vip {c} mine {prev_hash(n)} 2" for n, c in enumerate(clients)]
    path = write(tmp_path, "names.txt", lines)
    for columns in (200, 80, 50):
        done = run_embedded(path, namespace, env=cli_env(COLUMNS=str(columns)))
        assert done.returncode == 0, done.stderr
        table = [line for line in done.stdout.splitlines() if not line.startswith("(")]
        assert len(table) == 4, done.stdout
        assert all(wcwidth.width(line) <= columns for line in table), done.stdout
        op_cells = {wcwidth.width(line[: line.index("mine")]) for line in table[1:]}
        assert len(op_cells) == 1, done.stdout  # "mine" starts in the same cell on every row
        assert op_cells == {wcwidth.width(table[0][: table[0].index("op")])}


def test_run_exit_status_separates_invalid_answers_from_failed_tasks(
    namespace: str, tmp_path: Path
) -> None:
    """Guarantee: `blpopq run` exits 0 when a verify is answered `invalid` (a correct answer)
    and 1 when a task could not be completed (exhausted under --max-attempts)."""
    prev = prev_hash(9)
    bad_nonce = next(n for n in range(1000) if not meets(digest(prev, n), 8))
    invalid = write(tmp_path, "invalid.txt", [f"alto ana verify {prev} {bad_nonce} 8"])
    done = run_embedded(invalid, namespace, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["status"] for line in done.stdout.splitlines()] == ["invalid"]

    assert smallest_nonce(prev, 8)[0] > 0, "nonce 0 must not already meet the difficulty"
    exhausted = write(tmp_path, "exhausted.txt", [f"vip bob mine {prev} 8"])
    done = run_embedded(exhausted, namespace, "--format", "jsonl", "--max-attempts", "1")
    assert done.returncode == 1, (done.stdout, done.stderr)
    [result] = [json.loads(line) for line in done.stdout.splitlines()]
    assert (result["status"], result["nonce"], result["hash"]) == ("exhausted", None, None)


# --- 10, 11. input sources and formats ----------------------------------------------------------


def queued_tasks(client: redis.Redis, namespace: str) -> list[dict[str, Any]]:
    keys = Keyspace(namespace)
    return [json.loads(raw) for key in keys.tiers for raw in client.lrange(key, 0, -1)]


def test_produce_reads_standard_input(
    redis_server: RedisServer, namespace: str, client: redis.Redis
) -> None:
    """Guarantee: `blpopq-produce -` reads the instructions from standard input."""
    text = "\n".join([
        f"comun ana mine {prev_hash(1)} 2",
        "# a comment",
        f"vip bob verify {prev_hash(2)} 42 3",
        f"alto cai mine {prev_hash(3)} 1 4",
    ]) + "\n"  # fmt: skip
    done = run_cli("blpopq-produce", "-", *target(redis_server, namespace), input=text.encode())

    assert done.returncode == 0, done.stderr
    match = SUMMARY.search(done.stdout)
    assert match and match.groups()[:4] == ("3", "1", "1", "1"), done.stdout
    tasks = queued_tasks(client, namespace)
    assert [(t["tier"], t["client"], t["line"]) for t in tasks] == [
        ("vip", "bob", 3), ("alto", "cai", 4), ("comun", "ana", 1),
    ]  # fmt: skip
    assert {t["source"] for t in tasks} == {"<stdin>"}
    assert {t["batch"] for t in tasks} == {match.group(5)}
    assert (tasks[0]["op"], tasks[0]["nonce"], tasks[1]["count"]) == ("verify", 42, 4)


def test_produce_reads_jsonl_files(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """Guarantee: a .jsonl instruction file is read as JSON Lines (auto-detected by name, or
    forced with --input-format jsonl) and enqueued like the text format."""
    objects = [
        {"tier": "alto", "client": "ana", "op": "mine", "prev": prev_hash(1), "difficulty": 3},
        {"tier": "vip", "client": "bob", "op": "verify", "prev": prev_hash(2), "nonce": 7,
         "difficulty": 2},
        {"tier": "comun", "client": "cai", "op": "mine", "prev": prev_hash(3), "difficulty": 1,
         "count": 3},
    ]  # fmt: skip
    lines = [json.dumps(obj) for obj in objects]
    auto = write(tmp_path, "requests.jsonl", lines)
    forced = write(tmp_path, "requests.data", lines)

    first = produce(redis_server, namespace, auto)
    second = produce(redis_server, namespace, forced, "--input-format", "jsonl")

    tasks = queued_tasks(client, namespace)
    assert len(tasks) == 6
    for batch, path in ((first, auto), (second, forced)):
        mine = sorted((t for t in tasks if t["batch"] == batch), key=lambda t: t["line"])
        assert [(t["tier"], t["client"], t["op"]) for t in mine] == [
            (o["tier"], o["client"], o["op"]) for o in objects
        ]
        assert [t["line"] for t in mine] == [1, 2, 3]
        assert {t["source"] for t in mine} == {str(path)}
        assert (mine[1]["nonce"], mine[2]["count"], mine[2]["prev"]) == (7, 3, prev_hash(3))


def test_produce_detects_json_lines_on_stdin_and_keeps_the_old_spelling(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """JSON Lines on stdin are read as JSON Lines without a flag (issue 11, item 6); forced
    through the text parser they get one hint per line; produce's old --format spelling of
    --input-format still works for one release, with a deprecation note."""
    lines = [
        json.dumps({"tier": "alto", "client": "ana", "op": "mine", "prev": prev_hash(1),
                    "difficulty": 1}),
        json.dumps({"tier": "vip", "client": "bob", "op": "mine", "prev": prev_hash(2),
                    "difficulty": 1}),
    ]  # fmt: skip
    data = "".join(line + "\n" for line in lines).encode()
    done = run_cli("blpopq-produce", "-", *target(redis_server, namespace), input=data)
    assert done.returncode == 0, done.stderr
    assert SUMMARY.search(done.stdout), done.stdout

    wrong = run_cli(
        "blpopq-produce", "-", "--input-format", "text", *target(redis_server, namespace),
        input=data,
    )  # fmt: skip
    assert wrong.returncode == 2
    assert wrong.stderr.count("looks like JSON Lines: use --input-format jsonl") == 2
    assert "unknown tier" not in wrong.stderr and "unknown op" not in wrong.stderr

    old = run_cli(
        "blpopq-produce", str(write(tmp_path, "requests.data", lines)), "--format", "jsonl",
        *target(redis_server, namespace),
    )  # fmt: skip
    assert old.returncode == 0, old.stderr
    assert "--format is deprecated here" in old.stderr and "use --input-format" in old.stderr
    assert len(queued_tasks(client, namespace)) == 4


def test_collect_follow_prints_results_as_they_arrive(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    """--follow keeps printing new results until interrupted, each once, and exits 0."""
    follower = subprocess.Popen(
        [
            str(BIN / "blpopq-collect"),
            "--follow",
            "--format",
            "jsonl",
            *target(redis_server, namespace),
        ],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines, _ = mixed_file(6, 2)
        produce(redis_server, namespace, write(tmp_path, "f.txt", lines))
        with start_daemon(redis_server, namespace, workers=1) as daemon:
            daemon.wait_ready()
            reader = LineReader(follower)
            printed = [json.loads(reader.get()) for _ in range(6)]
            assert daemon.stop() == 0
        assert sorted(r["line"] for r in printed) == list(range(2, 8))
        follower.send_signal(signal.SIGINT)
        assert follower.wait(30) == 0
        assert reader.rest() == []  # nothing printed twice
    finally:
        if follower.poll() is None:
            follower.kill()


def test_produce_refuses_a_request_above_max_work_and_enqueues_nothing(
    redis_server: RedisServer, namespace: str, client: redis.Redis, tmp_path: Path
) -> None:
    """count 1000 at difficulty 32 is weeks of a core: a bad line (exit 2, FILE:LINE naming
    the setting), nothing enqueued; --max-work raises the bound."""
    path = tmp_path / "huge.txt"
    path.write_text(f"vip a mine {prev_hash(1)} 1\nalto b mine {prev_hash(2)} 32 1000\n")
    target = ["--redis-url", redis_server.url, "--namespace", namespace]
    refused = run_cli("blpopq-produce", str(path), *target)
    assert refused.returncode == 2
    assert f"{path}:2: " in refused.stderr and "--max-work 2**40" in refused.stderr
    assert client.llen(Keyspace(namespace).tier(Tier.VIP)) == 0
    raised = run_cli("blpopq-produce", str(path), "--max-work", str(2**42), *target)
    assert raised.returncode == 0, raised.stderr
