"""Queries shared by the use cases: id allocation, lookups by name, account snapshots, the journal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from alluse.domain.accounts import SLEEVE_LABEL, AccountKind, AccountStatus, CashSnapshot
from alluse.domain.errors import Conflict, NotFound
from alluse.domain.ledger import Leg, balanced
from alluse.store.prepared import Prepared, insert
from alluse.store.schema import account_groups, accounts, postings, transfers
from alluse.store.scope import did_you_mean, is_id
from alluse.store.uow import IN_CHUNK

_MAX_ID: dict[str, Prepared] = {}
_NEXT_IDS: dict[str, Prepared] = {}
ID_BLOCK_FAST_TRIES = 3
ID_BLOCK_RETRIES = 100


def allocate_ids(conn: sa.Connection, table: sa.Table, n: int) -> int:
    """Reserve n consecutive ids in `table`; returns the first. Bulk paths insert with known ids so
    rows can reference each other without a round trip per row. Callers hold the write lock."""
    if conn.dialect.name == "postgresql":
        return _next_ids_pg(conn, table, n)
    q = _MAX_ID.get(table.name)
    if q is None:
        q = _MAX_ID[table.name] = Prepared(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)))
    return int(q.rows(conn)[0][0]) + 1


def _next_ids_pg(conn: sa.Connection, table: sa.Table, n: int) -> int:
    # The write lock is per portfolio, so other portfolios draw from the same sequence meanwhile:
    # "nextval, then setval past the block" would hand their ids out twice. n nextvals are each
    # atomic; the block is used only if nobody drew in between (skipped ids are harmless gaps).
    q = _NEXT_IDS.get(table.name)
    if q is None:
        seq = sa.func.pg_get_serial_sequence(table.name, "id")
        drawn = (
            sa.select(sa.func.nextval(seq).label("v"))
            .select_from(sa.func.generate_series(1, sa.bindparam("n", type_=sa.BigInteger)))
            .subquery()
        )
        q = _NEXT_IDS[table.name] = Prepared(sa.select(sa.func.min(drawn.c.v), sa.func.max(drawn.c.v)))
    for attempt in range(ID_BLOCK_RETRIES):
        if attempt == ID_BLOCK_FAST_TRIES:
            # Busy table: stop new inserts into it until this transaction ends. Each concurrent writer
            # can then draw at most the id it is about to insert before it waits, so this converges.
            # (LOCK TABLE … SHARE ROW EXCLUSIVE, through a function of the owner: see migration 0005_pg.)
            conn.execute(sa.select(sa.func.alluse_hold_inserts(table.name))).all()
        lo, hi = q.rows(conn, n=n)[0]
        if hi - lo == n - 1:
            return int(lo)
    raise Conflict(f"could not reserve {n} consecutive {table.name} ids under concurrent writes; try again")


@dataclass(slots=True)
class AccountRow:
    """An account as a unit of work holds it: cash and base capital change in memory as the work
    proceeds and are written back once by `apply_cash`. The one mutable shape of an account; the rules
    read the immutable `snapshot` (a `domain.accounts.CashSnapshot`)."""

    id: int
    portfolio_id: int
    group_id: int | None
    kind: AccountKind
    name: str
    status: AccountStatus
    base_capital: int
    cash: int
    positions_value: int
    collateral: int
    earmarked: int
    buffer_bps: int
    label: str = ""

    def __post_init__(self) -> None:
        self.label = account_label(self.kind, self.name)

    @property
    def snapshot(self) -> CashSnapshot:
        return CashSnapshot(
            self.label, self.kind, self.cash, self.positions_value, self.collateral, self.earmarked, self.buffer_bps
        )

    def add_cash(self, delta: int, base_delta: int = 0) -> None:
        self.cash += delta
        self.base_capital += base_delta


_a = accounts.c
_ACCOUNT_COLS = (
    _a.id,
    _a.portfolio_id,
    _a.group_id,
    _a.kind,
    _a.name,
    _a.status,
    _a.base_capital_cents,
    _a.cash_cents,
    _a.positions_value_cents,
    _a.collateral_cents,
    _a.earmarked_cents,
    _a.buffer_bps,
)
# The few accounts one use case touches, in one round trip: a statement per list length up to 4.
_ACCOUNTS_BY_IDS = {
    n: Prepared(
        sa.select(*_ACCOUNT_COLS).where(
            _a.portfolio_id == sa.bindparam("pid"), _a.id.in_([sa.bindparam(f"id{i}") for i in range(n)])
        )
    )
    for n in range(1, 5)
}
_ACCOUNT_ID_BY_NAME = Prepared(
    sa.select(_a.id).where(_a.portfolio_id == sa.bindparam("pid"), _a.name == sa.bindparam("name"))
)
_ACCOUNT_ID_BY_ID = Prepared(
    sa.select(_a.id).where(_a.portfolio_id == sa.bindparam("pid"), _a.id == sa.bindparam("name"), _a.kind != "EXT")
)
_TRANSFER_INSERT = insert(transfers)
# The portfolio row is locked by the unit of work, so the next number cannot be taken twice.
_LAST_NUMBER = Prepared(
    sa.select(sa.func.coalesce(sa.func.max(transfers.c.number), 0)).where(
        transfers.c.portfolio_id == sa.bindparam("pid")
    )
)
_POSTING_INSERT = insert(postings)
_CASH_UPDATE = Prepared(
    accounts.update()
    .where(_a.id == sa.bindparam("aid"))
    .values(cash_cents=sa.bindparam("cash"), base_capital_cents=sa.bindparam("base"))
)


def account_label(kind: AccountKind | str, name: str) -> str:
    kind = AccountKind(kind)
    return f"{SLEEVE_LABEL[kind]} {name}" if kind in SLEEVE_LABEL else name


def _to_row(r: tuple) -> AccountRow:
    aid, pid, gid, kind, name, status, *figures = r
    return AccountRow(aid, pid, gid, AccountKind(kind), name, AccountStatus(status), *figures)


def load_accounts(conn: sa.Connection, portfolio_id: int, ids: list[int]) -> dict[int, AccountRow]:
    """Snapshots of the given accounts; every id must belong to the portfolio."""
    out: dict[int, AccountRow] = {}
    if len(ids) in _ACCOUNTS_BY_IDS:
        params = {f"id{i}": aid for i, aid in enumerate(ids)}
        for r in _ACCOUNTS_BY_IDS[len(ids)].rows(conn, pid=portfolio_id, **params):
            out[r[0]] = _to_row(r)
    elif ids:
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(*_ACCOUNT_COLS).where(_a.portfolio_id == portfolio_id, _a.id.in_(ids[i : i + IN_CHUNK]))
            for r in conn.execute(q):
                out[r[0]] = _to_row(tuple(r))
    missing = set(ids) - out.keys()
    if missing:
        raise NotFound(f"no account with id {min(missing)} in this portfolio")
    return out


def resolve_account(conn: sa.Connection, portfolio_id: int, ref: str | int) -> int:
    """A sleeve account named by id ("17") or by name ("A1-GEN", any case)."""
    text = str(ref).strip()
    if is_id(text):
        found = _ACCOUNT_ID_BY_ID.first(conn, pid=portfolio_id, name=int(text))
    else:
        found = _ACCOUNT_ID_BY_NAME.first(conn, pid=portfolio_id, name=text.upper())
    if found is None:
        hint = did_you_mean(text, _names(conn, portfolio_id, groups=False))
        raise NotFound(f"no account {text!r} in this portfolio{hint} (see `alluse accounts`)")
    return int(found[0])


def resolve_group(conn: sa.Connection, portfolio_id: int, ref: str | int) -> int:
    text = str(ref).strip()
    g = account_groups.c
    cond = g.id == int(text) if is_id(text) else g.name == text.upper()
    found = conn.execute(sa.select(g.id).where(g.portfolio_id == portfolio_id, cond)).scalar()
    if found is None:
        hint = did_you_mean(text, _names(conn, portfolio_id, groups=True))
        raise NotFound(f"no account group {text!r} in this portfolio{hint} (see `alluse accounts`)")
    return int(found)


def _names(conn: sa.Connection, portfolio_id: int, *, groups: bool) -> list[str]:
    """Names a user may type for an account (and, with `groups`, for a group too): suggestion candidates."""
    names = list(conn.execute(sa.select(_a.name).where(_a.portfolio_id == portfolio_id, _a.kind != "EXT")).scalars())
    if groups:
        g = account_groups.c
        names += conn.execute(sa.select(g.name).where(g.portfolio_id == portfolio_id)).scalars()
    return names


def external_account(conn: sa.Connection, portfolio_id: int, name: str, now: datetime) -> int:
    """Id of the portfolio's external counter-account `name`, created on first use."""
    found = _ACCOUNT_ID_BY_NAME.first(conn, pid=portfolio_id, name=name)
    if found is not None:
        return int(found[0])
    res = conn.execute(
        accounts.insert().values(
            portfolio_id=portfolio_id,
            group_id=None,
            kind="EXT",
            name=name,
            status="ACTIVE",
            buffer_bps=0,
            opened_at=now,
        )
    )
    return int(res.inserted_primary_key[0])  # type: ignore[index]


