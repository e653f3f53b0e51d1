"""Reading and writing brokerage accounts: the registrations across portfolios (the directory), each
portfolio's pool, the one-to-one mapping to system accounts, and the encrypted credentials."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from alluse.store.prepared import Prepared, insert
from alluse.store.schema import accounts, audit_keys, brokerage_accounts, brokerage_directory
from alluse.store.uow import IN_CHUNK

_b = brokerage_accounts.c
_BROKERAGE_INSERT = insert(brokerage_accounts)


class Registration(NamedTuple):
    id: int
    portfolio_id: int
    broker: str
    number: str
    account_id: int | None
    kind: str  # of the mapped account; "" when unmapped
    name: str


def registrations(conn: sa.Connection, numbers: Sequence[str]) -> dict[tuple[str, str], Registration]:
    """(broker, number) → its registration in any portfolio, with the kind and name of the account it
    maps to. The directory view: another portfolio's registrations must be seen to be refused. Read
    on its own (on Citus the directory reads every shard as the owner); the accounts are then read
    within their portfolios."""
    d = brokerage_directory.c
    numbers = sorted(set(numbers))
    rows: list[Any] = []
    for i in range(0, len(numbers), IN_CHUNK):
        q = sa.select(d.id, d.portfolio_id, d.broker, d.number, d.account_id)
        rows += conn.execute(q.where(d.number.in_(numbers[i : i + IN_CHUNK]))).all()
    mapped = [r for r in rows if r.account_id is not None]
    names: dict[tuple[int, int], tuple[str, str]] = {}
    a = accounts.c
    for i in range(0, len(mapped), IN_CHUNK):
        chunk = mapped[i : i + IN_CHUNK]
        q = sa.select(a.portfolio_id, a.id, a.kind, a.name).where(
            a.portfolio_id.in_({r.portfolio_id for r in chunk}), a.id.in_([r.account_id for r in chunk])
        )
        names.update({(r.portfolio_id, r.id): (r.kind, r.name) for r in conn.execute(q)})
    found: dict[tuple[str, str], Registration] = {}
    for r in rows:
        kind, name = names.get((r.portfolio_id, r.account_id), ("", ""))
        found[(r.broker, r.number)] = Registration(r.id, r.portfolio_id, r.broker, r.number, r.account_id, kind, name)
    return found


def insert_brokerage(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    _BROKERAGE_INSERT.many(conn, rows)


def map_to_accounts(conn: sa.Connection, account_by_brokerage: Mapping[int, int]) -> None:
    """Map registered (pool) brokerage accounts, by id, to system accounts."""
    if account_by_brokerage:
        conn.execute(
            brokerage_accounts.update().where(_b.id == sa.bindparam("_id")).values(account_id=sa.bindparam("_acc")),
            [{"_id": bid, "_acc": aid} for bid, aid in account_by_brokerage.items()],
        )


def store_credentials(conn: sa.Connection, portfolio_id: int, broker: str, number: str, token: bytes) -> int:
    """Set a brokerage account's encrypted credentials; returns how many accounts matched (0 or 1)."""
    return conn.execute(
        brokerage_accounts.update()
        .where(_b.portfolio_id == portfolio_id, _b.broker == broker, _b.number == number)
        .values(credentials_encrypted=token)
    ).rowcount


def credentials_of(conn: sa.Connection, portfolio_id: int, broker: str, number: str) -> bytes | None:
    q = sa.select(_b.credentials_encrypted).where(
        _b.portfolio_id == portfolio_id, _b.broker == broker, _b.number == number
    )
    token = conn.execute(q).scalar()
    return None if token is None else bytes(token)


def portfolios_with_credentials(conn: sa.Connection) -> list[int]:
    q = sa.select(_b.portfolio_id).where(_b.credentials_encrypted.is_not(None)).distinct()
    return sorted(int(pid) for pid in conn.execute(q).scalars())


def encrypted_credentials(conn: sa.Connection, portfolio_id: int) -> list[tuple[int, bytes]]:
    """(brokerage account id, encrypted credentials) of the portfolio's accounts that have some."""
    q = sa.select(_b.id, _b.credentials_encrypted).where(
        _b.portfolio_id == portfolio_id, _b.credentials_encrypted.is_not(None)
    )
    return [(int(bid), token) for bid, token in conn.execute(q)]


def replace_credentials(conn: sa.Connection, brokerage_id: int, token: bytes) -> None:
    conn.execute(brokerage_accounts.update().where(_b.id == brokerage_id).values(credentials_encrypted=token))


def sealed_audit_keys(conn: sa.Connection) -> list[tuple[str, bytes]]:
    k = audit_keys.c
    return [(key_id, bytes(sealed)) for key_id, sealed in conn.execute(sa.select(k.key_id, k.sealed))]


def reseal_audit_key(conn: sa.Connection, key_id: str, sealed: bytes) -> None:
    conn.execute(audit_keys.update().where(audit_keys.c.key_id == key_id).values(sealed=sealed))


# A lifecycle sweep asks these once per fork: prepared, like the rest of the hot path.
_IN_POOL = (_b.portfolio_id == sa.bindparam("pid"), _b.broker == sa.bindparam("broker"), _b.account_id.is_(None))
_BROKER_OF = Prepared(sa.select(_b.broker).where(_b.account_id == sa.bindparam("aid")))
_POOL_FREE = Prepared(sa.select(sa.func.count()).where(*_IN_POOL))
_POOL_NUMBERS = Prepared(
    sa.select(_b.number).where(*_IN_POOL).order_by(_b.id).limit(sa.bindparam("n", type_=sa.Integer))
)


def broker_of(conn: sa.Connection, account_id: int) -> str | None:
    """The broker an account's brokerage account is at (None when it has none)."""
    found = _BROKER_OF.first(conn, aid=account_id)
    return None if found is None or found[0] is None else str(found[0])


def pool_free(conn: sa.Connection, portfolio_id: int, broker: str) -> int:
    """Registered, unmapped brokerage accounts of `broker` in the portfolio's pool."""
    return int(_POOL_FREE.rows(conn, pid=portfolio_id, broker=broker)[0][0])


def pool_numbers(conn: sa.Connection, portfolio_id: int, broker: str, limit: int) -> list[str]:
    """The numbers of up to `limit` pool accounts of `broker`, oldest registration first."""
    return [str(n) for (n,) in _POOL_NUMBERS.rows(conn, pid=portfolio_id, broker=broker, n=limit)]


def release_to_pool(conn: sa.Connection, portfolio_id: int, account_ids: list[int]) -> list[str]:
    """Unmap the brokerage accounts of these system accounts; returns them as BROKER:NUMBER."""
    cond = sa.and_(_b.portfolio_id == portfolio_id, _b.account_id.in_(account_ids))
    refs = [f"{broker}:{number}" for broker, number in conn.execute(sa.select(_b.broker, _b.number).where(cond))]
    conn.execute(brokerage_accounts.update().where(cond).values(account_id=None))
    return refs
