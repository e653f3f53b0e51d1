"""The bare-driver baseline: the rows each use case writes, written with sqlite3 or psycopg alone.

Every section of the benchmark compares against these, so they live apart from the orchestration
in `bench/run.py`, and the sections (`bench/trades.py`, `bench/http.py`, …) import them from here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from alluse.domain.accounts import Allocation
from alluse.domain.rules import TEMPLATES

GROUP_AMOUNT = 100_000_00
SLEEVE_SPLIT = Allocation().split(GROUP_AMOUNT)
CLIENTS = 4


class _RawPg:
    """psycopg 3 with the sqlite3 surface the raw baseline uses (`?` placeholders, autocommit)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(_pg_sql(sql), params)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self.conn.cursor() as cur:
            if sql.startswith("INSERT") and len(rows) >= 64:
                # Bulk: COPY, as our own bulk path does; the statement's literals become constant columns.
                table, columns, values = _parse_insert(sql)
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        it = iter(row)
                        copy.write_row([next(it) if v is _PARAM else v for v in values])
            else:
                cur.executemany(_pg_sql(sql), rows)

    def close(self) -> None:
        self.conn.close()


_PARAM = object()
_AUDIT_COLUMNS = (
    "portfolio_id, seq, at, actor, action, idempotency_key, input_digest, result, override_reason, prev_hash, hash, "
    "key_id, rows"
)


def _parse_insert(sql: str) -> tuple[str, list[str], list[Any]]:
    """ "INSERT INTO t (a, b) VALUES (?, 1)" -> ("t", ["a", "b"], [_PARAM, 1]). Only the raw baseline's own
    statements come here: literals are integers, NULL or quoted strings without commas."""
    head, _, values = sql.partition(" VALUES ")
    head = head.removeprefix("INSERT INTO ")
    table, _, cols = head.partition(" ")
    columns = [c.strip() for c in (cols.strip(" ()") or _AUDIT_COLUMNS).split(",")]
    parsed: list[Any] = []
    for v in (v.strip() for v in values.strip(" ()").split(",")):
        parsed.append(_PARAM if v == "?" else None if v == "NULL" else v.strip("'") if v.startswith("'") else int(v))
    return table, columns, parsed


def fresh_plans(conn: Any) -> None:
    """PostgreSQL: DISCARD PLANS at the start of a bulk transaction, as our bulk unit of work does
    (store/uow.fresh_plans): without it the server's foreign-key checks may keep a plan made while
    the tables were nearly empty, and a bulk write of 100,000 rows becomes quadratic."""
    if isinstance(conn, _RawPg):
        conn.execute("DISCARD PLANS")


def _pg_sql(sql: str) -> str:
    return "BEGIN" if sql == "BEGIN IMMEDIATE" else sql.replace("?", "%s")


def _raw_connection(url: str, setup: bool = True) -> Any:
    if url.startswith("postgresql"):
        conn: Any = _RawPg(url)
    else:
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    if not setup:
        return conn
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO portfolios (id, name, creation_key, template, alloc_gen_bps, alloc_rev_bps, alloc_com_bps, "
        "audit_seq, audit_head, created_at) VALUES (1, 'bench', 'k', 'moderate', 4000, 3000, 3000, 0, '', ?)",
        (now,),
    )
    conn.execute(
        "INSERT INTO accounts (id, portfolio_id, group_id, kind, name, status, buffer_bps, opened_at) "
        "VALUES (1, 1, NULL, 'EXT', 'ext:bank', 'ACTIVE', 0, ?)",
        (now,),
    )
    conn.execute("COMMIT")
    return conn


_HASH = "0" * 64
_KEY_ID = "0" * 16  # the id of the key an audit entry is signed with, as long as a real one


