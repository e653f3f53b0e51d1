"""Reading and writing brokerage accounts: the registrations across portfolios (the directory), each
portfolio's pool, the one-to-one mapping to system accounts, and the encrypted credentials."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from alluse.store.db import IN_CHUNK
from alluse.store.idlist import in_ids
from alluse.store.prepared import Prepared, insert
from alluse.store.schema import accounts, audit_keys, brokerage_accounts, brokerage_numbers

_b = brokerage_accounts.c
BROKERAGE_COLUMNS = ["id", "portfolio_id", "broker", "number", "account_id", "credentials_encrypted", "registered_at"]
_BROKERAGE_INSERT = insert(brokerage_accounts, BROKERAGE_COLUMNS)
_NUMBERS_INSERT = insert(brokerage_numbers)


class Registration(NamedTuple):
    portfolio_id: int
    broker: str
    number: str
    # The rest only when the registration is the asking portfolio's own (another portfolio's rows are
    # not its to read): the brokerage account's id and the system account it maps to.
    id: int | None
    account_id: int | None
    kind: str  # of the mapped account; "" when unmapped
    name: str


def registrations(
    conn: sa.Connection, portfolio_id: int, numbers: Sequence[str]
) -> dict[tuple[str, str], Registration]:
    """(broker, number) → its registration: this portfolio's own brokerage accounts of those numbers
    (paper-broker pool accounts too), with the kind and name of the account each maps to; then the
    real brokers' numbers another portfolio holds (`brokerage_numbers`, readable across portfolios),
    which must be seen to be refused."""
    n, a = brokerage_numbers.c, accounts.c
    numbers = sorted(set(numbers))
    found: dict[tuple[str, str], Registration] = {}
    for i in range(0, len(numbers), IN_CHUNK):
        chunk = numbers[i : i + IN_CHUNK]
        own = (
            sa.select(_b.id, _b.broker, _b.number, _b.account_id, a.kind, a.name)
            .select_from(
                brokerage_accounts.outerjoin(
                    accounts, sa.and_(a.portfolio_id == _b.portfolio_id, a.id == _b.account_id)
                )
            )
            .where(_b.portfolio_id == portfolio_id, _b.number.in_(chunk))
        )
        for r in conn.execute(own):
            reg = Registration(portfolio_id, r.broker, r.number, int(r.id), r.account_id, r.kind or "", r.name or "")
            found[(r.broker, r.number)] = reg
        held = sa.select(n.broker, n.number, n.portfolio_id).where(n.number.in_(chunk))
        for broker, number, pid in conn.execute(held):
            if (broker, number) not in found:
                found[(broker, number)] = Registration(int(pid), broker, number, None, None, "", "")
    return found


def hold_numbers(conn: sa.Connection, portfolio_id: int, refs: Sequence[tuple[str, str]]) -> None:
    """Enter (broker, number) pairs as the portfolio's in `brokerage_numbers`: its key refuses a number
    another portfolio holds, even when two units of work race for it."""
    _NUMBERS_INSERT.many(conn, [{"broker": b, "number": n, "portfolio_id": portfolio_id} for b, n in refs])


def insert_brokerage(conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Brokerage accounts as rows in BROKERAGE_COLUMNS order."""
    _BROKERAGE_INSERT.tuples(conn, rows)


def map_to_accounts(conn: sa.Connection, portfolio_id: int, account_by_brokerage: Mapping[int, int]) -> None:
    """Map registered (pool) brokerage accounts, by id, to system accounts."""
    if account_by_brokerage:
        conn.execute(
            brokerage_accounts.update()
            .where(_b.portfolio_id == portfolio_id, _b.id == sa.bindparam("_id"))
            .values(account_id=sa.bindparam("_acc")),
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


def replace_credentials(conn: sa.Connection, portfolio_id: int, brokerage_id: int, token: bytes) -> None:
    cond = sa.and_(_b.portfolio_id == portfolio_id, _b.id == brokerage_id)
    conn.execute(brokerage_accounts.update().where(cond).values(credentials_encrypted=token))


def sealed_audit_keys(conn: sa.Connection) -> list[tuple[str, bytes]]:
    k = audit_keys.c
    return [(key_id, bytes(sealed)) for key_id, sealed in conn.execute(sa.select(k.key_id, k.sealed))]


def reseal_audit_key(conn: sa.Connection, key_id: str, sealed: bytes) -> None:
    conn.execute(audit_keys.update().where(audit_keys.c.key_id == key_id).values(sealed=sealed))


# A lifecycle sweep asks these for its forks: prepared, like the rest of the hot path.
_IN_POOL = (_b.portfolio_id == sa.bindparam("pid"), _b.broker == sa.bindparam("broker"), _b.account_id.is_(None))
_BROKERS_OF = Prepared(
    sa.select(_b.account_id, _b.broker).where(_b.portfolio_id == sa.bindparam("pid"), in_ids(_b.account_id))
)
_POOL_FREE = Prepared(sa.select(sa.func.count()).where(*_IN_POOL))
_POOL_NUMBERS = Prepared(
    sa.select(_b.number).where(*_IN_POOL).order_by(_b.id).limit(sa.bindparam("n", type_=sa.Integer))
)


def broker_of(conn: sa.Connection, portfolio_id: int, account_id: int) -> str | None:
    """The broker an account's brokerage account is at (None when it has none)."""
    return brokers_of(conn, portfolio_id, [account_id]).get(account_id)


def brokers_of(conn: sa.Connection, portfolio_id: int, account_ids: Iterable[int]) -> dict[int, str]:
    """The broker of each of these accounts' brokerage accounts (those with none are left out)."""
    return {int(aid): str(b) for aid, b in _BROKERS_OF.rows(conn, pid=portfolio_id, ids=sorted(set(account_ids)))}


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
