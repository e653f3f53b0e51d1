"""Brokerage accounts: the portfolio's pool and the one-to-one mapping to system accounts."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any, NotRequired, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.brokers.refs import PAPER, BrokerageRef, paper_number, parse_brokerage_ref
from alluse.domain.errors import Conflict, InvalidInput, NotFound
from alluse.security.keyring import Keyring
from alluse.store import brokerage as store
from alluse.store.brokerage import broker_of, brokers_of, pool_free, release_to_pool
from alluse.store.repo import account_label, allocate_ids
from alluse.store.schema import brokerage_accounts
from alluse.store.scope import resolve_portfolio
from alluse.store.uow import Request, Tx, write, write_connection

# The pool's queries are the store's; the lifecycle and orders use them through this module.
__all__ = ["broker_of", "brokers_of", "map_brokerage", "pool_free", "read_credentials", "register"]
__all__ += ["release_to_pool", "reseal_audit_keys", "rotate_credentials", "set_credentials", "take_from_pool"]


class Registered(TypedDict):
    registered: list[str]  # BROKER:NUMBER
    replayed: NotRequired[bool]


class CredentialsStored(TypedDict):
    brokerage_account: str
    credentials: str  # "stored"
    replayed: NotRequired[bool]


class ReEncrypted(TypedDict):
    """One portfolio's credentials, re-encrypted under the keyring's newest key."""

    reencrypted: int
    key: str  # the key's fingerprint
    replayed: NotRequired[bool]


class Rotated(TypedDict):
    portfolios: int
    reencrypted: int


def map_brokerage(tx: Tx, wanted: list[tuple[int, BrokerageRef | None]], first_id: int | None = None) -> list[str]:
    """Link each new system account to the brokerage account named for it, registering it if new,
    or to a fresh paper-broker account when none is named. Returns the refs, in order. `first_id`:
    a block of len(wanted) brokerage account ids the caller reserved already (`allocate_blocks`).

    Refuses a brokerage account that is already mapped or that belongs to another portfolio."""
    named = [ref for _, ref in wanted if ref is not None]
    if len(set(named)) != len(named):
        raise InvalidInput("the same brokerage account was named for two accounts")
    existing = store.registrations(tx.conn, tx.portfolio_id, [r.number for r in named])
    updates: dict[int, int] = {}
    inserts = []
    held: list[tuple[str, str]] = []
    out: list[str] = []
    paper = [acc for acc, ref in wanted if ref is None]
    if first_id is None:
        first_id = allocate_ids(tx.conn, brokerage_accounts, len(paper) + len(named)) if wanted else 0
    next_id = first_id
    for acc, ref in wanted:
        if ref is None:
            number = paper_number(next_id)
            inserts.append(_row(tx, next_id, PAPER, number, acc))
            out.append(f"{PAPER}:{number}")
            next_id += 1
            continue
        row = existing.get((ref.broker, ref.number))
        if row is None and ref.broker == PAPER:  # numbered after their ids: never named into being
            raise InvalidInput(f"{ref} is not in this portfolio's pool: name none for a new paper-broker account")
        if row is None:
            inserts.append(_row(tx, next_id, ref.broker, ref.number, acc))
            held.append((ref.broker, ref.number))
            next_id += 1
        elif row.portfolio_id != tx.portfolio_id:
            # The same words as `register` refusing a number held anywhere: never which portfolio
            # holds it, nor that it is another one (docs/security.md, existence oracles).
            raise Conflict(f"brokerage account {ref} is already registered")
        elif row.account_id is not None:
            raise Conflict(f"brokerage account {ref} is already mapped to {account_label(row.kind, row.name)}")
        elif row.id is None:  # held by this portfolio without its brokerage account: verify names it
            raise Conflict(f"brokerage account {ref} is already registered")
        else:
            updates[row.id] = acc
        out.append(str(ref))
    store.hold_numbers(tx.conn, tx.portfolio_id, held)
    store.insert_brokerage(tx.conn, inserts)
    store.map_to_accounts(tx.conn, tx.portfolio_id, updates)
    return out


def _row(tx: Tx, id_: int, broker: str, number: str, account_id: int | None) -> tuple[Any, ...]:
    """A brokerage account row, in store.brokerage.BROKERAGE_COLUMNS order (no credentials yet)."""
    return (id_, tx.portfolio_id, broker, number, account_id, None, tx.now)


def register(engine: Engine, actor: str, portfolio: str | int | None, refs: list[str], key: str) -> Registered:
    """Add brokerage accounts to the portfolio's pool of registered, unmapped accounts."""
    parsed = [parse_brokerage_ref(r) for r in refs]
    if not parsed:
        raise InvalidInput("name at least one brokerage account, e.g. IBKR:U1234567")
    if any(p.broker == PAPER for p in parsed):
        raise InvalidInput("paper-broker accounts are created on demand; register real brokerage accounts only")
    if len(set(parsed)) != len(parsed):
        raise InvalidInput("the same brokerage account was named twice")

    def apply(tx: Tx, _reqs: list[Request]) -> list[Registered]:
        existing = store.registrations(tx.conn, tx.portfolio_id, [p.number for p in parsed])
        taken = [str(p) for p in parsed if (p.broker, p.number) in existing]
        if taken:
            raise Conflict(f"brokerage account {taken[0]} is already registered")
        first = allocate_ids(tx.conn, brokerage_accounts, len(parsed))
        store.hold_numbers(tx.conn, tx.portfolio_id, [(p.broker, p.number) for p in parsed])
        store.insert_brokerage(tx.conn, [_row(tx, first + i, p.broker, p.number, None) for i, p in enumerate(parsed)])
        return [{"registered": [str(p) for p in parsed]}]

    payload = {"refs": [str(p) for p in parsed]}
    return cast(Registered, write(engine, portfolio, actor, "broker.register", [Request(key, payload)], apply)[0])


