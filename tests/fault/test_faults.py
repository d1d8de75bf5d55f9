"""Fault injection against lossless delivery: real daemons, real redis-servers, real signals.

Each test attacks one promise of the recovery protocol (take/claim in ``{ns}:inflight``,
worker leases, the reaper, fenced settles) and then checks the same invariant with
``assert_lossless``: every produced task has exactly one outcome across ``{ns}:results`` and
``{ns}:dead``, every result is a correct proof of work, and nothing is left in flight, open,
queued or registered. Waits are on events (log lines, Redis conditions, ``blpopq-collect
--expect``); the random delays are the fault moments, never a synchronisation.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from blpopq.connection import make_client
from blpopq.embedded import RedisServer
from blpopq.identity import pid_of
from blpopq.instructions import parse_text
from blpopq.producer import enqueue
from blpopq.protocol import Keyspace, Protocol
from blpopq.recovery import recover
from blpopq.tiers import TIERS, Tier

from ..helpers import Daemon, prev_hash, run_cli, wait_until
from .conftest import Daemons, PrivateServers, children

# --- requests ------------------------------------------------------------------------------

#: Smallest nonces at difficulty 20, found once offline with a plain hashlib loop (not with
#: blpopq.pow). About 3.1-3.4 M hashes: one to two seconds of one worker.
SLOW = {
    (prev_hash(21), 20): 3_085_119,
    (prev_hash(45), 20): 3_311_195,
    (prev_hash(9), 20): 3_434_853,
}


@dataclass(frozen=True)
class Req:
    tier: str
    client: str
    op: str
    prev: str
    difficulty: int
    count: int = 1
    nonce: int | None = None

    def line(self) -> str:
        if self.op == "verify":
            return f"{self.tier} {self.client} verify {self.prev} {self.nonce} {self.difficulty}"
        return f"{self.tier} {self.client} mine {self.prev} {self.difficulty} {self.count}"


def slow(tier: str, client: str, prev: str) -> Req:
    return Req(tier, client, "mine", prev, 20)


def random_requests(rng: random.Random, n: int, prefix: str) -> list[Req]:
    """Small mixed work: mine (difficulty 0-8, chains of 1-3) and verify, in random tiers."""
    reqs = []
    for i in range(n):
        tier, prev = rng.choice(TIERS).value, prev_hash(rng.randrange(256))
        if rng.random() < 0.2:
            nonce = rng.randrange(1000)
            reqs.append(Req(tier, f"{prefix}{i}", "verify", prev, rng.randint(0, 8), 1, nonce))
        else:
            count = rng.choice((1, 1, 2, 3))
            reqs.append(Req(tier, f"{prefix}{i}", "mine", prev, rng.randint(0, 8), count))
    return reqs


def produce(client: redis.Redis, namespace: str, path: Path, reqs: Sequence[Req]) -> dict[str, Req]:
    """Write an instruction file and enqueue it as blpopq-produce does; returns id -> request."""
    path.write_text("".join(req.line() + "\n" for req in reqs), encoding="utf-8")
    requests = parse_text(path.read_text(encoding="utf-8"), str(path))
    report = enqueue(Protocol(client, Keyspace(namespace)), requests, chunk_size=50_000)
    assert len(report.ids) == len(reqs)
    return dict(zip(report.ids, reqs, strict=True))


# --- checking outcomes -----------------------------------------------------------------------


def digest(prev: str, nonce: int) -> str:
    return hashlib.sha256(f"{prev}{nonce}".encode("ascii")).hexdigest()


def meets(hash_hex: str, difficulty: int) -> bool:
    return int(hash_hex, 16) >> (256 - difficulty) == 0


@functools.cache
def smallest_nonce(prev: str, difficulty: int) -> int:
    if (prev, difficulty) in SLOW:
        return SLOW[prev, difficulty]
    assert difficulty <= 12, "only small difficulties are searched here"
    nonce = 0
    while not meets(digest(prev, nonce), difficulty):
        nonce += 1
    return nonce


def check_result(result: dict[str, Any], req: Req) -> None:
    """The result answers this request, and its answer is right (recomputed with hashlib)."""
    asked = (req.tier, req.client, req.op, req.prev, req.difficulty)
    assert (
        result["tier"],
        result["client"],
        result["op"],
        result["prev"],
        result["difficulty"],
    ) == asked
    if req.op == "verify":
        expected = digest(req.prev, req.nonce or 0)
        assert (result["nonce"], result["hash"]) == (req.nonce, expected), result
        assert result["status"] == ("valid" if meets(expected, req.difficulty) else "invalid")
        return
    assert result["status"] == "ok", result
    assert len(result["blocks"]) == req.count, result
    current = req.prev
    for block in result["blocks"]:
        assert block["hash"] == digest(current, block["nonce"]), result
        assert meets(block["hash"], req.difficulty), result
        assert block["nonce"] == smallest_nonce(current, req.difficulty), result
        current = block["hash"]
    assert (result["nonce"], result["hash"]) == (result["blocks"][-1]["nonce"], current)


def state(client: redis.Redis, namespace: str) -> dict[str, Any]:
    """Everything recovery keeps, for failure messages."""
    keys = Keyspace(namespace)
    return {
        "inflight": client.hgetall(keys.inflight),
        "tiers": {key: client.lrange(key, 0, -1) for key in keys.tiers},
        "queued": {key: client.zrange(key, 0, -1, withscores=True) for key in keys.queued_sets},
        "open tasks": client.hkeys(keys.tasks),
        "suspects": client.hgetall(keys.suspects),
        "workers": client.zrange(keys.workers, 0, -1, withscores=True),
        "results": client.llen(keys.results),
        "dead": client.llen(keys.dead),
    }


def never(letter: dict[str, Any]) -> bool:
    return False


def assert_lossless(
    client: redis.Redis,
    namespace: str,
    produced: dict[str, Req],
    dead_ok: Callable[[dict[str, Any]], bool] = never,
    log: str = "",
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The invariant every fault test ends with; returns (results, dead letters) by id.
    ``log``: the daemon's log, shown with a failure (with every result of a duplicated id)."""
    keys = Keyspace(namespace)
    results = [json.loads(raw) for raw in client.lrange(keys.results, 0, -1)]
    dead = [json.loads(raw) for raw in client.lrange(keys.dead, 0, -1)]
    # A dead letter without an id is of a foreign item (no task's outcome): see dead_ok.
    ids = [r["id"] for r in results] + [d["id"] for d in dead if d["id"] is not None]
    outcomes = Counter(ids)
    where = f"\nRedis state: {state(client, namespace)}\ndaemon log:\n{log}"
    twice = {task_id: n for task_id, n in outcomes.items() if n > 1}
    both = [r for r in results if r["id"] in twice]
    assert not twice, f"tasks with more than one outcome: {twice}\n{both}{where}"
    missing = sorted(set(produced) - set(outcomes))
    assert not missing, f"{len(missing)} tasks without an outcome: {missing[:10]}{where}"
    unknown = sorted({r["id"] for r in results} - set(produced))
    assert not unknown, f"results of tasks never produced: {unknown[:10]}"
    for letter in dead:
        assert dead_ok(letter), f"unexpected dead letter: {letter}"
    for result in results:
        check_result(result, produced[result["id"]])
    assert client.hlen(keys.inflight) == 0, where
    assert client.hlen(keys.tasks) == 0, where
    assert [client.llen(key) for key in keys.tiers] == [0, 0, 0], where
    assert [client.zcard(key) for key in keys.queued_sets] == [0, 0, 0], where
    return {r["id"]: r for r in results}, {d["id"]: d for d in dead}


