"""Queries shared by the use cases: id allocation, lookups by name, account snapshots, the journal."""

from __future__ import annotations

import functools
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from alluse.domain.accounts import SLEEVE_LABEL, AccountKind, AccountStatus, CashSnapshot, new_snapshot
from alluse.domain.errors import NotFound
from alluse.domain.ledger import Leg, balanced
from alluse.store.citus import on_citus
from alluse.store.idlist import in_ids
from alluse.store.ids import allocate_blocks as allocate_blocks  # the use cases import them from here
from alluse.store.ids import allocate_ids as allocate_ids
from alluse.store.ids import sequence_draw
from alluse.store.prepared import COPY_MIN_ROWS, Prepared, insert
from alluse.store.schema import account_groups, accounts, alerts, portfolios, postings, transfers
from alluse.store.scope import did_you_mean, is_id


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
    # Whether a BUFFER_BREACH alert was open when the row was loaded (None: not known), so the alert
    # re-check after a write needs no read of its own in the usual case (no breach, no open alert).
    breach_alert_open: bool | None = None
    label: str = ""

    def __post_init__(self) -> None:
        self.label = account_label(self.kind, self.name)

    @property
    def snapshot(self) -> CashSnapshot:
        return new_snapshot(
            (self.label, self.kind, self.cash, self.positions_value, self.collateral, self.earmarked, self.buffer_bps)
        )

    def add_cash(self, delta: int, base_delta: int = 0) -> None:
        self.cash += delta
        self.base_capital += base_delta


_a = accounts.c
ACCOUNT_COLUMNS = (
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
    sa.exists()
    .where(
        # The portfolio as a parameter, not only as the correlation: Citus routes a correlated
        # subquery of the select list to one shard only when it names the distribution value itself.
        alerts.c.portfolio_id == _a.portfolio_id,
        alerts.c.portfolio_id == sa.bindparam("pid", type_=sa.BigInteger),
        alerts.c.account_id == _a.id,
        alerts.c.kind == "BUFFER_BREACH",
        alerts.c.cleared_at.is_(None),
    )
    .label("breach_alert_open"),
)
# The few accounts one use case touches, in one round trip: a statement per list length up to 4, the
# ids bound as id0, id1 ...
_ID_NAMES = ("id0", "id1", "id2", "id3")
_ACCOUNTS_BY_IDS = {
    n: Prepared(
        sa.select(*ACCOUNT_COLUMNS).where(
            _a.portfolio_id == sa.bindparam("pid"), _a.id.in_([sa.bindparam(_ID_NAMES[i]) for i in range(n)])
        )
    )
    for n in range(1, len(_ID_NAMES) + 1)
}
# Any other number of accounts: the ids as one list (store/idlist.py).
_ACCOUNTS_IN = Prepared(sa.select(*ACCOUNT_COLUMNS).where(_a.portfolio_id == sa.bindparam("pid"), in_ids(_a.id)))
# The same, with the portfolio's external counter-account of a given name (a cash move's bank).
_ACCOUNTS_WITH_EXTERNAL = {
    n: Prepared(
        sa.select(*ACCOUNT_COLUMNS).where(
            _a.portfolio_id == sa.bindparam("pid"),
            _a.id.in_([sa.bindparam(_ID_NAMES[i]) for i in range(n)]) | (_a.name == sa.bindparam("ext")),
        )
    )
    for n in range(1, len(_ID_NAMES) + 1)
}
_ACCOUNT_ID_BY_NAME = Prepared(
    sa.select(_a.id).where(_a.portfolio_id == sa.bindparam("pid"), _a.name == sa.bindparam("name"))
)
_ACCOUNT_ID_BY_ID = Prepared(
    sa.select(_a.id).where(_a.portfolio_id == sa.bindparam("pid"), _a.id == sa.bindparam("name"), _a.kind != "EXT")
)
# Rows as tuples in these orders (write_journal).
_TRANSFER_INSERT = insert(
    transfers, ["id", "portfolio_id", "number", "kind", "memo", "reverses_transfer_id", "audit_seq", "created_at"]
)
# The portfolio row is locked by the unit of work, so the next number cannot be taken twice.
_LAST_NUMBER = Prepared(
    sa.select(sa.func.coalesce(sa.func.max(transfers.c.number), 0)).where(
        transfers.c.portfolio_id == sa.bindparam("pid")
    )
)
_POSTING_INSERT = insert(postings, ["id", "portfolio_id", "transfer_id", "account_id", "amount_cents"])
# Rows as tuples in the statement's own order (apply_cash): on SQLite they go to the driver as they are.
_CASH_UPDATE = Prepared(
    accounts.update()
    .where(_a.portfolio_id == sa.bindparam("pid"), _a.id == sa.bindparam("aid"))
    .values(cash_cents=sa.bindparam("cash"), base_capital_cents=sa.bindparam("base")),
    ["cash", "base", "pid", "aid"],
)
# PostgreSQL, many accounts: the same rows in one statement, the values as three array parameters.
_CASH_ARRAYS = (
    sa.func.unnest(*(sa.bindparam(n, type_=sa.ARRAY(sa.BigInteger)) for n in ("aids", "cash", "base")))
    .table_valued("aid", "cash", "base")
    .render_derived(name="v")
)
_CASH_UPDATE_ALL = Prepared(
    accounts.update()
    .where(_a.portfolio_id == sa.bindparam("pid"), _a.id == _CASH_ARRAYS.c.aid)
    .values(cash_cents=_CASH_ARRAYS.c.cash, base_capital_cents=_CASH_ARRAYS.c.base)
)