class Texts(NamedTuple):
    """What a unit of work writes besides its rows' numbers: each request's result text (stored on
    its audit entry and, as the use cases do, as its event's payload) and the manifest of every row
    written (store/rowlog.py), on the unit of work's last audit entry. The baseline writes texts of the
    same kind and size as the use case's (docs/benchmarks.md, round twelve), made before its clock
    starts: it pays for writing them, not for spelling them."""

    action: str
    results: list[str]
    manifest: str


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _manifest(tables: Mapping[str, Sequence[Sequence[Any]]]) -> str:
    """Every row written, by table, each with the unit of work's portfolio, as a manifest lists them
    (ids first, then the rows)."""
    return _json({t: [list(range(len(rows))), [[1, *row] for row in rows]] for t, rows in sorted(tables.items())})


def _outbox(now: str, action: str, seqs: Sequence[int]) -> list[tuple]:
    """The outbox events of a unit of work's manifest, one per audit entry, their payloads by reference."""
    return [(action, None, None, None, s, now, s, _EVENT_ID, 1) for s in seqs]


_EVENT_ID = str(uuid.UUID(int=0))


def _raw_audit(start: int, n: int, now: str, texts: Texts, pid: int = 1) -> list[tuple]:
    last = n - 1
    return [
        (pid, start + i + 1, now, "bench", texts.action, f"k{start + i}", _HASH, texts.results[i], None, _HASH, _HASH,
         _KEY_ID, texts.manifest if i == last else None)
        for i in range(n)
    ]  # fmt: skip


def raw_events(conn: Any, audit_seqs: Sequence[int], now: str, texts: Texts, pid: int = 1) -> None:
    """One outbox event per audit entry, numbered from the portfolio's counter, as every unit of work
    writes them (store/outbox.py): the request's action as its kind, its result as its payload."""
    (head,) = conn.execute(
        "UPDATE portfolios SET event_seq = event_seq + ? WHERE id = ? RETURNING event_seq", (len(audit_seqs), pid)
    ).fetchone()
    first = head - len(audit_seqs) + 1
    conn.executemany(
        "INSERT INTO events (portfolio_id, kind, payload, audit_seq, created_at, seq, event_id, version) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
        [
            (pid, texts.action, r, s, now, first + i, str(uuid.uuid4()))
            for i, (s, r) in enumerate(zip(audit_seqs, texts.results, strict=True))
        ],
    )


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")


class OpenedRows(NamedTuple):
    """The rows of groups being opened (a group opening's, or a sweep's forks): each group, its
    accounts with their configuration and brokerage accounts, and its funding transfer with its legs."""

    groups: list[tuple]
    accounts: list[tuple]
    config: list[tuple]
    brokerage: list[tuple]
    transfers: list[tuple]
    postings: list[tuple]

    def tables(self) -> dict[str, list[tuple]]:
        return {"account_groups": self.groups, "accounts": self.accounts, "account_config": self.config,
                "brokerage_accounts": self.brokerage, "transfers": self.transfers, "postings": self.postings}  # fmt: skip


def _group_rows(start: int, n: int, now: str) -> OpenedRows:
    gid0, aid0, tid0 = start + 1, 2 + 3 * start, start + 1
    buffer = TEMPLATES["moderate"]
    rows = OpenedRows([(gid0 + i, f"A{gid0 + i}", now) for i in range(n)], [], [], [], [], [])
    for i in range(n):
        for j, (kind, amount) in enumerate(SLEEVE_SPLIT.items()):
            aid = aid0 + 3 * i + j
            rows.accounts.append(
                (aid, gid0 + i, kind.value, f"A{gid0 + i}-{kind.value}", buffer[kind].buffer_bps, amount, amount, now)
            )
            rows.config.append((aid,))
            rows.brokerage.append((aid, f"PA{aid:07d}", aid, now))
            rows.postings.append((tid0 + i, aid, amount))
        rows.postings.append((tid0 + i, 1, -GROUP_AMOUNT))
        rows.transfers.append((tid0 + i, tid0 + i, start + i + 1, now))
    return rows