# --- waiting and processes ---------------------------------------------------------------------


def collect(
    url: str, namespace: str, expect: int, daemon: Daemon, client: redis.Redis, timeout: int = 30
) -> None:
    """``blpopq-collect --expect N --timeout S``: wait for N outcomes (results + dead letters)."""
    args = ["--expect", str(expect), "--timeout", str(timeout), "--format", "jsonl"]
    done = run_cli("blpopq-collect", *args, "--redis-url", url, "--namespace", namespace)
    assert done.returncode == 0, (
        f"{done.stderr}\nRedis state: {state(client, namespace)}\ndaemon log:\n{daemon.log}"
    )


def live_workers(daemon: Daemon) -> list[int]:
    """Worker processes of this daemon that are alive now."""
    announced = set(daemon.worker_pids)
    return [pid for pid in children(daemon.process.pid) if pid in announced]


def slot_of(daemon: Daemon, pid: int) -> int:
    return int(daemon.wait_for_line(rf"worker (\d+) started \(pid {pid}\)").group(1))


def proc_state(pid: int) -> str | None:
    """R, S, T (stopped), Z ... of a process; None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def blocked_in_blpop(client: redis.Redis, namespace: str) -> int:
    prefix = f"blpopq:{namespace}:worker:"
    return sum(
        1
        for entry in client.client_list()
        if entry.get("name", "").startswith(prefix) and entry.get("cmd") == "blpop"
    )


def reaches(client: redis.Redis, key: str, n: int) -> Callable[[], bool]:
    """A condition: list ``key`` holds at least ``n`` entries."""
    return lambda: client.llen(key) >= n


def idle(client: redis.Redis, namespace: str) -> bool:
    """Nothing waits in a tier list and nothing is in flight."""
    keys = Keyspace(namespace)
    return client.hlen(keys.inflight) == 0 and all(client.llen(key) == 0 for key in keys.tiers)


#: The log line of a worker that the pause-after-blpop hook stopped; group 1 is its pid.
PAUSED = r"\[(\d+)\]: test hook: paused between BLPOP and claim"


def died_too_often(letter: dict[str, Any]) -> bool:
    """A dead letter for a task whose workers died --max-deaths (3) times: an allowed outcome."""
    return "died 3 times" in letter["reason"] and len(json.loads(letter["raw"])["history"]) == 3


# --- 1. kill -9 at random moments ----------------------------------------------------------------


def test_kill_9_workers_at_random_moments(
    redis_server: RedisServer,
    namespace: str,
    client: redis.Redis,
    tmp_path: Path,
    daemons: Daemons,
    rng: random.Random,
) -> None:
    """Guarantee under attack: lossless delivery, exactly one outcome per task, while workers
    die by kill -9 at random moments (mid-search, mid-take, between BLPOP and claim,
    mid-settle, while their heartbeat thread reaps). The supervisor restarts them and the
    reaper gives their tasks back; no task may be lost, stuck or answered twice."""
    url = redis_server.url
    daemon = daemons.start(url, namespace, 3)
    daemon.wait_ready()
    produced: dict[str, Req] = {}
    kills = 0
    results = Keyspace(namespace).results
    for round_ in range(3):
        reqs = random_requests(rng, 90, prefix=f"r{round_}c")
        # The fault moments: random points of this round's progress (so the pool is busy),
        # each a random worker, whatever it is doing at that instant.
        moments = sorted(len(produced) + rng.randrange(len(reqs)) for _ in range(3))
        produced.update(produce(client, namespace, tmp_path / f"round{round_}.txt", reqs))
        for moment in moments:
            wait_until(reaches(client, results, moment), f"{moment} results", daemon, poll=0.001)
            victims = live_workers(daemon)
            if victims:  # none when the last kill took the only worker left
                # A worker listed a moment ago may have exited since (declared dead, or a
                # crash): that is the chaos we want, not a failure of the test.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(rng.choice(victims), signal.SIGKILL)
                    kills += 1
        collect(url, namespace, len(produced), daemon, client)
    assert daemon.stop() == 0, daemon.log

    _, dead = assert_lossless(client, namespace, produced, dead_ok=died_too_often)
    requeued = daemon.log.count("(worker died:")
    orphans = daemon.log.count("(popped but never claimed:")
    print(f"{kills} kills: {requeued} requeued, {orphans} orphans, {len(dead)} dead letters")


# --- 2. kill -9 between BLPOP and claim --------------------------------------------------------


def test_kill_9_between_blpop_and_claim_recovers_the_orphan(
    redis_server: RedisServer,
    namespace: str,
    client: redis.Redis,
    tmp_path: Path,
    daemons: Daemons,
) -> None:
    """Guarantee under attack: a task that BLPOP handed to a worker which died before claiming
    it (the one moment a task is in no list and not in flight) is found by the reaper's
    sequence and epoch handshake, given back, and served exactly once."""
    keys = Keyspace(namespace)
    url = redis_server.url
    # --orphan-grace 60: this daemon notes the orphan but never takes it back itself, so its
    # restarted worker (hooked too: the hook is per daemon) cannot pop it and pause again.
    first = daemons.start(url, namespace, 1, "--orphan-grace", "60", hooks="pause-after-blpop")
    first.wait_ready()
    wait_until(lambda: blocked_in_blpop(client, namespace) == 1, "worker in BLPOP", first)
    produced = produce(
        client, namespace, tmp_path / "one.txt", [Req("vip", "ana", "mine", prev_hash(3), 8)]
    )
    [task_id] = produced
    pid = int(first.wait_for_line(PAUSED).group(1))
    assert pid in first.worker_pids, first.log
    wait_until(lambda: proc_state(pid) == "T", "worker stopped by its hook", first)
    # The window: popped from its list, not claimed; only its registration remembers it.
    assert [client.llen(key) for key in keys.tiers] == [0, 0, 0]
    assert client.hlen(keys.inflight) == 0
    assert client.hexists(keys.tasks, task_id)
    assert client.zscore(keys.queued(Tier.VIP), task_id) is not None

    os.kill(pid, signal.SIGKILL)
    first.wait_for_line(r"worker 0 exited with status -9")
    assert first.stop() == 0, first.log
    assert client.llen(keys.results) == 0

    second = daemons.start(url, namespace, 1)
    second.wait_ready()
    collect(url, namespace, 1, second, client)
    assert second.stop() == 0, second.log
    assert f"task {task_id} back at the head of vip (popped but never claimed" in second.log
    assert_lossless(client, namespace, produced)


# --- 3. a frozen worker past its lease -------------------------------------------------------


def test_sigstopped_worker_past_its_lease_is_fenced_off(
    redis_server: RedisServer,
    namespace: str,
    client: redis.Redis,
    tmp_path: Path,
    daemons: Daemons,
) -> None:
    """Guarantee under attack: no duplicate results. A worker frozen by SIGSTOP mid-search
    past its lease is declared dead and its task re-run by another worker; woken by SIGCONT,
    it must not write a second result: it finds itself declared dead and exits (status 75)."""
    keys = Keyspace(namespace)
    url = redis_server.url
    daemon = daemons.start(url, namespace, 2)
    daemon.wait_ready()
    produced = produce(
        client, namespace, tmp_path / "slow.txt", [slow("alto", "ana", prev_hash(9))]
    )
    [task_id] = produced
    wait_until(lambda: client.hexists(keys.inflight, task_id), "task in flight", daemon)
    claim = json.loads(client.hget(keys.inflight, task_id))
    frozen = pid_of(claim["worker"])
    assert frozen in live_workers(daemon), (claim, daemon.log)

    os.kill(frozen, signal.SIGSTOP)
    try:
        wait_until(lambda: client.llen(keys.results) > 0, "result of the re-run", daemon, 60)
        [result] = [json.loads(raw) for raw in client.lrange(keys.results, 0, -1)]
        assert pid_of(result["worker"]) != frozen, result
        assert proc_state(frozen) == "T"
        assert f"task {task_id} back at the head of alto (worker died: {claim['worker']})" in (
            daemon.log
        )
    finally:
        os.kill(frozen, signal.SIGCONT)
    daemon.wait_for_line(rf"worker {slot_of(daemon, frozen)} exited with status 75")
    assert client.llen(keys.results) == 1
    assert daemon.stop() == 0, daemon.log
    assert_lossless(client, namespace, produced)


# --- 4. Redis restarts and lost connections --------------------------------------------------


def kill_connections(client: redis.Redis, namespace: str, everyone: bool) -> int:
    """CLIENT KILL every normal client but ours, or only the workers' named connections."""
    if everyone:
        return int(client.client_kill_filter(_type="normal", skipme=True))
    prefix = f"blpopq:{namespace}:worker:"
    killed = 0
    for entry in client.client_list():
        if entry.get("name", "").startswith(prefix):
            killed += int(client.client_kill_filter(_id=entry["id"]))
    return killed


