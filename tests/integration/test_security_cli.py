"""`alluse audit verify` against a tampered database, `alluse keys rotate`, and the key file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alluse.cli import main as cli
from alluse.config import get_settings
from alluse.security.keyring import KeyringError, load_keyring, write_key_file
from alluse.services import brokers
from alluse.services.verify import verify
from alluse.store.schema import audit_log, brokerage_accounts
from alluse.views import access as access_view

SECRET = "user=alice;token=s3cr3t-broker-token"


@pytest.fixture
def run(engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:  # type: ignore[type-arg]
    """Run the CLI on the test database, with a key file in the test's directory."""
    # The key file holds the key the fixtures' writes were signed with, so the audit chain stays verifiable.
    write_key_file(tmp_path / "alluse.key", (os.environ["ALLUSE_SECRET_KEY"].encode(),))
    monkeypatch.setenv("ALLUSE_KEY_FILE", str(tmp_path / "alluse.key"))
    monkeypatch.delenv("ALLUSE_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    url = engine.url.render_as_string(hide_password=False)

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        cli.state._engine = None
        result = CliRunner().invoke(cli.app, ["--db", url, *args])
        if cli.state._engine is not None:
            cli.state._engine.dispose()
            cli.state._engine = None
        return result

    yield invoke
    get_settings.cache_clear()


def test_audit_verify_detects_an_edited_and_a_deleted_entry(engine, portfolio, run):  # type: ignore[no-untyped-def]
    brokers.register(engine, "user:alice", "main", ["IBKR:U1"], "reg1")
    brokers.register(engine, "user:alice", "main", ["IBKR:U2"], "reg2")
    brokers.register(engine, "user:alice", "main", ["IBKR:U3"], "reg3")
    ok = run("audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "audit chain intact: 4 entries" in ok.output

    al = audit_log.c
    with engine.begin() as conn:
        original = conn.execute(sa.select(al.result).where(al.seq == 2)).scalar_one()
        conn.execute(audit_log.update().where(al.seq == 2).values(result=original.replace("U1", "U9")))
    edited = run("audit", "verify")
    assert edited.exit_code == 1, edited.output
    assert "entry 2 was altered" in edited.output and "Traceback" not in edited.output

    with engine.begin() as conn:
        conn.execute(audit_log.update().where(al.seq == 2).values(result=original))
    assert run("audit", "verify").exit_code == 0

    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(al.seq == 3))
    deleted = run("audit", "verify")
    assert deleted.exit_code == 1
    assert "entry 3 is missing" in deleted.output

    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(al.seq == 4))
    truncated = run("audit", "verify")
    assert truncated.exit_code == 1 and "entries deleted" in truncated.output


def test_init_creates_the_key_file_owner_only(run, tmp_path):  # type: ignore[no-untyped-def]
    r = run("init", "--name", "keyed")
    assert r.exit_code == 0, r.output
    mode = stat.S_IMODE((tmp_path / "alluse.key").stat().st_mode)
    assert mode == 0o600


def test_a_key_file_readable_by_others_is_refused(run, tmp_path):  # type: ignore[no-untyped-def]
    assert run("init", "--name", "keyed").exit_code == 0
    (tmp_path / "alluse.key").chmod(0o644)
    with pytest.raises(KeyringError, match="readable by others"):
        load_keyring(get_settings())
    r = run("keys", "rotate")
    assert r.exit_code == 1 and "chmod 600" in r.output


def test_keys_rotate_reencrypts_every_credential_and_drops_the_old_key(engine, portfolio, run, tmp_path):  # type: ignore[no-untyped-def]
    assert run("init", "--name", "second").exit_code == 0
    old = load_keyring(get_settings())
    brokers.register(engine, "user:alice", "main", ["IBKR:U1", "IBKR:U2"], "reg")
    brokers.set_credentials(engine, "user:alice", "main", "IBKR:U1", SECRET, "cred1", old)
    brokers.set_credentials(engine, "user:alice", "main", "IBKR:U2", SECRET + "2", "cred2", old)
    with engine.connect() as conn:
        before = dict(
            conn.execute(sa.select(brokerage_accounts.c.number, brokerage_accounts.c.credentials_encrypted)).all()
        )

    r = run("keys", "rotate")
    assert r.exit_code == 0, r.output
    assert "re-encrypted 2 credentials in 1 portfolios" in r.output and SECRET not in r.output

    new = load_keyring(get_settings())
    assert new.keys != old.keys and len(new.keys) == 1
    assert stat.S_IMODE((tmp_path / "alluse.key").stat().st_mode) == 0o600
    with engine.connect() as conn:
        after = dict(
            conn.execute(sa.select(brokerage_accounts.c.number, brokerage_accounts.c.credentials_encrypted)).all()
        )
    assert all(after[n] != before[n] for n in ("U1", "U2"))
    assert brokers.read_credentials(engine, "main", "IBKR:U1", new) == SECRET
    assert brokers.read_credentials(engine, "main", "IBKR:U2", new) == SECRET + "2"
    with pytest.raises(KeyringError):
        brokers.read_credentials(engine, "main", "IBKR:U1", old)
    report = verify(engine)
    assert report.ok, report.problems
    with engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.seq)).scalars().all()
    assert actions[-1] == "keys.rotate"


def test_keys_rotate_with_keys_from_the_environment(engine, portfolio, run, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    # The key the portfolio was created under (its audit key is sealed with it).
    k_old, k_new = (tmp_path / "alluse.key").read_text().strip(), Fernet.generate_key().decode()
    monkeypatch.setenv("ALLUSE_SECRET_KEY", k_old)
    get_settings.cache_clear()
    brokers.register(engine, "user:alice", "main", ["IBKR:U1"], "reg")
    brokers.set_credentials(engine, "user:alice", "main", "IBKR:U1", SECRET, "cred", load_keyring(get_settings()))
    monkeypatch.setenv("ALLUSE_SECRET_KEY", f"{k_new},{k_old}")
    get_settings.cache_clear()
    r = run("keys", "rotate")
    assert r.exit_code == 0 and "remove the older keys" in r.output, r.output
    monkeypatch.setenv("ALLUSE_SECRET_KEY", k_new)
    get_settings.cache_clear()
    assert brokers.read_credentials(engine, "main", "IBKR:U1", load_keyring(get_settings())) == SECRET


def test_user_add_and_grant_from_the_cli(engine, portfolio, run, monkeypatch):  # type: ignore[no-untyped-def]
    from alluse.services import access

    monkeypatch.setenv("ALLUSE_NEW_PASSWORD", "a long enough password")
    r = run("user", "add", "carol")
    assert r.exit_code == 0 and "a long enough password" not in r.output, r.output
    assert run("user", "add", "carol").exit_code == 1  # already exists: one line, no traceback
    r = run("-p", "main", "user", "grant", "carol", "trader")
    assert r.exit_code == 0 and "carol is trader" in r.output, r.output
    who = access.login(engine, "carol", "a long enough password")
    with engine.connect() as conn:
        assert access_view.role_on(conn, who, access_view.portfolio_id_for(conn, "main")) == access.Role.trader
    monkeypatch.setenv("ALLUSE_NEW_PASSWORD", "short")
    r = run("user", "add", "dave")
    assert r.exit_code == 1 and "at least 12 characters" in r.output