def group_texts(start: int, n: int) -> Texts:
    """The texts of n group openings from group `start` (see `Texts`)."""
    now = _now()
    rows = _group_rows(start, n, now)
    results = []
    for i, (gid, name, _at) in enumerate(rows.groups):
        sleeves = rows.accounts[3 * i : 3 * i + 3]
        results.append(_json({
            "accounts": {a[2]: {"account_id": a[0], "brokerage_account": f"PAPER:PA{a[0]:07d}", "cash_cents": a[5],
                                "name": a[3]} for a in sleeves},
            "amount_cents": GROUP_AMOUNT, "group_id": gid, "name": name, "transfer_id": rows.transfers[i][0],
        }))  # fmt: skip
    return Texts(
        "group.open",
        results,
        _manifest({**rows.tables(), "events": _outbox(now, "group.open", range(start + 1, start + n + 1))}),
    )


def _raw_group_rows(conn: Any, start: int, n: int, texts: Texts | None = None) -> None:
    """n group openings from group `start`; `texts` made before a timed run (else here)."""
    texts = texts or group_texts(start, n)
    now = _now()
    rows = _group_rows(start, n, now)
    conn.executemany(
        "INSERT INTO account_groups (id, portfolio_id, name, kind, status, alloc_gen_bps, alloc_rev_bps, alloc_com_bps, "
        "opened_at) VALUES (?, 1, ?, 'PRIMARY', 'ACTIVE', 4000, 3000, 3000, ?)",
        rows.groups,
    )
    conn.executemany(
        "INSERT INTO accounts (id, portfolio_id, group_id, kind, name, status, buffer_bps, cash_cents, "
        "base_capital_cents, opened_at) VALUES (?, 1, ?, ?, ?, 'ACTIVE', ?, ?, ?, ?)",
        rows.accounts,
    )
    conn.executemany(
        "INSERT INTO account_config (account_id, portfolio_id, template, overrides) VALUES (?, 1, 'moderate', '{}')",
        rows.config,
    )
    conn.executemany(
        "INSERT INTO brokerage_accounts (id, portfolio_id, broker, number, account_id, registered_at) "
        "VALUES (?, 1, 'PAPER', ?, ?, ?)",
        rows.brokerage,
    )
    conn.executemany(
        "INSERT INTO transfers (id, portfolio_id, number, kind, memo, audit_seq, created_at) VALUES (?, 1, ?, 'GROUP_OPEN', '', ?, ?)",
        rows.transfers,
    )
    conn.executemany(
        "INSERT INTO postings (portfolio_id, transfer_id, account_id, amount_cents) VALUES (1, ?, ?, ?)", rows.postings
    )
    conn.execute("UPDATE accounts SET cash_cents = cash_cents - ? WHERE id = 1", (n * GROUP_AMOUNT,))
    conn.executemany(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _raw_audit(start, n, now, texts)
    )
    raw_events(conn, range(start + 1, start + n + 1), now, texts)
    conn.execute("UPDATE portfolios SET audit_seq = ?, audit_head = ? WHERE id = 1", (start + n, _HASH))


class _MoveRows(NamedTuple):
    transfers: list[tuple[int, int, str, int, str]]
    postings: list[tuple[int, int, int]]
    touched: dict[int, int]  # account: change of cash
    bank: int
    head: int  # the portfolio


def _move_rows(start: int, n: int, client: int | None, now: str) -> _MoveRows:
    """n deposit/withdrawal moves. A concurrent `client` gets its own audit head (portfolio client+2),
    its own bank row and its own 250 Gen-Accs, as each of our clients has its own portfolio."""
    seq0 = 1000 + start  # after the 1000 group openings
    tid0 = 1001 + start
    bank, head = (1, 1) if client is None else (_RAW_CLIENT_BANK + client, client + 2)
    # The Gen-Acc of a move by arithmetic, not from a list: a single move's run would build the list
    # again each time, a third of the baseline's own instructions, which is no cost of the rows.
    first, gens = (0, 1000) if client is None else (250 * client, 250)
    rows = _MoveRows([], [], {}, bank, head)
    touched = rows.touched
    for i in range(n):
        gen = 2 + 3 * (first + (start + i) % gens)
        amount = 10_000 if (start + i) % 2 == 0 else -10_000
        rows.transfers.append((tid0 + i, tid0 + i, "DEPOSIT" if amount > 0 else "WITHDRAWAL", seq0 + i + 1, now))
        rows.postings.append((tid0 + i, bank, -amount))
        rows.postings.append((tid0 + i, gen, amount))
        touched[gen] = touched.get(gen, 0) + amount
        touched[bank] = touched.get(bank, 0) - amount
    return rows


