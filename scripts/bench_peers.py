#!/usr/bin/env python3
"""blpopq beside other Redis task queues on the same no-op workload.

    python scripts/bench_peers.py [--runs 3] [--tasks 10000] [--peers rq,rq-fork,celery,...]
                                  [--skip-install] [--reinstall]

Workload: --tasks no-op tasks (one sha256 of a 64-hex prev, as blpopq's mine at difficulty 0),
pre-enqueued into one private redis-server; then 2 worker processes are started and timed
until the last task is done. "wall" runs from starting the workers (so it includes their
start-up); "steady" from the first task seen done to the last. Peers signal "done" with an
INCR of a counter on the same Redis from inside the task (polled); blpopq's is its result on
{ns}:results (polled with LLEN).

Peers: rq (SimpleWorker), rq-fork (rq's default forking Worker), celery (prefork), dramatiq,
huey, arq. Each is pip-installed into its own venv, cached in bench-results/peer-venvs/<name>
(a git-ignored folder) so reruns skip the install. A peer that fails to install or run is
reported as "failed: <reason>"; the others go on.

Prints a table and writes bench-results/bench_peers.json. Every figure is a median of --runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _bench as B

COUNTER = "bench:done"
VENVS = B.RESULTS_DIR / "peer-venvs"
NS = "blpopq"

# --- the peers: what to install, the task module, the producer, the worker command ------------

_COMMON = '''
import hashlib
import os

import redis

URL = os.environ["BENCH_URL"]
COUNTER = os.environ["BENCH_COUNTER"]
_client = None


def done():
    """Count a finished task on the benchmark's Redis (one client per process)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(URL)
    _client.incr(COUNTER)


def work(prev):
    return hashlib.sha256((prev + "0").encode()).hexdigest()
