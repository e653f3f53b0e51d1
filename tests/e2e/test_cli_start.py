"""What a start of `alluse` loads: `--help` only Typer and Rich; `accounts` on a database at the newest
schema also SQLAlchemy, but never Alembic, the charts, the web stack or the event client; and, through
the `alluse` script (cli/start.py), neither the other command modules nor pydantic. (How long a start
takes is measured by `alluse bench --only cli`, not here.)"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HEAVY = ("alembic", "matplotlib", "numpy", "fastapi", "starlette", "uvicorn", "nats", "jinja2", "argon2")
# Loaded by every command that touches the database, and by nothing `--help` needs.
DATABASE = ("sqlalchemy", "pydantic_settings", "cryptography", "alluse.store", "alluse.services", "alluse.views")
# What Typer's help formatting would import for Markdown help markup and pretty tracebacks (cli/common.py).
MARKDOWN = ("markdown_it", "pygments")

PROBE = """
import json, sys
from alluse.cli.main import app
try:
    app(sys.argv[1:], prog_name="alluse")
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] if not m.startswith("alluse.") else ".".join(m.split(".")[:2])
                         for m in sys.modules})), file=sys.stderr)
"""


def _loaded(*args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_")}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_loads_neither_the_database_nor_anything_heavy() -> None:
    loaded = _loaded("--help")
    assert "typer" in loaded
    assert not loaded & {*HEAVY, *DATABASE, *MARKDOWN}, loaded & {*HEAVY, *DATABASE, *MARKDOWN}


STAND_INS = """
import sys
import alluse.cli.common
import typer.rich_utils as ru
from typer.models import DeveloperExceptionConfig
assert not {"rich.markdown", "rich.traceback", "markdown_it"} & set(sys.modules)
markdown = ru._make_rich_text(text="# Title", markup_mode="markdown")
try:
    raise ValueError("x")
except ValueError as exc:
    traceback = ru.get_traceback(exc, DeveloperExceptionConfig(), [])
import rich.markdown, rich.traceback
assert type(markdown) is rich.markdown.Markdown, type(markdown)
assert type(traceback) is rich.traceback.Traceback, type(traceback)
"""


def test_help_formatting_imports_markdown_and_tracebacks_only_when_used() -> None:
    subprocess.run([sys.executable, "-c", STAND_INS], capture_output=True, text=True, check=True)


def test_accounts_on_a_current_schema_skips_alembic(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "start.db"
    shutil.copy(sqlite_template, db)
    url = f"sqlite:///{db}"
    subprocess.run(  # a portfolio to show
        [sys.executable, "-c", "from alluse.cli.main import app; app(prog_name='alluse')", "--db", url, "init"],
        capture_output=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    loaded = _loaded("--db", url, "accounts")
    assert {"sqlalchemy", "alluse.views"} <= loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


SCRIPT_PROBE = """
import json, sys
sys.argv[0] = "alluse"
from alluse.cli.start import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("alluse.cli.", "pydantic", "typer._adapters")))),
      file=sys.stderr)
"""


def test_the_script_loads_only_the_commands_module_and_no_pydantic(tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "start.db"
    shutil.copy(sqlite_template, db)
    url = f"sqlite:///{db}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_")}
    subprocess.run([sys.executable, "-c", SCRIPT_PROBE, "--db", url, "init"], env=env, capture_output=True, check=True)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT_PROBE, "--db", url, "accounts"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Portfolio" in done.stdout  # the command ran
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert loaded == {"alluse.cli.start", "alluse.cli.common", "alluse.cli.render", "alluse.cli.groups"}, loaded


def test_without_db_the_default_database_is_found_without_pydantic(tmp_path: Path, sqlite_template: Path) -> None:
    """No --db and no ALLUSE_DATABASE_URL: ./alluse.db in the working directory, as Settings has it."""
    shutil.copy(sqlite_template, tmp_path / "alluse.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_")}
    run = functools.partial(subprocess.run, env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    run([sys.executable, "-c", SCRIPT_PROBE, "init", "--name", "home"])
    done = run([sys.executable, "-c", SCRIPT_PROBE, "-p", "home", "accounts"])
    assert "home" in done.stdout  # the portfolio made in ./alluse.db is the one shown
    assert not any(m.startswith("pydantic") for m in json.loads(done.stderr.strip().splitlines()[-1]))