def move_texts(start: int, n: int, client: int | None = None) -> Texts:
    """The texts of the moves `_raw_move_rows` writes (see `Texts`)."""
    now = _now()
    rows = _move_rows(start, n, client, now)
    results = []
    for i, (tid, _number, kind, _seq, _at) in enumerate(rows.transfers):
        pair = rows.postings[2 * i : 2 * i + 2]
        legs = [{"account": "ext:bank" if a == rows.bank else f"A{(a - 2) // 3 + 1}-GEN", "amount_cents": x}
                for _t, a, x in pair]  # fmt: skip
        results.append(_json({"amount_cents": abs(pair[0][2]), "kind": kind, "legs": legs, "transfer_id": tid,
                              "transfer_number": tid}))  # fmt: skip
    # One kind of move names its action (cash.deposit), a mix is cash.move: as `services.cash.move_cash`.
    kinds = {t[2] for t in rows.transfers}
    action = f"cash.{kinds.pop().lower()}" if len(kinds) == 1 else "cash.move"
    seqs = [t[3] for t in rows.transfers]
    return Texts(
        action,
        results,
        _manifest({"transfers": rows.transfers, "postings": rows.postings, "events": _outbox(now, action, seqs)}),
    )


def _raw_move_rows(conn: Any, start: int, n: int, client: int | None = None, texts: Texts | None = None) -> None:
    """n moves from move `start` (see `_move_rows`); `texts` made before a timed run (else here)."""
    texts = texts or move_texts(start, n, client)
    now = _now()
    rows = _move_rows(start, n, client, now)
    seq0, bank, head = rows.transfers[0][3] - 1, rows.bank, rows.head  # the audit seq before the first move
    conn.executemany(
        "INSERT INTO transfers (id, portfolio_id, number, kind, memo, audit_seq, created_at) VALUES (?, 1, ?, ?, '', ?, ?)",
        rows.transfers,
    )
    conn.executemany(
        "INSERT INTO postings (portfolio_id, transfer_id, account_id, amount_cents) VALUES (1, ?, ?, ?)", rows.postings
    )
    conn.executemany(
        "UPDATE accounts SET cash_cents = cash_cents + ?, base_capital_cents = base_capital_cents + ? WHERE id = ?",
        [(d, d if a != bank else 0, a) for a, d in rows.touched.items()],
    )
    conn.executemany(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _raw_audit(seq0, n, now, texts, head)
    )
    raw_events(conn, range(seq0 + 1, seq0 + n + 1), now, texts, head)
    conn.execute("UPDATE portfolios SET audit_seq = ?, audit_head = ? WHERE id = ?", (seq0 + n, _HASH, head))


_RAW_CLIENT_BANK = 9_000_000


def _raw_client_setup(conn: Any) -> None:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    conn.execute("BEGIN")
    for c in range(CLIENTS):
        conn.execute(
            "INSERT INTO portfolios (id, name, creation_key, template, alloc_gen_bps, alloc_rev_bps, alloc_com_bps, "
            "audit_seq, audit_head, created_at) VALUES (?, ?, ?, 'moderate', 4000, 3000, 3000, 0, '', ?)",
            (c + 2, f"client{c}", f"k{c}", now),
        )
        conn.execute(
            "INSERT INTO accounts (id, portfolio_id, group_id, kind, name, status, buffer_bps, opened_at) "
            "VALUES (?, 1, NULL, 'EXT', ?, 'ACTIVE', 0, ?)",
            (_RAW_CLIENT_BANK + c, f"ext:bank{c}", now),
        )
    conn.execute("COMMIT")
