"""The README's tour, run as a new user would: every block marked `<!-- tour -->`, in order, in a fresh
directory where the demo portfolio was built first (what `make run` leaves behind). Lines marked
`# refused` must fail with one line on stderr and exit 1; every other line must succeed."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alluse.cli.main import app, state
from alluse.config import get_settings

README = Path(__file__).resolve().parents[2] / "README.md"
MARK = "<!-- tour -->"


def tour_commands(text: str) -> list[tuple[str, list[str], bool]]:
    """(line, alluse arguments, refused?) for every command of the marked blocks, in order."""
    out: list[tuple[str, list[str], bool]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        assert lines[i + 1].startswith("```"), f"README line {i + 2}: a code block must follow {MARK}"
        for cmd in lines[i + 2 :]:
            if cmd.startswith("```"):
                break
            if not cmd.strip() or cmd.startswith("alias "):
                continue
            words = shlex.split(cmd, comments=True)
            assert words[0] == "alluse", f"tour lines are alluse commands: {cmd!r}"
            out.append((cmd, words[1:], cmd.partition(" # ")[2].startswith("refused")))
    return out


def test_the_parser_finds_the_tour_and_its_refusals() -> None:
    commands = tour_commands(README.read_text())
    assert len(commands) >= 30
    refused = [line for line, _, r in commands if r]
    assert len(refused) >= 4 and all("# refused" in line for line in refused)


def test_readme_tour_runs_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("ALLUSE_DATABASE_URL", "ALLUSE_PORTFOLIO", "ALLUSE_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    # Settings an earlier test cached (its database, its key) are not this new user's.
    get_settings.cache_clear()
    runner = CliRunner()

    def alluse(args: list[str]):  # type: ignore[no-untyped-def]
        try:
            return runner.invoke(app, args, env={"COLUMNS": "100"})
        finally:
            if state._engine is not None:
                state._engine.dispose()

    assert alluse(["demo"]).exit_code == 0  # what `make run` builds first
    for line, args, refused in tour_commands(README.read_text()):
        result = alluse(args)
        if refused:
            assert result.exit_code == 1, f"{line}\n{result.output}"
            errors = [x for x in result.stderr.splitlines() if x.strip()]
            assert len(errors) == 1 and errors[0].startswith("error: "), f"{line}\n{result.stderr}"
        else:
            assert result.exit_code == 0, f"{line}\n{result.output}"
    get_settings.cache_clear()
    assert (tmp_path / "alluse.db").exists() and (tmp_path / "monthly.png").stat().st_size > 0
