"""`alluse user list` and `alluse user password` on SQLite and PostgreSQL: a reset voids the user's
tokens, and the new password is the one that logs in."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alluse.cli import main as cli
from alluse.domain.errors import Unauthenticated
from alluse.services import access
from alluse.views import access as access_view
from tests.conftest import db_state


@pytest.fixture
def run(engine: sa.Engine):  # type: ignore[no-untyped-def]
    url = engine.url.render_as_string(hide_password=False)

    def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        cli.state._engine = None
        result = CliRunner().invoke(cli.app, ["--db", url, *args], env={"COLUMNS": "200", **(env or {})})
        if cli.state._engine is not None:
            cli.state._engine.dispose()
            cli.state._engine = None
        return result

    return invoke


def test_user_list_and_password_reset(engine, run):  # type: ignore[no-untyped-def]
    access.create_user(engine, "olivia", "the first password", is_admin=True)
    access.create_user(engine, "tom", "another password")
    listed = run("user", "list")
    assert listed.exit_code == 0 and re.search(r"olivia\s+│\s+yes", listed.output) and "tom" in listed.output
    with engine.connect() as conn:
        before = access_view.token_version(conn, 1)

    out = run("user", "password", "olivia", "--generate")
    assert out.exit_code == 0, out.output
    password = re.search(r"password (\S+) — shown once", out.output).group(1)
    assert access.login(engine, "olivia", password).name == "olivia"
    with pytest.raises(Unauthenticated):
        access.login(engine, "olivia", "the first password")
    with engine.connect() as conn:
        assert access_view.token_version(conn, 1) == before + 1  # every token issued before is void

    out = run("user", "password", "tom", env={"ALLUSE_NEW_PASSWORD": "set from the environment"})
    assert out.exit_code == 0 and access.login(engine, "tom", "set from the environment").name == "tom"


def test_bad_resets_are_one_line_and_change_nothing(engine, run):  # type: ignore[no-untyped-def]
    access.create_user(engine, "olivia", "the first password")
    before = db_state(engine)
    for args, words in (
        (("user", "password", "nobody", "--generate"), "no user 'nobody'"),
        (("user", "password", "olivia"), "at least 12 characters"),
    ):
        out = run(*args, env={"ALLUSE_NEW_PASSWORD": "short"})
        assert out.exit_code == 1 and words in out.output and "Traceback" not in out.output, out.output
    assert db_state(engine) == before
