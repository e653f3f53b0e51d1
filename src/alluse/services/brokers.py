"""Brokerage accounts: the portfolio's pool and the one-to-one mapping to system accounts."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.brokers.refs import PAPER, BrokerageRef, paper_number, parse_brokerage_ref
from alluse.domain.errors import Conflict, InvalidInput, NotFound
from alluse.security.keyring import Keyring
from alluse.store.prepared import insert
from alluse.store.repo import account_label, allocate_ids
from alluse.store.schema import accounts, audit_keys, brokerage_accounts, brokerage_directory
from alluse.store.scope import resolve_portfolio
from alluse.store.uow import IN_CHUNK, Request, Tx, write, write_connection
from alluse.views.brokers import list_brokerage as list_brokerage  # the pool is read in views/brokers.py

_BROKERAGE_INSERT = insert(brokerage_accounts)


def map_brokerage(tx: Tx, wanted: list[tuple[int, BrokerageRef | None]]) -> list[str]:
    """Link each new system account to the brokerage account named for it, registering it if new,
    or to a fresh paper-broker account when none is named. Returns the refs, in order.

    Refuses a brokerage account that is already mapped or that belongs to another portfolio."""
    named = [ref for _, ref in wanted if ref is not None]
    if len(set(named)) != len(named):
        raise InvalidInput("the same brokerage account was named for two accounts")
    existing = _existing(tx.conn, named)
    updates, inserts = [], []
    out: list[str] = []
    paper = [acc for acc, ref in wanted if ref is None]
    first_paper = allocate_ids(tx.conn, brokerage_accounts, len(paper) + len(named)) if wanted else 0
    next_id = first_paper
    for acc, ref in wanted:
        if ref is None:
            inserts.append(_row(tx, next_id, PAPER, paper_number(next_id), acc))
            out.append(f"{PAPER}:{paper_number(next_id)}")
            next_id += 1
            continue
        row = existing.get((ref.broker, ref.number))
        if row is None:
            inserts.append(_row(tx, next_id, ref.broker, ref.number, acc))
            next_id += 1
        elif row.portfolio_id != tx.portfolio_id:
            # The same words as `register` refusing a number held anywhere: never which portfolio
            # holds it, nor that it is another one (docs/security.md, existence oracles).
            raise Conflict(f"brokerage account {ref} is already registered")
        elif row.account_id is not None:
            raise Conflict(f"brokerage account {ref} is already mapped to {account_label(row.kind, row.name)}")
        else:
            updates.append({"_id": row.id, "_acc": acc})
        out.append(str(ref))
    _BROKERAGE_INSERT.many(tx.conn, inserts)
    if updates:
        tx.conn.execute(
            brokerage_accounts.update()
            .where(brokerage_accounts.c.id == sa.bindparam("_id"))
            .values(account_id=sa.bindparam("_acc")),
            updates,
        )
    return out


def _row(tx: Tx, id_: int, broker: str, number: str, account_id: int | None) -> dict[str, Any]:
    return {
        "id": id_,
        "portfolio_id": tx.portfolio_id,
        "broker": broker,
        "number": number,
        "account_id": account_id,
        "credentials_encrypted": None,
        "registered_at": tx.now,
    }


def _existing(conn: sa.Connection, refs: list[BrokerageRef]) -> dict[tuple[str, str], sa.Row]:
    found: dict[tuple[str, str], sa.Row] = {}
    numbers = sorted({r.number for r in refs})
    # The directory view: another portfolio's registrations must be seen to be refused.
    b = brokerage_directory
    for i in range(0, len(numbers), IN_CHUNK):
        q = (
            sa.select(
                b.c.id,
                b.c.portfolio_id,
                b.c.broker,
                b.c.number,
                b.c.account_id,
                accounts.c.kind,
                accounts.c.name,
            )
            .select_from(b.outerjoin(accounts, accounts.c.id == b.c.account_id))
            .where(b.c.number.in_(numbers[i : i + IN_CHUNK]))
        )
        for row in conn.execute(q):
            found[(row.broker, row.number)] = row
    return found


def register(engine: Engine, actor: str, portfolio: str | None, refs: list[str], key: str) -> dict[str, Any]:
    """Add brokerage accounts to the portfolio's pool of registered, unmapped accounts."""
    parsed = [parse_brokerage_ref(r) for r in refs]
    if not parsed:
        raise InvalidInput("name at least one brokerage account, e.g. IBKR:U1234567")
    if any(p.broker == PAPER for p in parsed):
        raise InvalidInput("paper-broker accounts are created on demand; register real brokerage accounts only")
    if len(set(parsed)) != len(parsed):
        raise InvalidInput("the same brokerage account was named twice")

    def apply(tx: Tx, _reqs: list[Request]) -> list[dict[str, Any]]:
        existing = _existing(tx.conn, parsed)
        taken = [str(p) for p in parsed if (p.broker, p.number) in existing]
        if taken:
            raise Conflict(f"brokerage account {taken[0]} is already registered")
        first = allocate_ids(tx.conn, brokerage_accounts, len(parsed))
        _BROKERAGE_INSERT.many(tx.conn, [_row(tx, first + i, p.broker, p.number, None) for i, p in enumerate(parsed)])
        return [{"registered": [str(p) for p in parsed]}]

    payload = {"refs": [str(p) for p in parsed]}
    return write(engine, portfolio, actor, "broker.register", [Request(key, payload)], apply)[0]