def apply_cash(conn: sa.Connection, changed: list[AccountRow]) -> None:
    """Write back the cash and base capital of accounts a use case changed in memory."""
    _CASH_UPDATE.many(conn, [{"aid": a.id, "cash": a.cash, "base": a.base_capital} for a in changed])


class JournalEntry(NamedTuple):
    kind: str
    legs: list[Leg]
    audit_seq: int
    memo: str = ""
    reverses_transfer_id: int | None = None


_JOURNAL_IDS = Prepared(
    sa.select(
        sa.select(sa.func.coalesce(sa.func.max(transfers.c.id), 0)).scalar_subquery(),
        sa.select(sa.func.coalesce(sa.func.max(postings.c.id), 0)).scalar_subquery(),
        _LAST_NUMBER.stmt.scalar_subquery(),  # type: ignore[attr-defined]
    )
)


def _journal_ids(conn: sa.Connection, portfolio_id: int, n_transfers: int, n_postings: int) -> tuple[int, int, int]:
    """First transfer id, first posting id and the portfolio's last transfer number, for a journal
    write (one round trip on SQLite, where the writer lock makes max + 1 safe)."""
    if conn.dialect.name == "postgresql":
        return (
            allocate_ids(conn, transfers, n_transfers),
            allocate_ids(conn, postings, n_postings),
            int(_LAST_NUMBER.first(conn, pid=portfolio_id)[0]),  # type: ignore[index]
        )
    t, p, number = _JOURNAL_IDS.rows(conn, pid=portfolio_id)[0]
    return int(t) + 1, int(p) + 1, int(number)