@pytest.mark.parametrize("fault", ["stop-everysec", "kill-always", "client-kill"])
def test_redis_restarts_and_killed_connections(
    fault: str,
    private_redis: PrivateServers,
    namespace: str,
    tmp_path: Path,
    daemons: Daemons,
    rng: random.Random,
) -> None:
    """Guarantee under attack: lossless delivery across Redis going away mid-run, with no
    operator action: (stop-everysec) a clean SIGTERM restart with AOF everysec, (kill-always)
    SIGKILL with AOF always, (client-kill) CLIENT KILL of the workers' connections. Replies
    lost with the connection must neither lose a task nor answer one twice."""
    aof = {"stop-everysec": "everysec", "kill-always": "always"}.get(fault)
    server = private_redis.start(*(("--appendonly", "yes", "--appendfsync", aof) if aof else ()))
    keys = Keyspace(namespace)
    client = make_client(server.url)
    # A lease longer than the outage: the workers must live through it, reconnect and go on
    # (with --lease 1 they are mostly declared dead and restarted, which hides the reconnect).
    daemon = daemons.start(server.url, namespace, 2, "--lease", "5")
    daemon.wait_ready()
    produced: dict[str, Req] = {}
    for round_ in range(2):
        done = len(produced)
        reqs = random_requests(rng, 200, f"r{round_}c")
        produced.update(produce(client, namespace, tmp_path / f"work{round_}.txt", reqs))
        # The fault moments: random points of this round's first half, so that each fault
        # finds the pool busy with a hundred tasks or more still to do (checked below).
        count = 2 if fault == "client-kill" else 1
        for moment in sorted(done + m for m in rng.sample(range(5, 100), count)):
            progress = reaches(client, keys.results, moment)
            wait_until(progress, f"{moment} results", daemon, poll=0.001)
            assert client.llen(keys.results) < len(produced), "the round ended before the fault"
            if fault == "client-kill":
                kill_connections(client, namespace, everyone=rng.random() < 0.5)
            else:
                if fault == "stop-everysec":
                    server.stop()
                else:
                    # After a crash, what README guarantee 3 asks: without it a write the
                    # kill cut short comes back in half at the next restart (test_aof_cut.py).
                    server.kill()
                    server.repair_aof()
                time.sleep(rng.uniform(0.05, 0.5))  # the outage
                server.start()
        collect(server.url, namespace, len(produced), daemon, client)
    assert daemon.process.poll() is None, daemon.log
    assert daemon.stop() == 0, daemon.log
    assert_lossless(client, namespace, produced, log=daemon.log)
    client.close()
    seen = {
        what: daemon.log.count(line)
        for what, line in [
            ("reconnects", "Redis unavailable"),
            ("claims given back", "claimed before a lost reply"),
            ("claims adopted", "adopted task"),
            ("fenced", "fenced off"),
            ("orphans", "(popped but never claimed:"),
            ("worker exits", " exited with status "),
        ]
    }
    print(f"{fault}: {seen}")