def set_credentials(
    engine: Engine, actor: str, portfolio: str | int | None, ref: str, credentials: str, key: str, keyring: Keyring
) -> dict[str, Any]:
    """Store a brokerage account's API credentials, encrypted; nothing ever reads them back out to a
    user. The audit entry digests a keyed MAC of the secret, never the secret or a plain hash of it."""
    parsed = parse_brokerage_ref(ref)
    if not credentials or len(credentials) > 10_000:
        raise InvalidInput("credentials must be 1–10,000 characters")
    token = keyring.encrypt(credentials.encode())
    mac = hmac.new(keyring.derive("credential-digest"), credentials.encode(), hashlib.sha256).hexdigest()

    def apply(tx: Tx, _reqs: list[Request]) -> list[dict[str, Any]]:
        b = brokerage_accounts.c
        n = tx.conn.execute(
            brokerage_accounts.update()
            .where(b.portfolio_id == tx.portfolio_id, b.broker == parsed.broker, b.number == parsed.number)
            .values(credentials_encrypted=token)
        ).rowcount
        if n != 1:
            raise NotFound(f"no brokerage account {parsed} in this portfolio")
        return [{"brokerage_account": str(parsed), "credentials": "stored"}]

    payload = {"ref": str(parsed), "credentials_mac": mac}
    return write(engine, portfolio, actor, "broker.credentials", [Request(key, payload)], apply)[0]


def rotate_credentials(engine: Engine, actor: str, keyring: Keyring) -> dict[str, int]:
    """Re-encrypt every stored credential under the keyring's newest key: one unit of work per
    portfolio, so each is audited in its own chain. Safe to re-run (rows already under the newest key
    are simply re-encrypted again)."""
    run = f"keys.rotate:{keyring.fingerprint}:{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        pids = sorted(
            conn.execute(
                sa.select(brokerage_accounts.c.portfolio_id)
                .where(brokerage_accounts.c.credentials_encrypted.is_not(None))
                .distinct()
            ).scalars()
        )
    total = 0
    for pid in pids:

        def apply(tx: Tx, _reqs: list[Request]) -> list[dict[str, Any]]:
            b = brokerage_accounts.c
            rows = tx.conn.execute(
                sa.select(b.id, b.credentials_encrypted).where(
                    b.portfolio_id == tx.portfolio_id, b.credentials_encrypted.is_not(None)
                )
            ).all()
            for r in rows:
                tx.conn.execute(
                    brokerage_accounts.update().where(b.id == r.id).values(credentials_encrypted=keyring.rotate(r[1]))
                )
            return [{"reencrypted": len(rows), "key": keyring.fingerprint}]

        out = write(engine, pid, actor, "keys.rotate", [Request(run, {})], apply)[0]
        total += 0 if out.get("replayed") else out["reencrypted"]
    reseal_audit_keys(engine, keyring)
    return {"portfolios": len(pids), "reencrypted": total}


def reseal_audit_keys(engine: Engine, keyring: Keyring) -> int:
    """Re-encrypt every sealed audit key under the newest keyring key, so the audit entries they
    signed stay verifiable once the older keyring keys are dropped."""
    k = audit_keys.c
    with write_connection(engine) as conn, conn.begin():
        rows = conn.execute(sa.select(k.key_id, k.sealed)).all()
        for key_id, sealed in rows:
            conn.execute(audit_keys.update().where(k.key_id == key_id).values(sealed=keyring.rotate(bytes(sealed))))
    return len(rows)


def read_credentials(engine: Engine, portfolio: str | int | None, ref: str, keyring: Keyring) -> str | None:
    """For broker adapters only (never an API answer nor CLI output)."""
    parsed = parse_brokerage_ref(ref)
    b = brokerage_accounts.c
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        token = conn.execute(
            sa.select(b.credentials_encrypted).where(
                b.portfolio_id == pid, b.broker == parsed.broker, b.number == parsed.number
            )
        ).scalar()
    return None if token is None else keyring.decrypt(token).decode()


def broker_of(conn: sa.Connection, account_id: int) -> str | None:
    """The broker an account's brokerage account is at (None when it has none)."""
    b = brokerage_accounts.c
    return conn.execute(sa.select(b.broker).where(b.account_id == account_id)).scalar()


def pool_free(conn: sa.Connection, portfolio_id: int, broker: str) -> int:
    """Registered, unmapped brokerage accounts of `broker` in the portfolio's pool."""
    b = brokerage_accounts.c
    q = sa.select(sa.func.count()).where(b.portfolio_id == portfolio_id, b.broker == broker, b.account_id.is_(None))
    return int(conn.execute(q).scalar_one())


def take_from_pool(
    conn: sa.Connection, portfolio_id: int, broker: str, n: int, skip: set[BrokerageRef] | None = None
) -> list[BrokerageRef]:
    """Up to n pool accounts of `broker`, oldest registration first (so every run picks the same ones),
    leaving out those in `skip` (already promised to another opening of the same unit of work)."""
    b = brokerage_accounts.c
    skip = skip or set()
    q = (
        sa.select(b.broker, b.number)
        .where(b.portfolio_id == portfolio_id, b.broker == broker, b.account_id.is_(None))
        .order_by(b.id)
        .limit(n + len(skip))
    )
    refs = [BrokerageRef(broker_, number) for broker_, number in conn.execute(q)]
    return [r for r in refs if r not in skip][:n]


def release_to_pool(conn: sa.Connection, portfolio_id: int, account_ids: list[int]) -> list[str]:
    """Unmap the brokerage accounts of accounts that stop trading (merged): they return to the pool."""
    b = brokerage_accounts.c
    cond = sa.and_(b.portfolio_id == portfolio_id, b.account_id.in_(account_ids))
    refs = [f"{broker}:{number}" for broker, number in conn.execute(sa.select(b.broker, b.number).where(cond))]
    conn.execute(brokerage_accounts.update().where(cond).values(account_id=None))
    return refs
