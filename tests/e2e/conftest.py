"""The `alluse` command line driven in-process against a fresh SQLite file."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alluse.cli.main import app
from alluse.store.db import make_engine


@pytest.fixture
def cli_db(tmp_path: Path, sqlite_template: Path) -> Callable[..., Any]:
    """`run(*args, ok=True)` invokes `alluse --db <fresh file> *args`; `run.engine` reads the same file.
    A portfolio "main" exists."""
    db = tmp_path / "cli.db"
    shutil.copy(sqlite_template, db)
    url = f"sqlite:///{db}"
    runner = CliRunner()

    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, ["--db", url, *args], env={"ALLUSE_PORTFOLIO": "", "COLUMNS": "200"})
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run.engine = make_engine(url)  # type: ignore[attr-defined]
    run("init", "--name", "main")
    return run