# --- 5. a task that kills every worker that runs it ------------------------------------------


def test_crash_looping_task_is_dead_lettered_after_max_deaths(
    redis_server: RedisServer,
    namespace: str,
    client: redis.Redis,
    tmp_path: Path,
    daemons: Daemons,
) -> None:
    """Guarantee under attack: a poison task that kills each worker that starts it does not
    crash-loop the pool for ever: after --max-deaths (3) deaths it is dead-lettered exactly
    once, with its history, while every other task is served and the daemon keeps serving."""
    keys = Keyspace(namespace)
    url = redis_server.url
    reqs = [
        Req("vip", "ana", "mine", prev_hash(1), 6),
        Req("alto", "poison", "mine", prev_hash(2), 4),
        Req("alto", "bob", "mine", prev_hash(3), 5),
        Req("comun", "cai", "verify", prev_hash(4), 8, 1, 77),
        Req("comun", "dan", "mine", prev_hash(5), 7, 2),
    ]
    daemon = daemons.start(url, namespace, 2, "--max-deaths", "3", hooks="crash-on-client=poison")
    daemon.wait_ready()
    produced = produce(client, namespace, tmp_path / "poison.txt", reqs)
    [poison] = [task_id for task_id, req in produced.items() if req.client == "poison"]
    collect(url, namespace, len(produced), daemon, client)

    assert client.llen(keys.dead) == 1
    [letter] = [json.loads(raw) for raw in client.lrange(keys.dead, 0, -1)]
    assert letter["id"] == poison, letter
    assert re.search(r"died 3 times", letter["reason"]), letter
    history = json.loads(letter["raw"])["history"]
    assert len(history) == 3, history
    assert {entry["event"] for entry in history} == {"worker died"}, history
    assert len(re.findall(r"worker \d+ exited with status 70", daemon.log)) == 3, daemon.log
    # Each death was counted against the task, so no slot waited longer at the next one
    # (two slots, three deaths: a growing backoff would show a 0.2 s restart).
    delays = re.findall(r"exited with status 70; restarting in ([\d.]+) s", daemon.log)
    assert delays == ["0.1"] * 3, daemon.log

    assert daemon.process.poll() is None, daemon.log
    later = produce(
        client, namespace, tmp_path / "later.txt", [Req("vip", "eva", "mine", prev_hash(6), 5)]
    )
    produced.update(later)
    collect(url, namespace, len(produced), daemon, client)
    assert daemon.stop() == 0, daemon.log
    _, dead = assert_lossless(client, namespace, produced, dead_ok=lambda d: d["id"] == poison)
    assert list(dead) == [poison]


