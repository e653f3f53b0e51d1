"""The keyed audit chain: truncation, rewriting, foreign keys, exported heads, and rows bound to entries."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from alluse.cli import main as cli
from alluse.domain.audit import entry_hash, entry_mac, timestamp_text
from alluse.security.keyring import Keyring
from alluse.services import access, cash, groups
from alluse.services.verify import Head, verify
from alluse.store.schema import accounts, audit_log, events, portfolios, postings, system_audit, transfers, users


@pytest.fixture
def book(engine: sa.Engine, portfolio: str) -> sa.Engine:
    groups.open_group(engine, "t", portfolio, "g1", groups.group_opening(10_000_000))
    cash.move_cash(engine, "t", portfolio, [("d1", cash.deposit("A1-GEN", 50_000))])
    cash.move_cash(engine, "t", portfolio, [("d2", cash.deposit("A1-GEN", 70_000))])
    assert verify(engine).ok, verify(engine).problems
    return engine


@pytest.fixture
def run(engine: sa.Engine) -> Iterator[Any]:
    url = engine.url.render_as_string(hide_password=False)

    def invoke(*args: str) -> Any:
        cli.state._engine = None
        result = CliRunner().invoke(cli.app, ["--db", url, *args])
        if cli.state._engine is not None:
            cli.state._engine.dispose()
            cli.state._engine = None
        return result

    yield invoke


def _entries(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()


def _wind_back(conn: sa.Connection, last: Any, before: Any) -> None:
    conn.execute(audit_log.delete().where(audit_log.c.seq == last.seq))
    conn.execute(portfolios.update().values(audit_seq=before.seq, audit_head=before.hash))


def test_truncating_the_last_entry_and_winding_back_the_head_is_caught(book: sa.Engine) -> None:
    *_, before, last = _entries(book)
    with book.begin() as conn:
        _wind_back(conn, last, before)
    problems = verify(book).problems
    # The chain itself is consistent again, but the rows the removed entry wrote are now nobody's.
    assert any("postings row" in p and "not written through the audit chain" in p for p in problems), problems
    assert any("transfers row" in p for p in problems), problems


def test_truncating_a_whole_unit_of_work_is_caught_against_an_exported_head(book: sa.Engine) -> None:
    head = verify(book).heads[0]
    *_, before, last = _entries(book)
    with book.begin() as conn:
        _wind_back(conn, last, before)
        # ... and its rows, and the cached balances put back: nothing inside the database disagrees.
        tid = conn.execute(sa.select(sa.func.max(transfers.c.id))).scalar_one()
        gone = conn.execute(events.delete().where(events.c.audit_seq == last.seq)).rowcount
        conn.execute(portfolios.update().values(event_seq=portfolios.c.event_seq - gone))
        conn.execute(postings.delete().where(postings.c.transfer_id == tid))
        conn.execute(transfers.delete().where(transfers.c.id == tid))
        conn.execute(
            accounts.update().where(accounts.c.name == "A1-GEN").values(cash_cents=accounts.c.cash_cents - 70_000)
        )
        conn.execute(
            accounts.update()
            .where(accounts.c.name == "A1-GEN")
            .values(base_capital_cents=accounts.c.base_capital_cents - 70_000)
        )
        conn.execute(
            accounts.update().where(accounts.c.name == "ext:bank").values(cash_cents=accounts.c.cash_cents + 70_000)
        )
    assert verify(book).ok, verify(book).problems  # undetectable from inside: that is what the head is for
    problems = verify(book, expect=[head]).problems
    assert any("truncated" in p for p in problems), problems


def test_a_rewritten_and_rehashed_chain_is_caught(book: sa.Engine) -> None:
    """An attacker without the key edits an entry and recomputes every later MAC under a key of their
    own (and, separately, as plain SHA-256 entries): neither verifies."""
    entries = _entries(book)
    forged_key = hashlib.sha256(b"guess").digest()
    for scheme in ("hmac", "sha256"):
        with book.begin() as conn:
            prev = entries[0].prev_hash
            for e in entries:
                result = e.result.replace("70000", "7000000") if e.seq == entries[-1].seq else e.result
                at = timestamp_text(e.at)
                fields = (e.seq, at, e.actor, e.action, e.idempotency_key, e.input_digest, result, e.override_reason)
                if scheme == "hmac":
                    mac = entry_mac(forged_key, e.key_id, prev, *fields, e.rows)
                    key_id = e.key_id
                else:
                    mac, key_id = entry_hash(prev, *fields), None
                conn.execute(
                    audit_log.update()
                    .where(audit_log.c.seq == e.seq)
                    .values(result=result, prev_hash=prev, hash=mac, key_id=key_id)
                )
                prev = mac
            conn.execute(portfolios.update().values(audit_head=prev))
        problems = verify(book).problems
        assert any("was altered" in p or "not keyed" in p for p in problems), (scheme, problems)
        with book.begin() as conn:  # put the genuine chain back for the next scheme
            for e in entries:
                conn.execute(
                    audit_log.update()
                    .where(audit_log.c.seq == e.seq)
                    .values(result=e.result, prev_hash=e.prev_hash, hash=e.hash, key_id=e.key_id)
                )
            conn.execute(portfolios.update().values(audit_head=entries[-1].hash))
        assert verify(book).ok


def test_entries_record_their_key_and_a_foreign_keyring_verifies_nothing(book: sa.Engine) -> None:
    entries = _entries(book)
    assert {e.key_id for e in entries} != {None} and len({e.key_id for e in entries}) == 1
    assert all(len(e.hash) == 64 for e in entries)
    stranger = Keyring((Fernet.generate_key(),), "test")
    problems = verify(book, keyring=stranger).problems
    assert any("cannot be unsealed" in p for p in problems), problems
    assert any("neither the keyring nor audit_keys holds" in p for p in problems), problems


def test_the_mac_is_keyed(book: sa.Engine) -> None:
    """The stored MAC is HMAC-SHA-256 over the entry: a plain SHA-256 of the same material differs."""
    e = _entries(book)[-1]
    assert e.hash != entry_hash(
        e.prev_hash, e.seq, timestamp_text(e.at), e.actor, e.action, e.idempotency_key, e.input_digest, e.result, None
    )
    assert len(bytes.fromhex(e.hash)) == hmac.new(b"k", b"", "sha256").digest_size


def test_users_are_bound_to_the_system_chain(book: sa.Engine) -> None:
    access.create_user(book, "carol", "correct horse battery")
    with book.connect() as conn:
        (entry,) = conn.execute(sa.select(system_audit)).all()
    assert entry.action == "user.create" and '"users"' in entry.rows
    assert verify(book).ok
    with book.begin() as conn:
        conn.execute(users.update().where(users.c.username == "carol").values(is_admin=True))
    problems = verify(book).problems
    assert any("users row" in p and "differs from what the system audit chain entry 1 recorded" in p for p in problems)


def test_export_head_and_expect_head(book: sa.Engine, run: Any) -> None:
    exported = run("verify", "--export-head")
    assert exported.exit_code == 0, exported.output
    tokens = [line for line in exported.stdout.splitlines() if line.count(":") == 2]
    assert len(tokens) == 1 and Head.parse(tokens[0]).chain == "1"
    # Later writes keep an older head valid: it is still in the chain.
    cash.move_cash(book, "t", "main", [("d3", cash.deposit("A1-GEN", 10_000))])
    assert run("verify", "--expect-head", tokens[0]).exit_code == 0
    # Rewriting the entry that was the head fails it, even with the MAC recomputed consistently after it.
    seq = Head.parse(tokens[0]).seq
    with book.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == seq).values(hash="0" * 64))
    rewritten = run("verify", "--expect-head", tokens[0])
    assert rewritten.exit_code == 1 and "rewritten" in rewritten.output, rewritten.output
    bad = run("verify", "--expect-head", "1:x:y")
    assert bad.exit_code != 0 and "expect-head" in bad.output