def set_credentials(
    engine: Engine, actor: str, portfolio: str | int | None, ref: str, credentials: str, key: str, keyring: Keyring
) -> CredentialsStored:
    """Store a brokerage account's API credentials, encrypted; nothing ever reads them back out to a
    user. The audit entry digests a keyed MAC of the secret, never the secret or a plain hash of it."""
    parsed = parse_brokerage_ref(ref)
    if not credentials or len(credentials) > 10_000:
        raise InvalidInput("credentials must be 1–10,000 characters")
    token = keyring.encrypt(credentials.encode())
    mac = hmac.new(keyring.derive("credential-digest"), credentials.encode(), hashlib.sha256).hexdigest()

    def apply(tx: Tx, _reqs: list[Request]) -> list[CredentialsStored]:
        if store.store_credentials(tx.conn, tx.portfolio_id, parsed.broker, parsed.number, token) != 1:
            raise NotFound(f"no brokerage account {parsed} in this portfolio")
        return [{"brokerage_account": str(parsed), "credentials": "stored"}]

    payload = {"ref": str(parsed), "credentials_mac": mac}
    written = write(engine, portfolio, actor, "broker.credentials", [Request(key, payload)], apply)[0]
    return cast(CredentialsStored, written)


def rotate_credentials(engine: Engine, actor: str, keyring: Keyring) -> Rotated:
    """Re-encrypt every stored credential under the keyring's newest key: one unit of work per
    portfolio, so each is audited in its own chain. Safe to re-run (rows already under the newest key
    are simply re-encrypted again)."""
    run = f"keys.rotate:{keyring.fingerprint}:{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        pids = store.portfolios_with_credentials(conn)
    total = 0
    for pid in pids:

        def apply(tx: Tx, _reqs: list[Request]) -> list[ReEncrypted]:
            rows = store.encrypted_credentials(tx.conn, tx.portfolio_id)
            for bid, token in rows:
                store.replace_credentials(tx.conn, tx.portfolio_id, bid, keyring.rotate(token))
            return [{"reencrypted": len(rows), "key": keyring.fingerprint}]

        out = cast(ReEncrypted, write(engine, pid, actor, "keys.rotate", [Request(run, {})], apply)[0])
        total += 0 if out.get("replayed") else out["reencrypted"]
    reseal_audit_keys(engine, keyring)
    return {"portfolios": len(pids), "reencrypted": total}


def reseal_audit_keys(engine: Engine, keyring: Keyring) -> int:
    """Re-encrypt every sealed audit key under the newest keyring key, so the audit entries they
    signed stay verifiable once the older keyring keys are dropped."""
    with write_connection(engine) as conn, conn.begin():
        rows = store.sealed_audit_keys(conn)
        for key_id, sealed in rows:
            store.reseal_audit_key(conn, key_id, keyring.rotate(sealed))
    return len(rows)


def read_credentials(engine: Engine, portfolio: str | int | None, ref: str, keyring: Keyring) -> str | None:
    """For broker adapters only (never an API answer nor CLI output)."""
    parsed = parse_brokerage_ref(ref)
    with engine.connect() as conn:
        token = store.credentials_of(conn, resolve_portfolio(conn, portfolio), parsed.broker, parsed.number)
    return None if token is None else keyring.decrypt(token).decode()


def take_from_pool(conn: sa.Connection, portfolio_id: int, wants: list[tuple[str, int]]) -> list[list[BrokerageRef]]:
    """For each (broker, n) in order, up to n pool accounts of that broker, oldest registration first
    (so every run picks the same ones), none given to two of them: the openings of one unit of work."""
    pools = {
        broker: [BrokerageRef(broker, num) for num in store.pool_numbers(conn, portfolio_id, broker, total)]
        for broker in {b for b, _ in wants}
        if (total := sum(n for b, n in wants if b == broker))
    }
    out = []
    for broker, n in wants:
        pool = pools.get(broker, [])
        out.append(pool[:n])
        del pool[:n]
    return out