# --- 6. SIGTERM with tasks running longer than the grace period ---------------------------------


def test_sigterm_puts_unfinished_tasks_back_at_the_head(
    redis_server: RedisServer,
    namespace: str,
    client: redis.Redis,
    tmp_path: Path,
    daemons: Daemons,
) -> None:
    """Guarantee under attack: graceful stop loses nothing. Tasks still running when --grace
    runs out go back to the HEAD of their tier (still registered, not in flight), the daemon
    exits 0, and a second daemon finishes everything with exactly one outcome each."""
    keys = Keyspace(namespace)
    url = redis_server.url
    reqs = [
        slow("vip", "ana", prev_hash(21)),
        slow("alto", "bob", prev_hash(45)),
        Req("alto", "cai", "mine", prev_hash(1), 3),
        Req("alto", "dan", "mine", prev_hash(2), 4),
        Req("comun", "eva", "mine", prev_hash(3), 5),
    ]
    produced = produce(client, namespace, tmp_path / "stop.txt", reqs)
    ids = {req.client: task_id for task_id, req in produced.items()}
    daemon = daemons.start(url, namespace, 2, "--grace", "0.5")
    wait_until(lambda: client.hlen(keys.inflight) == 2, "both slow tasks in flight", daemon)
    assert set(client.hkeys(keys.inflight)) == {ids["ana"].encode(), ids["bob"].encode()}
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(30) == 0, daemon.log

    def queued(tier: Tier) -> list[str]:
        return [json.loads(raw)["id"] for raw in client.lrange(keys.tier(tier), 0, -1)]

    assert client.llen(keys.results) == 0, "a slow task finished within the grace period"
    assert client.hlen(keys.inflight) == 0
    assert queued(Tier.VIP) == [ids["ana"]]
    assert queued(Tier.ALTO) == [ids["bob"], ids["cai"], ids["dan"]]
    assert queued(Tier.COMUN) == [ids["eva"]]
    assert set(client.hkeys(keys.tasks)) == {task_id.encode() for task_id in produced}
    alto = [member.decode() for member in client.zrange(keys.queued(Tier.ALTO), 0, -1)]
    assert alto == queued(Tier.ALTO), "registration out of list order: orphans undetectable"

    second = daemons.start(url, namespace, 2)
    second.wait_ready()
    collect(url, namespace, len(produced), second, client)
    assert second.stop() == 0, second.log
    assert_lossless(client, namespace, produced)