def insert_journal(conn: sa.Connection, portfolio_id: int, now: datetime, entries: list[JournalEntry]) -> list[int]:
    """Insert transfers and their postings in two executemany calls; returns the transfer ids. Each
    transfer also gets the portfolio's next transfer number (`transfer_numbers` reads them back)."""
    first, first_posting, last_number = _journal_ids(
        conn, portfolio_id, len(entries), sum(len(e.legs) for e in entries)
    )
    t_rows: list[dict[str, Any]] = []
    p_rows: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        tid = first + i
        t_rows.append(
            {
                "id": tid,
                "portfolio_id": portfolio_id,
                "number": last_number + 1 + i,
                "kind": str(e.kind),
                "memo": e.memo,
                "reverses_transfer_id": e.reverses_transfer_id,
                "audit_seq": e.audit_seq,
                "created_at": now,
            }
        )
        p_rows += [
            {"portfolio_id": portfolio_id, "transfer_id": tid, "account_id": a, "amount_cents": c}
            for a, c in balanced(e.legs)
        ]
    # Posting ids are allocated here too, so the audit manifest records the rows from these parameters.
    for i, row in enumerate(p_rows):
        row["id"] = first_posting + i
    _TRANSFER_INSERT.many(conn, t_rows)
    _POSTING_INSERT.many(conn, p_rows)
    return [first + i for i in range(len(entries))]


def transfer_numbers(conn: sa.Connection, ids: list[int]) -> dict[int, int]:
    """Transfer id → the number people see, for the given transfers."""
    out: dict[int, int] = {}
    for i in range(0, len(ids), IN_CHUNK):
        q = sa.select(transfers.c.id, transfers.c.number).where(transfers.c.id.in_(ids[i : i + IN_CHUNK]))
        out.update({int(tid): int(n) for tid, n in conn.execute(q)})
    return out


def transfer_by_number(conn: sa.Connection, portfolio_id: int, number: int) -> int:
    """The id of the portfolio's transfer number `number`."""
    found = conn.execute(
        sa.select(transfers.c.id).where(transfers.c.portfolio_id == portfolio_id, transfers.c.number == number)
    ).scalar()
    if found is None:
        raise NotFound(f"no transfer #{number} in this portfolio (see `alluse journal`)")
    return int(found)