def account_label(kind: AccountKind | str, name: str) -> str:
    prefix = _LABEL_PREFIX.get(kind)
    if prefix is None:
        prefix = _LABEL_PREFIX[AccountKind(kind)]  # an unknown kind raises, as the enum does
    return prefix + name


_EXT = AccountKind.EXT  # a module constant: read off its class, a member is a metaclass lookup
# What a label puts before the name, by kind (a StrEnum member and its text find the same entry).
_LABEL_PREFIX: dict[str, str] = {k: f"{SLEEVE_LABEL[k]} " if k in SLEEVE_LABEL else "" for k in AccountKind}


# The enums by their stored text: a dict lookup where calling the enum runs two Python frames (every
# account a unit of work loads takes three).
_KIND: dict[str, AccountKind] = {k.value: k for k in AccountKind}
_STATUS: dict[str, AccountStatus] = {s.value: s for s in AccountStatus}


def account_row(r: tuple) -> AccountRow:
    aid, pid, gid, kind, name, status, base, cash, pos, coll, ear, buffer_bps, breach_open = r
    return AccountRow(aid, pid, gid, _KIND.get(kind) or AccountKind(kind), name,
                      _STATUS.get(status) or AccountStatus(status), base, cash, pos, coll, ear, buffer_bps,
                      bool(breach_open))  # fmt: skip


def load_accounts(conn: sa.Connection, portfolio_id: int, ids: list[int]) -> dict[int, AccountRow]:
    """Snapshots of the given accounts; every id must belong to the portfolio."""
    out: dict[int, AccountRow] = {}
    if len(ids) in _ACCOUNTS_BY_IDS:
        params = dict(zip(_ID_NAMES, ids, strict=False))  # the first len(ids) names
        for r in _ACCOUNTS_BY_IDS[len(ids)].rows(conn, pid=portfolio_id, **params):
            out[r[0]] = account_row(r)
    elif ids:
        for r in _ACCOUNTS_IN.rows(conn, pid=portfolio_id, ids=ids):
            out[r[0]] = account_row(r)
    missing = set(ids) - out.keys()
    if missing:
        raise NotFound(f"no account with id {min(missing)} in this portfolio")
    return out


