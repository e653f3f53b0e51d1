"""ALLUSE_DATABASE_URL switches every command to PostgreSQL: the same CLI session, on the server."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alluse.cli.main import app, state

pytestmark = pytest.mark.postgres


def test_cli_session_on_postgres_via_the_environment(pg: sa.Engine) -> None:
    url = pg.url.render_as_string(hide_password=False)
    runner = CliRunner()
    env = {"ALLUSE_DATABASE_URL": url, "ALLUSE_PORTFOLIO": "", "COLUMNS": "200"}

    def run(*args: str, code: int = 0) -> str:
        state._engine = None  # each invocation builds its engine from the environment, as a new process would
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    try:
        run("init", "--name", "main")
        run("group", "open", "250,000", "-k", "open")
        run("withdraw", "A1-GEN", "1,000", "-k", "w1")
        out = run("withdraw", "A1-COM", "1", code=1)
        assert "Com-Acc" in out and "Traceback" not in out
        assert "A1-GEN" in run("accounts")
        assert "ok" in run("verify").lower()
    finally:
        if state._engine is not None:
            state._engine.dispose()
        state._engine = None
    with pg.connect() as conn:
        cash = conn.exec_driver_sql("SELECT cash_cents FROM accounts WHERE name = 'A1-GEN'").scalar_one()
        partitions = conn.exec_driver_sql(
            "SELECT count(DISTINCT tableoid::regclass) FROM postings WHERE account_id = "
            "(SELECT id FROM accounts WHERE name = 'A1-GEN')"
        ).scalar_one()
    assert cash == 10_000_000 - 100_000
    assert partitions == 1
