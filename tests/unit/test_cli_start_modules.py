"""The `alluse` script imports only the module of the command it is asked for (cli/start.py): its table
must name, for every top-level command and group of the full app, the module that registers it."""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from alluse.cli.common import app
from alluse.cli.main import app as full_app
from alluse.cli.start import MODULE_OF, command_word

ROOT = Path(__file__).resolve().parents[2]


def _registered() -> dict[str, str]:
    """Top-level name -> the cli module that registers it, read off the fully imported app."""
    assert full_app is app
    modules = {m: importlib.import_module(f"alluse.cli.{m}") for m in set(MODULE_OF.values())}
    found: dict[str, str] = {}
    for command in app.registered_commands:
        assert command.callback is not None
        name = command.name or command.callback.__name__.replace("_", "-")
        found[name] = command.callback.__module__.rsplit(".", 1)[1]
    for group in app.registered_groups:
        owners = [m for m, mod in modules.items() if any(v is group.typer_instance for v in vars(mod).values())]
        assert len(owners) == 1, (group.name, owners)
        assert group.name is not None
        found[group.name] = owners[0]
    return found


def test_the_table_names_each_commands_own_module() -> None:
    assert _registered() == MODULE_OF


def test_the_script_runs_the_lazy_start() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["alluse"] == "alluse.cli.start:main"


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["accounts"], "accounts"),
        (["--db", "sqlite:///x.db", "-p", "demo", "accounts", "--json"], "accounts"),
        (["--db=sqlite:///x.db", "--portfolio=demo", "group", "open", "1"], "group"),
        (["-pdemo", "tax", "--help"], "tax"),
        (["--portfolio", "accounts", "deposit"], "deposit"),  # a portfolio may be called "accounts"
        ([], None),
        (["--help"], None),
        (["--db"], None),
        (["--unknown-option", "accounts"], None),
        (["--show-completion"], None),
    ],
)
def test_command_word_skips_the_global_options(args: list[str], word: str | None) -> None:
    assert command_word(args) == word


def _callbacks(app: typer.Typer) -> Iterator[Callable[..., Any]]:
    """Every command function and group callback of `app` and of its groups."""
    if app.registered_callback and app.registered_callback.callback:
        yield app.registered_callback.callback
    for command in app.registered_commands:
        assert command.callback is not None
        yield command.callback
    for group in app.registered_groups:
        assert group.typer_instance is not None
        yield from _callbacks(group.typer_instance)


def test_command_annotations_are_evaluated_once_at_import() -> None:
    """Typer reads each command's signature four times per start; a string annotation (postponed
    annotations) would be compiled and evaluated every time (cli/common.py)."""
    callbacks = list(_callbacks(full_app))
    strings = [
        f"{fn.__module__}.{fn.__name__}: {name}"
        for fn in callbacks
        for name, annotation in fn.__annotations__.items()
        if isinstance(annotation, str)
    ]
    assert len(callbacks) > 60
    assert not strings, strings


def test_the_cyclic_collector_waits_a_second_into_a_command() -> None:
    """A short command exits before the collector would run; a long one (`serve`) collects as usual."""
    import subprocess
    import sys

    probe = (
        "import gc, sys, time\n"
        "sys.argv = ['alluse', '--help']\n"
        "from alluse.cli import start\n"
        "try:\n"
        "    start.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.isenabled(), file=sys.stderr)\n"
        "time.sleep(1.5)\n"
        "print(gc.isenabled(), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stderr.split() == ["False", "True"]