def load_with_external(
    conn: sa.Connection, portfolio_id: int, ids: list[int], name: str, now: datetime
) -> tuple[int, dict[int, AccountRow]]:
    """`load_accounts` of the ids and of the external counter-account `name` (created on first use),
    in one round trip in the usual case; returns the external account's id and every snapshot."""
    if len(ids) in _ACCOUNTS_WITH_EXTERNAL:
        params = dict(zip(_ID_NAMES, ids, strict=False))  # the first len(ids) names
        found = {
            r[0]: account_row(r)
            for r in _ACCOUNTS_WITH_EXTERNAL[len(ids)].rows(conn, pid=portfolio_id, ext=name, **params)
        }
        for a in found.values():
            if a.name == name and a.kind is _EXT and found.keys() >= set(ids):
                return a.id, found
    ext = external_account(conn, portfolio_id, name, now)
    return ext, load_accounts(conn, portfolio_id, sorted({ext, *ids}))


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


_EXTERNAL_IDS: dict[int, Prepared] = {}


def external_ids(conn: sa.Connection, portfolio_id: int, names: tuple[str, ...]) -> dict[str, int]:
    """The ids of those of the portfolio's external counter-accounts `names` that exist, in one read."""
    q = _EXTERNAL_IDS.get(len(names))
    if q is None:
        # One scalar subquery per name, each a lookup of the (portfolio, name) key: an IN list would
        # have SQLite build a temporary index of the names on every run.
        q = _EXTERNAL_IDS[len(names)] = Prepared(
            sa.select(
                *(
                    sa.select(_a.id)
                    .where(_a.portfolio_id == sa.bindparam("pid"), _a.name == sa.bindparam(f"n{i}", type_=sa.String))
                    .scalar_subquery()
                    for i in range(len(names))
                )
            )
        )
    found = q.rows(conn, pid=portfolio_id, **{f"n{i}": n for i, n in enumerate(names)})[0]
    return {name: aid for name, aid in zip(names, found, strict=True) if aid is not None}


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
    rows = [(a.cash, a.base_capital, a.portfolio_id, a.id) for a in changed]
    if (
        len(rows) < COPY_MIN_ROWS
        or conn.dialect.name != "postgresql"
        or on_citus(conn)
        or len({a.portfolio_id for a in changed}) != 1
    ):
        _CASH_UPDATE.tuples(conn, rows)
        return
    # One statement instead of one per account (a bulk unit of work changes a thousand and more: the
    # server ran each UPDATE apart, 35 ms for 1,001). The manifest records the same rows either way.
    pid = changed[0].portfolio_id
    last = {a.id: a for a in changed}  # as the statements one after the other: the last one stands
    _CASH_UPDATE._note(rows, True, tuples=True)
    _CASH_UPDATE_ALL.run(
        conn,
        pid=pid,
        aids=list(last),
        cash=[a.cash for a in last.values()],
        base=[a.base_capital for a in last.values()],
    )


class JournalEntry(NamedTuple):
    kind: str
    legs: list[Leg]
    audit_seq: int
    memo: str = ""
    reverses_transfer_id: int | None = None


# A journal entry from a tuple of all its fields, built in C (calling the named tuple runs its own
# Python `__new__`).
new_journal_entry = functools.partial(tuple.__new__, JournalEntry)


_JOURNAL_IDS = Prepared(
    sa.select(
        sa.select(sa.func.coalesce(sa.func.max(transfers.c.id), 0)).scalar_subquery(),
        sa.select(sa.func.coalesce(sa.func.max(postings.c.id), 0)).scalar_subquery(),
        _LAST_NUMBER.stmt.scalar_subquery(),  # type: ignore[attr-defined]
    )
)
# PostgreSQL: the same in one round trip, ids drawn from the sequences (other portfolios draw meanwhile).
_JOURNAL_IDS_PG = Prepared(
    sa.select(
        sequence_draw(transfers, sa.bindparam("nt", type_=sa.BigInteger)),
        sequence_draw(postings, sa.bindparam("np", type_=sa.BigInteger)),
        _LAST_NUMBER.stmt.scalar_subquery(),  # type: ignore[attr-defined]
    )
)


