"""Command-line entry points: blpopq {produce,daemon,collect,run,status,dead,config} and the
blpopq-{produce,daemon,collect,run,status} aliases.

Only this package prints, configures logging, reads the environment and picks exit codes
(see errors.py); everything it calls takes a Settings and returns values. Its layout:

    parser.py   the argparse parser, the option groups commands share, options -> Settings
    helptext.py what --help says: summaries, descriptions, examples, the file format
    entry.py    main() and the console scripts; exception -> exit status and stderr line
    common.py   what commands share: connect to Redis, read an instruction file, count signals
    progress.py the progress display while run and collect --expect wait
    produce.py  produce              run.py      daemon and run (processes: ../pool.py)
    runbatch.py run's life: serve one batch, end on its last outcome, a timeout or Ctrl-C
    collect.py  collect              status.py   status
    dead.py     dead list|show|requeue|purge
    config.py   config

A command group is one module with ``register(commands)``, which adds its subcommands and
sets each one's ``handler``; adding a group is that module plus its name in entry.GROUPS.
Imports go one way: entry -> command modules -> common, parser -> the library.
"""

from .entry import (
    build_parser,
    collect_main,
    daemon_main,
    main,
    produce_main,
    run_main,
    status_main,
)

__all__ = [
    "build_parser",
    "collect_main",
    "daemon_main",
    "main",
    "produce_main",
    "run_main",
    "status_main",
]
