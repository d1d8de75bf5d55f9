"""Least privilege: the ACL rules each role needs, derived from one table of what it runs.

``STEPS`` lists every way blpopq reaches Redis: the commands a step sends itself and the
scripts it runs. Redis checks each command a script calls against the caller's ACL too, so a
script's commands are read from its Lua text (protocol.SCRIPTS, the same text Redis runs):
a command added to a script reaches the rules without anyone editing them. ``ROLES`` names
the steps of each role. A step that blpopq takes but can do without (the daemon's look at
``maxmemory-policy``, which it skips where CONFIG is refused) is left to ``admin``.

Rules are the words after ``ACL SETUSER name on >password``: keys ``~{NS}:*`` only (every
key of a namespace has that prefix, keyspace.py), no pub/sub channels, no command but those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .keyspace import Keyspace
from .protocol import script_source


@dataclass(frozen=True)
class Step:
    """Commands sent outside scripts (ACL names: ``blpop``, ``client|setname``), scripts
    run by name (protocol.SCRIPTS), and Redis 7 functions called with FCALL (none yet)."""

    commands: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()


#: Every way blpopq reaches Redis, and what each sends (the module or call that does it).
STEPS: dict[str, Step] = {
    # connection.check_reachable, redis-py's health checks; SELECT for a URL naming a DB;
    # on a Redis Cluster, CLUSTER SLOTS asks where the namespace's slot is (cluster.py).
    "connect": Step(("ping", "select", "cluster|slots")),
    # A script is sent by SHA; after a restart emptied the cache, redis-py loads it again.
    "run scripts": Step(("evalsha", "script|load")),
    # A script queued in a MULTI (dead requeue): redis-py checks the cache before EXEC.
    "run scripts in a transaction": Step(("script|exists", "multi", "exec")),
    "enqueue": Step(scripts=("enqueue",)),  # producer.enqueue
    "read the last batch": Step(("get",)),  # --batch last, cancel last
    # worker.py: CLIENT SETNAME on every connection, so CLIENT LIST shows who waits where.
    "name the connection": Step(("client|setname",)),
    "notice a Redis restarted empty": Step(("info", "exists")),  # dataloss.py
    "join and beat": Step(scripts=("heartbeat", "session")),  # heartbeat.py
    "take and settle": Step(
        # BLPOP when every tier is empty; claims_of after a lost reply (and the registered
        # tasks its records name, as the reaper's recover() reads them too)
        ("blpop", "hgetall", "hmget"),
        ("take", "claim", "finish", "settle_result", "settle_dead", "requeue"),
    ),
    "take under the aging policy": Step(scripts=("take_aging", "finish_aging")),
    "hold the fairness policy": Step(scripts=("policy",)),  # daemon and run, at start
    # recovery.py, from a heartbeat (one pass per period: a SET NX lock) or the supervisor.
    "reap": Step(("set",), ("reap", "requeue", "settle_dead", "drop_claim")),
    "wake idle workers": Step(("client|list", "client|unblock")),  # supervisor on stop
    "export metrics": Step(("llen",)),  # metrics.py: queue depths at each scrape
    "read results": Step(("llen",), ("results", "read_dead")),  # collector.py; --drain
    "snapshot": Step(  # operations.snapshot, in one MULTI/EXEC
        (
            "multi",
            "exec",
            "time",
            "llen",
            "lindex",
            "lrange",
            "hgetall",
            "hlen",
            "zrange",
            "get",
            "hget",
            "hmget",  # after it: the registered tasks that compact claims name
        )
    ),
    "read dead letters": Step(("lrange",)),  # dead list, dead show
    "count open tasks": Step(("multi", "exec", "hmget")),  # run: what is left of its batch
    "cancel": Step(("hscan", "zmscore"), ("cancel",)),  # cancelling.py
    "purge dead letters": Step(("multi", "exec", "lrem")),
    "requeue dead letters": Step(
        ("watch", "unwatch", "lpos", "hexists", "type", "multi", "exec", "lrem"), ("enqueue",)
    ),
    "check the eviction policy": Step(("config|get",)),  # daemon start; skipped if refused
    # worker.py, cli/run.py: the lossless enqueue offered to other clients as FCALL
    # blpopq_enqueue (wire.py). Redis 6.2 answers "unknown command", which is no refusal.
    "load the function library": Step(("function|load",)),
    # replication.py: WAIT after each enqueue chunk, result and dead letter (--wait-replicas).
    "confirm replication": Step(("wait",)),
}

_DAEMON = (
    "connect", "run scripts", "name the connection", "notice a Redis restarted empty",
    "join and beat", "take and settle", "reap", "wake idle workers", "export metrics",
    "load the function library", "take under the aging policy", "hold the fairness policy",
    "confirm replication",
)  # fmt: skip
_COLLECTOR = (
    "connect", "run scripts", "read the last batch", "read results", "snapshot",
    "read dead letters",
)  # fmt: skip

#: The steps of each role: producer (produce), daemon (workers, reaper, supervisor),
#: collector (collect with --drain, status, dead list/show), admin (everything).
ROLES: dict[str, tuple[str, ...]] = {
    "producer": ("connect", "run scripts", "enqueue", "confirm replication"),
    "daemon": _DAEMON,
    "collector": _COLLECTOR,
    "admin": tuple(STEPS),
}

_CALL = re.compile(r"""redis\.p?call\(\s*(['"])([A-Za-z]+)\1""")
_ANY_CALL = re.compile(r"redis\.p?call\(")


def script_commands(name: str) -> frozenset[str]:
    """The commands script ``name`` calls, lower-case, read from its text. Every call names
    its command as a literal: one that does not (a variable) would hide a command from the
    rules, so it is refused here and a unit test keeps every script readable."""
    source = script_source(name)
    found = [m.group(2).lower() for m in _CALL.finditer(source)]
    if len(found) != len(_ANY_CALL.findall(source)):
        raise ValueError(f"script {name}: a redis.call whose command is not a literal")
    return frozenset(found)


def role_commands(role: str) -> list[str]:
    """Every command ``role`` needs, sorted: ``blpop``, ``client|setname``, ..."""
    commands: set[str] = set()
    for step_name in ROLES[role]:
        step = STEPS[step_name]
        commands.update(step.commands)
        for script in step.scripts:
            commands.update(script_commands(script))
        if step.functions:
            commands.add("fcall")
    return sorted(commands)


def acl_rules(role: str, namespace: str) -> str:
    """The words that follow ``ACL SETUSER name on >password`` for ``role`` on ``namespace``."""
    keys = Keyspace(namespace)  # validates the namespace (no glob characters)
    pattern = f"~{{{keys.namespace}}}:*"
    allowed = " ".join(f"+{command}" for command in role_commands(role))
    return f"resetkeys resetchannels {pattern} -@all {allowed}"