# --- 7. the orphan search must not take a task that a live worker is about to claim --------------


def test_orphan_search_never_takes_a_task_a_live_worker_is_claiming(
    redis_server: RedisServer,
    namespace: str,
    client: redis.Redis,
    tmp_path: Path,
    daemons: Daemons,
) -> None:
    """Guarantee under attack: no duplicate results. A task popped by BLPOP is taken back as
    an orphan only once every worker alive when it was first seen has died or begun another
    take. Here one task is popped by BLPOP twice: by worker A (a reaper pass notes it as a
    suspect while A holds it; A claims it; an immediate stop puts it back at the head), then
    by worker B, which a reaper pass finds between its BLPOP and its claim. B is alive and
    holds the task, so that pass must leave it alone; taking it would leave the task both
    claimed by B and back in its list, to be run and answered twice.

    The test holds the reaper lock, so it is the namespace's only reaper and runs the two
    passes at these instants, as a worker's heartbeat or a supervisor would."""
    keys = Keyspace(namespace)
    url = redis_server.url
    protocol = Protocol(client, keys)
    assert client.set(keys.reaper_lock, "test", nx=True, px=120_000)
    # --lease 5: a worker frozen by the hook stays alive (its lease runs) for this whole test.
    first = daemons.start(
        url, namespace, 1, "--lease", "5", "--grace", "0", hooks="pause-after-blpop"
    )
    first.wait_ready()
    wait_until(lambda: blocked_in_blpop(client, namespace) == 1, "worker A in BLPOP", first)
    produced = produce(client, namespace, tmp_path / "x.txt", [slow("vip", "ana", prev_hash(9))])
    [task_id] = produced
    worker_a = int(first.wait_for_line(PAUSED).group(1))
    wait_until(lambda: proc_state(worker_a) == "T", "worker A paused after BLPOP", first)
    recover(protocol, orphan_grace=0.3, max_deaths=3, reaper="test")  # sees the popped task
    os.kill(worker_a, signal.SIGCONT)
    wait_until(lambda: client.hexists(keys.inflight, task_id), "worker A's claim", first)

    second = daemons.start(url, namespace, 1, "--lease", "5", hooks="pause-after-blpop")
    second.wait_ready()
    wait_until(lambda: blocked_in_blpop(client, namespace) == 1, "worker B in BLPOP", second)
    first.signal(signal.SIGTERM)  # --grace 0: A puts its running task back at the head now
    assert first.process.wait(30) == 0, first.log
    worker_b = int(second.wait_for_line(PAUSED).group(1))
    wait_until(lambda: proc_state(worker_b) == "T", "worker B paused after BLPOP", second)
    assert client.hexists(keys.tasks, task_id) and not client.hexists(keys.inflight, task_id)

    during = recover(protocol, orphan_grace=0.3, max_deaths=3, reaper="test")
    print(f"reaper pass while worker B held the task between BLPOP and claim: {during}")
    os.kill(worker_b, signal.SIGCONT)
    collect(url, namespace, 1, second, client)
    wait_until(lambda: idle(client, namespace), "nothing left queued or in flight", second)
    assert second.stop() == 0, second.log
    assert_lossless(client, namespace, produced)
