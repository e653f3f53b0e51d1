"""The bare-driver baseline: the rows each use case writes, written with sqlite3 or psycopg alone.

Every section of the benchmark compares against these, so they live apart from the orchestration
in `bench/run.py`, and the sections (`bench/trades.py`, `bench/http.py`, …) import them from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

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
# A unit of work's row manifest (store/rowlog.py) rides on its audit entry; the baseline writes one too.
_ROWS = '[["postings",[1],[1,1,1,100]]]'


def _raw_audit(start: int, n: int, now: str, pid: int = 1) -> list[tuple]:
    return [
        (pid, start + i + 1, now, "bench", "x", f"k{start + i}", _HASH, '{"r":1}', None, _HASH, _HASH, "k1", _ROWS)
        for i in range(n)
    ]


def raw_events(conn: Any, audit_seqs: Sequence[int], now: str, pid: int = 1) -> None:
    """One outbox event per audit entry, numbered from the portfolio's counter, as every unit of work
    writes them (store/outbox.py)."""
    (head,) = conn.execute(
        "UPDATE portfolios SET event_seq = event_seq + ? WHERE id = ? RETURNING event_seq", (len(audit_seqs), pid)
    ).fetchone()
    first = head - len(audit_seqs) + 1
    conn.executemany(
        "INSERT INTO events (portfolio_id, kind, payload, audit_seq, created_at, seq, event_id, version) "
        "VALUES (?, 'x', '{\"r\":1}', ?, ?, ?, ?, 1)",
        [(pid, s, now, first + i, str(uuid.uuid4())) for i, s in enumerate(audit_seqs)],
    )


def _raw_group_rows(conn: Any, start: int, n: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    gid0, aid0, tid0 = start + 1, 2 + 3 * start, start + 1
    buffer = TEMPLATES["moderate"]
    conn.executemany(
        "INSERT INTO account_groups (id, portfolio_id, name, kind, status, alloc_gen_bps, alloc_rev_bps, alloc_com_bps, "
        "opened_at) VALUES (?, 1, ?, 'PRIMARY', 'ACTIVE', 4000, 3000, 3000, ?)",
        [(gid0 + i, f"A{gid0 + i}", now) for i in range(n)],
    )
    acc, cfg, brk, post = [], [], [], []
    for i in range(n):
        for j, (kind, amount) in enumerate(SLEEVE_SPLIT.items()):
            aid = aid0 + 3 * i + j
            acc.append(
                (aid, gid0 + i, kind.value, f"A{gid0 + i}-{kind.value}", buffer[kind].buffer_bps, amount, amount, now)
            )
            cfg.append((aid,))
            brk.append((aid, f"PA{aid:07d}", aid, now))
            post.append((tid0 + i, aid, amount))
        post.append((tid0 + i, 1, -GROUP_AMOUNT))
    conn.executemany(
        "INSERT INTO accounts (id, portfolio_id, group_id, kind, name, status, buffer_bps, cash_cents, "
        "base_capital_cents, opened_at) VALUES (?, 1, ?, ?, ?, 'ACTIVE', ?, ?, ?, ?)",
        acc,
    )
    conn.executemany(
        "INSERT INTO account_config (account_id, portfolio_id, template, overrides) VALUES (?, 1, 'moderate', '{}')",
        cfg,
    )
    conn.executemany(
        "INSERT INTO brokerage_accounts (id, portfolio_id, broker, number, account_id, registered_at) "
        "VALUES (?, 1, 'PAPER', ?, ?, ?)",
        brk,
    )
    conn.executemany(
        "INSERT INTO transfers (id, portfolio_id, number, kind, memo, audit_seq, created_at) VALUES (?, 1, ?, 'GROUP_OPEN', '', ?, ?)",
        [(tid0 + i, tid0 + i, start + i + 1, now) for i in range(n)],
    )
    conn.executemany(
        "INSERT INTO postings (portfolio_id, transfer_id, account_id, amount_cents) VALUES (1, ?, ?, ?)", post
    )
    conn.execute("UPDATE accounts SET cash_cents = cash_cents - ? WHERE id = 1", (n * GROUP_AMOUNT,))
    conn.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _raw_audit(start, n, now))
    raw_events(conn, range(start + 1, start + n + 1), now)
    conn.execute("UPDATE portfolios SET audit_seq = ?, audit_head = ? WHERE id = 1", (start + n, _HASH))


def _raw_move_rows(conn: Any, start: int, n: int, client: int | None = None) -> None:
    """n deposit/withdrawal moves. A concurrent `client` gets its own audit head (portfolio client+2),
    its own bank row and its own 250 Gen-Accs, as each of our clients has its own portfolio."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    seq0 = 1000 + start  # after the 1000 group openings
    tid0 = 1001 + start
    bank, head = (1, 1) if client is None else (_RAW_CLIENT_BANK + client, client + 2)
    # The Gen-Acc of a move by arithmetic, not from a list: a single move's run would build the list
    # again each time, a third of the baseline's own instructions, which is no cost of the rows.
    first, gens = (0, 1000) if client is None else (250 * client, 250)
    transfers: list[tuple[int, int, str, int, object]] = []
    post: list[tuple[int, int, int]] = []
    touched: dict[int, int] = {}
    for i in range(n):
        gen = 2 + 3 * (first + (start + i) % gens)
        amount = 10_000 if (start + i) % 2 == 0 else -10_000
        transfers.append((tid0 + i, tid0 + i, "DEPOSIT" if amount > 0 else "WITHDRAWAL", seq0 + i + 1, now))
        post.append((tid0 + i, bank, -amount))
        post.append((tid0 + i, gen, amount))
        touched[gen] = touched.get(gen, 0) + amount
        touched[bank] = touched.get(bank, 0) - amount
    conn.executemany(
        "INSERT INTO transfers (id, portfolio_id, number, kind, memo, audit_seq, created_at) VALUES (?, 1, ?, ?, '', ?, ?)",
        transfers,
    )
    conn.executemany(
        "INSERT INTO postings (portfolio_id, transfer_id, account_id, amount_cents) VALUES (1, ?, ?, ?)", post
    )
    conn.executemany(
        "UPDATE accounts SET cash_cents = cash_cents + ?, base_capital_cents = base_capital_cents + ? WHERE id = ?",
        [(d, d if a != bank else 0, a) for a, d in touched.items()],
    )
    conn.executemany(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _raw_audit(seq0, n, now, head)
    )
    raw_events(conn, range(seq0 + 1, seq0 + n + 1), now, head)
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