# SQLite: the highest transfer id, the highest posting id and the portfolio's last transfer number,
# read by a unit of work with its head (store/uow.py) and set here while its use case runs, as
# (connection, portfolio, [those three]): its journal writes count on from them instead of reading
# them again. The writer lock keeps them, and write_journal alone writes those rows.
JOURNAL_HEAD_COLUMNS = (
    _JOURNAL_IDS.stmt.selected_columns[0],  # type: ignore[attr-defined]
    _JOURNAL_IDS.stmt.selected_columns[1],  # type: ignore[attr-defined]
    sa.select(sa.func.coalesce(sa.func.max(transfers.c.number), 0))
    .where(transfers.c.portfolio_id == portfolios.c.id)
    .scalar_subquery(),
)
JOURNAL_HEADS: ContextVar[tuple[sa.Connection, int, list[int]] | None] = ContextVar("alluse_journal", default=None)


def _journal_ids(
    conn: sa.Connection, portfolio_id: int, n_transfers: int, n_postings: int
) -> tuple[list[int], list[int], int]:
    """Transfer ids, posting ids and the portfolio's last transfer number, for a journal write, in
    one round trip (none on SQLite inside a unit of work, see JOURNAL_HEADS)."""
    if conn.dialect.name == "postgresql":
        t_ids, p_ids, number = _JOURNAL_IDS_PG.rows(conn, pid=portfolio_id, nt=n_transfers, np=n_postings)[0]
        return sorted(t_ids or ()), sorted(p_ids or ()), int(number)
    heads = JOURNAL_HEADS.get()
    if heads is not None and heads[0] is conn and heads[1] == portfolio_id:
        t, p, number = at = heads[2]
        at[:] = (t + n_transfers, p + n_postings, number + n_transfers)
    else:
        t, p, number = _JOURNAL_IDS.rows(conn, pid=portfolio_id)[0]
    return list(range(t + 1, t + 1 + n_transfers)), list(range(p + 1, p + 1 + n_postings)), int(number)


class Journaled(NamedTuple):
    """A transfer as written: its id and its number in the portfolio (what people see)."""

    id: int
    number: int


_journaled = functools.partial(tuple.__new__, Journaled)


def insert_journal(conn: sa.Connection, portfolio_id: int, now: datetime, entries: list[JournalEntry]) -> list[int]:
    """Insert transfers and their postings in two executemany calls; returns the transfer ids."""
    return [t.id for t in write_journal(conn, portfolio_id, now, entries)]


def write_journal(
    conn: sa.Connection, portfolio_id: int, now: datetime, entries: list[JournalEntry]
) -> list[Journaled]:
    """`insert_journal`, returning each transfer's id and number (the portfolio's next ones)."""
    tids, pids, last_number = _journal_ids(conn, portfolio_id, len(entries), sum(len(e.legs) for e in entries))
    t_rows: list[tuple[Any, ...]] = []
    p_rows: list[tuple[Any, ...]] = []
    # Posting ids are chosen here too, so the audit manifest records the rows from these parameters.
    next_posting = iter(pids).__next__
    for i, (e, tid) in enumerate(zip(entries, tids, strict=True)):
        t_rows.append((tid, portfolio_id, last_number + 1 + i, str(e.kind), e.memo, e.reverses_transfer_id,
                       e.audit_seq, now))  # fmt: skip
        p_rows += [(next_posting(), portfolio_id, tid, a, c) for a, c in balanced(e.legs)]
    _TRANSFER_INSERT.tuples(conn, t_rows)
    _POSTING_INSERT.tuples(conn, p_rows)
    # From tuples in C: `_make` is a Python-level class method.
    return list(map(_journaled, zip(tids, range(last_number + 1, last_number + 1 + len(tids)), strict=True)))


def transfer_by_number(conn: sa.Connection, portfolio_id: int, number: int) -> int:
    """The id of the portfolio's transfer number `number`."""
    found = conn.execute(
        sa.select(transfers.c.id).where(transfers.c.portfolio_id == portfolio_id, transfers.c.number == number)
    ).scalar()
    if found is None:
        raise NotFound(f"no transfer #{number} in this portfolio (see `alluse journal`)")
    return int(found)
