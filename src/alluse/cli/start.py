"""What the `alluse` script runs: the app with only the command module the command line names.

Typer turns every registered command into a Click command, signature and all, on every start; with
all twelve command modules that is a tenth of a short command's time. So when the first word after
the global options is a known command, only its module is imported (it registers its commands on
`app` as usual). Anything else (`--help`, no command, an unknown or misspelt one, shell completion)
imports them all through `cli/main.py`, so the listing, the suggestions and the completions are
what they always were. `tests/unit/test_cli_start_modules.py` checks the table against the app."""

from __future__ import annotations

import gc
import os
import sys
import threading
from importlib import import_module

# The command, or command group, each module registers at the top level.
MODULE_OF = {
    **dict.fromkeys(("init", "use", "demo", "bench", "verify", "schema-docs", "serve", "keys", "audit"), "admin"),
    **dict.fromkeys(("order", "broker", "import", "reconcile"), "brokers"),
    **dict.fromkeys(("deposit", "withdraw", "transfer", "reverse"), "cash"),
    **dict.fromkeys(("alerts", "events", "webhook", "marks"), "events"),
    **dict.fromkeys(("accounts", "group", "config"), "groups"),
    "journal": "journal",
    **dict.fromkeys(("lifecycle", "tree"), "lifecycle"),
    "project": "project",
    "report": "reports",
    "tax": "tax",
    **dict.fromkeys(("fill", "import-fills", "mark", "positions", "check-trade", "week"), "trades"),
    "user": "users",
}
# The global options (cli/common.py's callback) that take a value, and those that do not.
_VALUED = ("--db", "--portfolio", "-p")
_FLAGS = ("--install-completion", "--show-completion")


def command_word(args: list[str]) -> str | None:
    """The command the arguments name after the global options, or None when they name none or
    when something other than a known global option comes first."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _VALUED:
            i += 2
        elif arg.startswith(("--db=", "--portfolio=")) or (arg.startswith("-p") and not arg.startswith("--")):
            i += 1
        elif arg in _FLAGS:
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            return arg
    return None


def main() -> None:
    # A short command creates some 50,000 objects the cyclic collector tracks (modules, classes,
    # Typer's commands, SQLAlchemy's statements), nearly all alive until it exits: during `alluse
    # accounts` the collector would run about 130 times, free a few hundred objects and take 5-7 % of
    # the time (docs/benchmarks.md). So it starts a second into a command: `serve`, `bench`, a long
    # sweep or import collect as usual from then on, and a shorter command's garbage goes with it.
    gc.disable()
    later = threading.Timer(1.0, gc.enable)
    later.daemon = True
    later.start()
    word = command_word(sys.argv[1:])
    module = MODULE_OF.get(word or "")
    if module is None or any(k.startswith("_ALLUSE_COMPLETE") for k in os.environ):
        import_module("alluse.cli.main")
    else:
        import_module(f"alluse.cli.{module}")
    from alluse.cli.common import app

    app(prog_name="alluse")