'''


@dataclass(frozen=True)
class Peer:
    name: str
    venv: str  # venv folder name (rq and rq-fork share one)
    requirements: tuple[str, ...]
    dist: str  # distribution whose version is reported
    tasks: str  # benchtasks.py: everything after _COMMON
    produce: str  # produce.py: enqueue sys.argv[1] tasks whose prevs come on stdin
    workers: tuple[tuple[str, ...], ...]  # commands; "{bin}" = the venv's bin folder
    settings: str
    extra_files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


_RQ_TASKS = """
from rq import get_current_job


def noop(prev):
    work(prev)
    get_current_job().connection.incr(COUNTER)  # the job's own connection to the same Redis
"""
_RQ_PRODUCE = """
import sys

from redis import Redis
from rq import Queue

import benchtasks

prevs = sys.stdin.read().split()
queue = Queue("bench", connection=Redis.from_url(benchtasks.URL))
jobs = [Queue.prepare_data(benchtasks.noop, args=(p,), result_ttl=0) for p in prevs]
for start in range(0, len(jobs), 1000):
    queue.enqueue_many(jobs[start : start + 1000])
print(len(queue))
"""
_RQ_WORKER = ("{bin}/rq", "worker", "--url", "{url}", "--quiet", "-w", "{cls}", "bench")

_CELERY_TASKS = """
from celery import Celery

app = Celery("benchtasks", broker=URL)
app.conf.update(
    task_ignore_result=True,
    result_backend=None,
    worker_prefetch_multiplier=4,
    task_acks_late=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(ignore_result=True)
def noop(prev):
    work(prev)
    done()
"""
_CELERY_PRODUCE = """
import sys

import benchtasks

prevs = sys.stdin.read().split()
with benchtasks.app.producer_or_acquire() as producer:
    for p in prevs:
        benchtasks.noop.apply_async((p,), producer=producer)
print(len(prevs))
"""

_DRAMATIQ_TASKS = """
import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=URL))


@dramatiq.actor(max_retries=0)
def noop(prev):
    work(prev)
    done()
"""
_DRAMATIQ_PRODUCE = """
import sys

import benchtasks

prevs = sys.stdin.read().split()
for p in prevs:
    benchtasks.noop.send(p)
print(len(prevs))
"""

_HUEY_TASKS = """
from huey import RedisHuey

huey = RedisHuey("bench", url=URL, results=False)


@huey.task()
def noop(prev):
    work(prev)
    done()
"""
_HUEY_PRODUCE = """
import sys

import benchtasks

prevs = sys.stdin.read().split()
for p in prevs:
    benchtasks.noop(p)
print(len(prevs))
"""

_ARQ_TASKS = """
from arq.connections import RedisSettings


async def noop(ctx, prev):
    work(prev)
    await ctx["redis"].incr(COUNTER)


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(URL)
    keep_result = 0
    max_jobs = 10
    poll_delay = float(os.environ.get("BENCH_ARQ_POLL_DELAY", "0.5"))
    handle_signals = True
"""
_ARQ_PRODUCE = """
import asyncio
import sys

from arq import create_pool

import benchtasks


async def main():
    prevs = sys.stdin.read().split()
    pool = await create_pool(benchtasks.WorkerSettings.redis_settings)
    for start in range(0, len(prevs), 500):
        await asyncio.gather(*(pool.enqueue_job("noop", p) for p in prevs[start : start + 500]))
    print(len(prevs))


asyncio.run(main())
"""
_ARQ_RUN = """
import logging

from arq.worker import run_worker

import benchtasks

logging.basicConfig(level=logging.WARNING)  # arq's CLI logs every job at INFO
run_worker(benchtasks.WorkerSettings)
"""

PEERS = {
    p.name: p
    for p in (
        Peer(
            "rq", "rq", ("rq", "hiredis"), "rq", _RQ_TASKS, _RQ_PRODUCE,
            (tuple(a.replace("{cls}", "rq.worker.SimpleWorker") for a in _RQ_WORKER),) * 2,
            "2 x `rq worker -w rq.worker.SimpleWorker --quiet` (job runs in the worker process); "
            "result_ttl=0 (no result kept); enqueue_many",
        ),
        Peer(
            "rq-fork", "rq", ("rq", "hiredis"), "rq", _RQ_TASKS, _RQ_PRODUCE,
            (tuple(a.replace("{cls}", "rq.worker.Worker") for a in _RQ_WORKER),) * 2,
            "2 x `rq worker --quiet` (default Worker: forks a work horse per job); result_ttl=0",
        ),
        Peer(
            "celery", "celery", ("celery[redis]", "hiredis"), "celery",
            _CELERY_TASKS, _CELERY_PRODUCE,
            (("{bin}/celery", "-A", "benchtasks", "worker", "--pool", "prefork",
              "--concurrency", "2", "--loglevel", "WARNING", "--without-gossip",
              "--without-mingle", "--without-heartbeat"),),
            "1 worker, prefork pool, concurrency 2; prefetch multiplier 4 (default), "
            "acks_late off (default), no result backend, ignore_result; gossip, mingle and "
            "heartbeat off",
        ),
        Peer(
            "dramatiq", "dramatiq", ("dramatiq[redis]", "hiredis"), "dramatiq",
            _DRAMATIQ_TASKS, _DRAMATIQ_PRODUCE,
            (("{bin}/dramatiq", "benchtasks", "--processes", "2", "--threads", "1"),),
            "RedisBroker, --processes 2 --threads 1, default middleware (no results), "
            "max_retries=0, default prefetch (2 x threads per process)",
        ),
        Peer(
            "huey", "huey", ("huey", "redis", "hiredis"), "huey", _HUEY_TASKS, _HUEY_PRODUCE,
            (("{bin}/huey_consumer", "benchtasks.huey", "-k", "process", "-w", "2", "-n",
              "-q"),),
            "RedisHuey(results=False, blocking=True: BRPOP), consumer -k process -w 2, -n (no "
            "periodic tasks), -q",
        ),
        Peer(
            "arq", "arq", ("arq", "hiredis"), "arq", _ARQ_TASKS, _ARQ_PRODUCE,
            (("{bin}/python", "run_arq.py"),) * 2,
            "2 worker processes (run_worker, logging WARNING), max_jobs=10 (default), "
            "poll_delay=0.5 (default), keep_result=0",
            {"run_arq.py": _ARQ_RUN},
        ),
        Peer(
            "arq-fastpoll", "arq", ("arq", "hiredis"), "arq", _ARQ_TASKS, _ARQ_PRODUCE,
            (("{bin}/python", "run_arq.py"),) * 2,
            "as arq but poll_delay=0.01: arq polls its queue (a sorted set) and starts at most "
            "queue_read_limit (100) jobs per poll, so the default 0.5 s caps its throughput",
            {"run_arq.py": _ARQ_RUN},
            {"BENCH_ARQ_POLL_DELAY": "0.01"},
        ),
    )
}  # fmt: skip
DEFAULT_PEERS = "rq,rq-fork,celery,dramatiq,huey,arq,arq-fastpoll"


class PeerFailed(Exception):
    pass


# --- venvs ------------------------------------------------------------------------------------


def ensure_venv(peer: Peer, args: argparse.Namespace) -> Path:
    """The peer's venv, created and installed unless a matching cached one exists."""
    venv = VENVS / peer.venv
    marker = venv / ".bench-installed"
    wanted = " ".join(peer.requirements)
    if marker.exists() and marker.read_text().strip() == wanted and not args.reinstall:
        return venv
    if args.skip_install:
        raise PeerFailed(f"not installed in {venv} (--skip-install)")
    print(f"  installing {wanted} into {venv} ...", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [args.python, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "-q", *peer.requirements],
    ]  # fmt: skip
    for step in steps:
        try:
            out = subprocess.run(step, capture_output=True, text=True, timeout=args.install_timeout)
        except subprocess.TimeoutExpired:
            raise PeerFailed(f"install timed out after {args.install_timeout} s") from None
        if out.returncode != 0:
            last = (out.stderr or out.stdout).strip().splitlines()[-3:]
            raise PeerFailed(f"install failed: {' | '.join(last)}")
    marker.write_text(wanted + "\n")
    return venv


def peer_version(venv: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise PeerFailed(f"cannot read the {dist} version: {out.stderr.strip()[-200:]}")
    return out.stdout.strip()


# --- running ----------------------------------------------------------------------------------


def write_project(folder: Path, peer: Peer) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "benchtasks.py").write_text(_COMMON + textwrap.dedent(peer.tasks))
    (folder / "produce.py").write_text(textwrap.dedent(peer.produce))
    for name, text in peer.extra_files.items():
        (folder / name).write_text(textwrap.dedent(text))


def peer_env(url: str, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(BENCH_URL=url, BENCH_COUNTER=COUNTER, PYTHONPATH=str(folder))
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    return env


def run_peer_once(
    peer: Peer, venv: Path, url: str, folder: Path, prevs: list[str], stall: float
) -> dict[str, float]:
    client = B.connect(url)
    client.flushall()
    env = {**peer_env(url, folder), **peer.env}
    bin_dir = str(venv / "bin")
    started = time.time()
    try:
        out = subprocess.run(
            [str(venv / "bin" / "python"), "produce.py"],
            input="\n".join(prevs),
            capture_output=True,
            text=True,
            cwd=folder,
            env=env,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        raise PeerFailed("enqueue timed out") from None
    if out.returncode != 0:
        raise PeerFailed(f"enqueue failed: {out.stderr.strip()[-300:]}")
    enqueue_seconds = time.time() - started
    log = folder / "worker.log"
    log.write_text("")
    commands = [[a.format(bin=bin_dir, url=url) for a in cmd] for cmd in peer.workers]
    cpu = B.MachineCpu()
    start = time.time()
    procs = [B.spawn(cmd, log, env=env, cwd=folder) for cmd in commands]
    try:
        first_at, first_n, done_at = B.wait_count(
            lambda: int(client.get(COUNTER) or 0), len(prevs), stall=stall, alive=B.exited(*procs)
        )
        others = cpu.report()["others"] or 0.0
    except B.BenchError as exc:
        raise PeerFailed(f"{exc}; worker log: {B.tail(log, 300)}") from None
    finally:
        for proc in procs:
            B.stop_process(proc, timeout=15)
        client.close()
    n = len(prevs)
    return {
        "wall": n / (done_at - start),
        "steady": (n - first_n) / max(done_at - first_at, 1e-6),
        "first_done_after": first_at - start,
        "enqueue_seconds": enqueue_seconds,
        "others_cores": others,
    }


def run_blpopq_once(url: str, text: str, n: int, log: Path, stall: float) -> dict[str, float]:
    from blpopq.producer import enqueue

    client = B.connect(url)
    client.flushall()
    protocol = B.blpopq_protocol(url, NS)
    started = time.time()
    enqueue(protocol, B.parse_requests(text), 50_000)
    enqueue_seconds = time.time() - started
    protocol.client.close()
    results = protocol.keys.results
    cpu = B.MachineCpu()
    start = time.time()
    daemon = B.spawn(B.daemon_command(url, 2, NS), log)
    try:
        first_at, first_n, done_at = B.wait_count(
            lambda: client.llen(results), n, stall=stall, alive=B.exited(daemon)
        )
        others = cpu.report()["others"] or 0.0
    except B.BenchError as exc:
        raise PeerFailed(f"{exc}; daemon log: {B.tail(log, 300)}") from None
    finally:
        B.stop_process(daemon)
        client.close()
    return {
        "wall": n / (done_at - start),
        "steady": (n - first_n) / max(done_at - first_at, 1e-6),
        "first_done_after": first_at - start,
        "enqueue_seconds": enqueue_seconds,
        "others_cores": others,
    }


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PeerFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = B.base_parser(__doc__.splitlines()[0], runs=3)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--peers", default=DEFAULT_PEERS, help=f"comma-separated ({DEFAULT_PEERS})")
    parser.add_argument("--skip-install", action="store_true", help="use cached venvs only")
    parser.add_argument("--reinstall", action="store_true", help="recreate the peer venvs")
    parser.add_argument("--python", default=sys.executable, help="interpreter for peer venvs")
    parser.add_argument("--install-timeout", type=int, default=900)
    parser.add_argument("--stall", type=float, default=60.0, help="give up after S s idle")
    args = parser.parse_args()
    names = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in names if p not in PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; known: {', '.join(PEERS)}")
    n = args.tasks
    load = B.warn_if_busy()
    text = B.instruction_text(n, 0)
    prevs = [B.prev_of(i) for i in range(n)]

    # Install first (outside any timing), so a slow pip does not sit between measurements.
    status: dict[str, dict[str, Any]] = {}
    venvs: dict[str, Path] = {}
    for name in names:
        peer = PEERS[name]
        status[name] = {"settings": peer.settings, "requirements": list(peer.requirements)}
        try:
            venvs[name] = ensure_venv(peer, args)
            status[name]["version"] = peer_version(venvs[name], peer.dist)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot install is a result
            status[name]["failed"] = _reason(exc)
            print(f"  {name}: failed: {_reason(exc)}")

    runs: dict[str, list[dict[str, float]]] = {"blpopq": []}
    with B.private_redis(args.redis_server) as server, tempfile.TemporaryDirectory() as tmp:
        machine = B.machine_info(B.connect(server.url))
        print(f"private redis-server {machine['redis_server']} at {server.url}; {n:,} tasks")
        for name in venvs:
            write_project(Path(tmp) / name, PEERS[name])
        for run in range(args.runs):  # rounds: every system once per round, against drift
            print(f"round {run + 1}/{args.runs}:", end="", flush=True)
            try:
                runs["blpopq"].append(
                    run_blpopq_once(server.url, text, n, Path(tmp) / "blpopq.log", args.stall)
                )
                print(f" blpopq {runs['blpopq'][-1]['wall']:,.0f}/s", end="", flush=True)
            except PeerFailed as exc:
                print(f"\nblpopq failed: {exc}")
                raise
            for name in venvs:
                if "failed" in status[name]:
                    continue
                try:
                    one = run_peer_once(
                        PEERS[name], venvs[name], server.url, Path(tmp) / name, prevs, args.stall
                    )
                    runs.setdefault(name, []).append(one)
                    print(f", {name} {one['wall']:,.0f}/s", end="", flush=True)
                except Exception as exc:  # noqa: BLE001 - a peer that cannot run is a result
                    status[name]["failed"] = _reason(exc)
                    print(f", {name} failed", end="", flush=True)
            print()

    med = {
        name: {m: B.median([r[m] for r in rs]) for m in rs[0]} for name, rs in runs.items() if rs
    }
    ours = med["blpopq"]

    def row(name: str, version: str) -> list[str]:
        m = med[name]
        return [
            name,
            version,
            B.fmt_num(m["wall"]),
            B.spread([r["wall"] for r in runs[name]]),
            B.fmt_num(m["steady"]),
            f"{m['first_done_after']:.2f}",
            f"{m['others_cores']:.2f}",
            B.fmt_ratio(B.ratio(ours["wall"], m["wall"])),
            B.fmt_ratio(B.ratio(ours["steady"], m["steady"])),
        ]

    rows = [row("blpopq", machine.get("blpopq") or "")]
    for name in names:
        info = status[name]
        if "failed" in info or name not in med:
            reason = info.get("failed", "no runs")
            rows.append([name, info.get("version", ""), f"failed: {reason[:90]}"] + [""] * 6)
        else:
            rows.append(row(name, info["version"]))
    B.print_table(
        ["system", "version", "wall tasks/s", "spread", "steady tasks/s", "1st done s",
         "others", "blpopq/peer wall", "blpopq/peer steady"],
        rows,
        title=f"{n:,} no-op tasks, 2 worker processes, one private Redis "
        f"(median of {args.runs} runs; others = cores used by other processes meanwhile)",
    )  # fmt: skip
    print("\nsettings:")
    print("  blpopq: blpopq-daemon --workers 2 --log-level WARNING (defaults otherwise: results")
    print("          kept on {ns}:results, take+settle via Lua, heartbeat thread per worker)")
    for name in names:
        print(f"  {name}: {status[name]['settings']}")
    print(
        "  all peers: hiredis installed; the task does one sha256 and one INCR of a counter on\n"
        "  the same Redis (its 'done' signal: one extra round trip per task that blpopq, whose\n"
        "  result write is its signal, does not pay); logging at WARNING where configurable."
    )
    payload = {
        "benchmark": "bench_peers",
        "tasks": n,
        "workers": 2,
        "runs": args.runs,
        "loadavg_before": load,
        "machine": machine,
        "systems": {
            "blpopq": {"version": machine.get("blpopq"), "runs": runs["blpopq"], "median": ours},
            **{
                name: {
                    **status[name],
                    "runs": runs.get(name, []),
                    "median": med.get(name),
                    "blpopq_over_peer_wall": B.ratio(ours["wall"], med[name]["wall"])
                    if name in med
                    else None,
                    "blpopq_over_peer_steady": B.ratio(ours["steady"], med[name]["steady"])
                    if name in med
                    else None,
                }
                for name in names
            },
        },
    }
    path = B.write_json("bench_peers", payload, args.json)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
