"""What ``--help`` says: the top level's and each command's summary, description and
examples, in one place so they read in one voice. A command's module passes
``**about("name")`` to ``add_parser``; the option texts stay beside their options."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

#: Keeps the line breaks of descriptions and examples (argparse would refill them).
FORMATTER = argparse.RawDescriptionHelpFormatter

TOP = """\
blpopq: a priority task queue on Redis lists, with a pool of worker daemons.

Requests for proof-of-work come from an instruction file, in three tiers served in order
(vip before alto before comun). `produce` enqueues a file, `daemon` runs the workers that
take requests in priority order, `collect` prints who was served, in which order, with what.
`run` does all three for one file, on a private Redis of its own."""

TOP_EPILOG = """\
first steps:
  blpopq run examples/instrucciones.txt    all at once, no Redis needed

with a Redis of your own (REDIS_URL, default redis://localhost:6379):
  blpopq daemon --workers 8                serve until SIGTERM or Ctrl-C
  blpopq produce instrucciones.txt         enqueue a file; prints its batch
  blpopq collect --expect 30 --timeout 60  the attention order once 30 are done
  blpopq status                            what the queue is doing now

`blpopq COMMAND --help` tells more. produce, daemon, collect, run and status
are also installed as blpopq-produce, blpopq-daemon, ...

exit status: 0 done, 1 a task failed (run), 2 bad input or options, 3 Redis
unreachable, 4 timed out, 5 refused by Redis, 130 interrupted."""

FILE_FORMAT = """\
instruction file: UTF-8, one request per line (blank lines, # comments ignored)
  <tier> <client> mine   <prev_hash> <difficulty> [<count>]
  <tier> <client> verify <prev_hash> <nonce> <difficulty>
  tier        vip, alto or comun (any case; común too)
  client      1-64 characters, no whitespace
  prev_hash   64 hexadecimal digits
  difficulty  leading zero bits the hash must have (0 to --max-difficulty)
  count       blocks to mine, each from the previous hash: 1-1000 (default 1)
  nonce       the nonce to check: 0 <= nonce < 2**64
JSON Lines instead: one object per line, keys tier, client, op, prev,
difficulty, count, nonce (read as such for a .jsonl name or a first line
starting with '{')."""

_COMMANDS: dict[str, dict[str, str]] = {
    "produce": {
        "help": "validate an instruction file and enqueue its requests",
        "description": """\
Validate the whole instruction file, then enqueue every request in priority order, in one
atomic step per --chunk-size requests. If any line is bad, every bad line is reported as
FILE:LINE: what is wrong, nothing is enqueued and the exit status is 2. On success, prints
`enqueued N requests (vip=.. alto=.. comun=..) batch=ID`.""",
        "epilog": FILE_FORMAT
        + """

examples:
  blpopq produce examples/instrucciones.txt
  blpopq produce requests.jsonl --namespace orders
  generate-requests | blpopq produce -     standard input, text or JSON Lines""",
    },
    "daemon": {
        "help": "run the worker pool until SIGTERM or Ctrl-C",
        "description": """\
Run a pool of worker processes that take requests from Redis in priority order, run them
and write one result each. A worker that dies is restarted; its task goes back to the head
of its tier. The first SIGTERM or Ctrl-C lets running tasks finish within --grace seconds
(or puts them back); a second one puts them back at once.""",
        "epilog": """\
examples:
  blpopq daemon --workers 8
  REDIS_URL=redis://:secret@redis.internal:6379/0 blpopq daemon -w 8
  blpopq daemon --keep-results 1000 --metrics-port 9108""",
    },
    "run": {
        "help": "produce, work and collect one file, then exit",
        "description": """\
Enqueue one instruction file, serve it with a pool of workers, wait for every request's
outcome and print the attention order (stdout) and a summary per tier (stderr). With no
--redis-url or REDIS_URL, it starts a private redis-server for the run and removes it at
the end. Exit status 1 if a task failed or was dead-lettered.""",
        "epilog": FILE_FORMAT
        + """

examples:
  blpopq run examples/instrucciones.txt
  blpopq run requests.jsonl --workers 2 --format csv > results.csv
  blpopq run instrucciones.txt --redis-url redis://localhost:6379""",
    },
    "collect": {
        "help": "print the attention order of the results",
        "description": """\
Print the results in attention order: who was served, in which order, with what. Reading
deletes nothing (unless --drain). With --batch, only that batch's results count, numbered
1..N in the table and csv; without it, every result in the namespace counts (old batches'
too), numbered by the namespace-wide attention position.""",
        "epilog": """\
examples:
  blpopq collect --batch last                the batch produced last, so far
  blpopq collect --batch last --expect 30    wait for its 30 outcomes, print
  blpopq collect --batch ID --expect 30 --timeout 600
  blpopq collect --follow --format jsonl     print results as they arrive
  blpopq collect --drain --format csv >> all.csv   print, then remove""",
    },
    "status": {
        "help": "queue lengths and ages, tasks in flight, workers, dead letters, rate",
        "description": """\
What the queue is doing now, read in one atomic snapshot on Redis's clock: per tier the
number waiting and the age of the oldest; tasks in flight and their workers; workers and
their leases; results, dead letters and the recent rate.""",
        "epilog": """\
examples:
  blpopq status
  blpopq status --watch 5                 refresh every 5 s until Ctrl-C
  blpopq status --json | jq .queued""",
    },
    "cancel": {
        "help": "cancel the waiting tasks of a batch (running ones finish)",
        "description": """\
End every task of BATCH (or of every batch, with --all) that is still waiting in its tier
as a result with status `cancelled`, so each task still has exactly one outcome and whoever
waits for the batch finishes. Running tasks, and tasks a worker has just popped, finish
normally. Nothing else is touched. Prints how many were cancelled; an unknown batch cancels
0 (exit 0).""",
        "epilog": """\
examples:
  blpopq cancel 20261123T150333-1a2b3c    the batch id produce printed
  blpopq cancel last                      the batch produced most recently
  blpopq cancel --all --namespace orders  every waiting task in a namespace""",
    },
    "dead": {
        "help": "list, show, requeue or purge dead letters",
        "description": """\
Dead letters are tasks that will not run: undecodable items, or tasks whose worker died
--max-deaths times while running them. Name a letter by its task id, or by @N as
`dead list` numbers them (the only handle on a letter without an id).""",
        "epilog": """\
examples:
  blpopq dead list
  blpopq dead show @1
  blpopq dead requeue 20261123T150333-1a2b3c.7
  blpopq dead purge --all""",
    },
    "schema": {
        "help": "print the wire format: JSON Schemas, the enqueue for other clients",
        "description": """\
Print what a producer or reader in another language needs (README "Wire format"): the JSON
Schema of a task on a tier list, of a result or of a dead letter; or the Lua of the
lossless enqueue, as a script for EVAL (Redis 6.2) or as the function library that the
daemon loads for FCALL blpopq_enqueue (Redis 7 and later).""",
        "epilog": """\
examples:
  blpopq schema task > task.schema.json
  blpopq schema result
  redis-cli EVAL "$(blpopq schema script)" 5 {blpopq}:vip {blpopq}:queued:vip \\
      {blpopq}:seq:vip {blpopq}:tasks {blpopq}:inflight vip '{"client":"a", ...}'
  blpopq schema library | redis-cli -x FUNCTION LOAD REPLACE""",
    },
    "web": {
        "help": "serve a live dashboard of the namespace in the browser",
        "description": """\
Serve a live dashboard of one namespace at http://HOST:PORT/: per tier the number waiting
and the age of the oldest, tasks in flight, workers by host with their leases, the recent
rate, the timeline of the latest batch and the dead letters, refreshed every second (one
Redis reading a second however many browsers watch). Read-only unless given a token; then
the page can requeue or purge dead letters and cancel the batch, sending the token. Listens
on 127.0.0.1 by default; any other address needs a token. Needs blpopq[web].""",
        "epilog": """\
examples:
  blpopq web                               http://127.0.0.1:8765/, read-only
  BLPOPQ_WEB_TOKEN=$(openssl rand -hex 16) blpopq web --port 9000
  blpopq web --namespace orders --redis-url redis://redis.internal:6379""",
    },
    "acl": {
        "help": "print the ACL rules a role needs on a namespace, and no more",
        "description": """\
Print on one line the rules that follow `ACL SETUSER name on >password` for a user of
ROLE: keys {NS}:* only, no channels, and only the commands that role sends (scripts
included). producer: produce. daemon: the workers and the reaper. collector: collect
(--drain too), status, dead list and show. admin: everything (run, dead requeue and
purge, cancel). Connects to nothing.""",
        "epilog": """\
examples:
  blpopq acl daemon --namespace orders
  redis-cli ACL SETUSER w on '>pw' $(blpopq acl daemon --namespace orders)""",
    },
    "config": {
        "help": "print the effective configuration and where each value comes from",
        "description": """\
Print every setting, its effective value (passwords masked) and where it came from: a
flag, an environment variable, the --config file, or the default. Flags win over the
environment, which wins over the file.""",
        "epilog": """\
examples:
  blpopq config
  blpopq config --config /etc/blpopq/blpopq.toml --workers 4""",
    },
}


#: Prose is refilled to this width, so help reads on an 80-column terminal; examples and the
#: file format are laid out by hand within it.
WIDTH = 78


def refill(text: str) -> str:
    """Each paragraph of ``text`` refilled to WIDTH columns."""
    paragraphs = (" ".join(p.split()) for p in text.split("\n\n"))
    return "\n\n".join(textwrap.fill(p, WIDTH) for p in paragraphs)


def about(command: str) -> dict[str, Any]:
    """``add_parser`` keywords for ``command``: help, description, epilog, formatter."""
    texts = _COMMANDS[command]
    return {**texts, "description": refill(texts["description"]), "formatter_class": FORMATTER}
