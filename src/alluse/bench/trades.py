"""Benchmark of trades: fills one per unit of work and in bulk, each against a raw sqlite3 baseline
writing the same rows; and the tax-year report over a large tax ledger against the raw aggregate.

Every fill of "ours" goes through the real use case: idempotency, audit chain, journal legs, FIFO
lots, tax ledger rows, positions, cached account figures and the buffer alert check.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from alluse.bench.raw import Texts, _json, _manifest, _outbox
from alluse.domain.lots import Term
from alluse.services import groups, reports
from alluse.services.trades import Fill, FillAction, record_fills

if TYPE_CHECKING:
    from alluse.bench.harness import Bench

N_GROUPS = 100
PRICE = "10.25"
QTY = 10
COMMISSION = 100
DAY = date(2027, 1, 4)


def _com_ids(n_groups: int) -> list[int]:
    # Ids as the group openings assign them (and as _raw_group_rows writes them): Com is third.
    return [2 + 3 * g + 2 for g in range(n_groups)]


def _facts(coms: list[int], n: int, prefix: str) -> list[tuple[str, Fill]]:
    """Round trips: each Com-Acc buys 10 XYZ, then sells them (a lot opened, then closed with a gain)."""
    out = []
    for i in range(n):
        action = FillAction.BTO if (i // len(coms)) % 2 == 0 else FillAction.STC
        out.append((f"{prefix}{i}", Fill(coms[i % len(coms)], action, "XYZ", QTY, PRICE, COMMISSION, DAY)))
    return out


def _funded(bench: Bench) -> Any:
    engine = bench.fresh_engine()
    groups.open_groups(engine, "bench", "bench", [(f"g{i}", groups.group_opening(10_000_000)) for i in range(N_GROUPS)])
    return engine


def fills_single(bench: Bench) -> float:
    engine = _funded(bench)
    facts = _facts(_com_ids(N_GROUPS), bench.single_fills, "s")
    t = bench.clock()
    for key, f in facts:
        record_fills(engine, "bench", "bench", [(key, f)])
    return bench.elapsed(t)


def fills_bulk(bench: Bench) -> float:
    engine = _funded(bench)
    facts = _facts(_com_ids(N_GROUPS), bench.bulk_fills, "b")
    t = bench.clock()
    record_fills(engine, "bench", "bench", facts)
    return bench.elapsed(t)


# --- raw baseline: the same rows with bare sqlite3 ----------------------------------------------


_COMS = _com_ids(N_GROUPS)
_EXT = 2 + 3 * N_GROUPS  # ext:market, then ext:fees
_SEQ0 = N_GROUPS  # after the group openings
_GROSS = QTY * 1025


class _FillRows(NamedTuple):
    transfers: list[tuple]
    postings: list[tuple]
    fills: list[tuple]
    new_lots: list[tuple]
    lots_closed: list[tuple]
    closes: list[tuple]
    positions: list[tuple]
    accounts: dict[int, int]  # account: change of cash


def _fill_rows(start: int, n: int, open_lot: dict[int, int], now: str) -> _FillRows:
    """The rows of the round trips `_facts` gives, fills start .. start + n; `open_lot` (account: the
    lot its last buy opened) is carried from one batch to the next."""
    rows = _FillRows([], [], [], [], [], [], [], {})
    accs = rows.accounts
    for i in range(start, start + n):
        aid = _COMS[i % len(_COMS)]
        buy = (i // len(_COMS)) % 2 == 0
        cash = (-_GROSS if buy else _GROSS) - COMMISSION
        tid, fid, seq = i + 1 + N_GROUPS, i + 1, _SEQ0 + i + 1
        rows.transfers.append((tid, tid, seq, now))  # one portfolio: number = id
        rows.postings.extend(((tid, aid, cash), (tid, _EXT, -(cash + COMMISSION)), (tid, _EXT + 1, COMMISSION)))
        rows.fills.append((fid, aid, "BTO" if buy else "STC", cash, tid, seq))
        if buy:
            rows.new_lots.append((fid, aid, fid, cash, cash))
            open_lot[aid] = fid
        else:
            lid = open_lot.pop(aid)
            rows.lots_closed.append((lid,))
            rows.closes.append((aid, lid, fid, -_GROSS - COMMISSION, cash, cash - _GROSS - COMMISSION))
        rows.positions.append((QTY if buy else 0, aid))
        accs[aid] = accs.get(aid, 0) + cash
    return rows


def _fill_texts(rows: _FillRows, now: str) -> Texts:
    """The results and manifest of a unit of work's fills (bench/raw.Texts), as `record_fills` writes them."""
    results = [
        _json({"account": f"A{(aid - 4) // 3 + 1}-COM", "action": action, "buffer_breach": False, "cash_cents": cash,
               "fill_id": fid, "quantity": QTY, "realized_cents": 0 if action == "BTO" else -2 * COMMISSION,
               "symbol": "XYZ", "trade_date": DAY.isoformat()})
        for fid, aid, action, cash, _tid, _seq in rows.fills
    ]  # fmt: skip
    tables = {"transfers": rows.transfers, "postings": rows.postings, "fills": rows.fills, "lots": rows.new_lots,
              "lot_closes": rows.closes, "positions": rows.positions}  # fmt: skip
    seqs = [t[2] for t in rows.transfers]
    return Texts("trade.fill", results, _manifest({**tables, "events": _outbox(now, "trade.fill", seqs)}))


def raw_fills(bench: Bench, per_transaction: bool) -> float:
    from alluse.bench.raw import _HASH, _raw_audit, _raw_group_rows, raw_events
    from alluse.bench.raw import _raw_connection as _raw_sqlite

    conn = _raw_sqlite(bench.fresh_url())
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    conn.execute("BEGIN IMMEDIATE")
    _raw_group_rows(conn, 0, N_GROUPS)
    ext = _EXT
    conn.executemany(
        "INSERT INTO accounts (id, portfolio_id, group_id, kind, name, status, buffer_bps, opened_at) "
        "VALUES (?, 1, NULL, 'EXT', ?, 'ACTIVE', 0, ?)",
        [(ext, "ext:market", now), (ext + 1, "ext:fees", now)],
    )
    conn.execute(
        "INSERT INTO instruments (id, portfolio_id, symbol, kind, underlying, multiplier) "
        "VALUES (1, 1, 'XYZ', 'STOCK', 'XYZ', 1)"
    )
    conn.execute("COMMIT")
    n = bench.single_fills if per_transaction else bench.bulk_fills
    batch = 1 if per_transaction else n
    # The texts of each unit of work, made before the clock starts (bench/raw.Texts), from its rows
    # as the timed loop makes them again.
    lots: dict[int, int] = {}
    texts = [_fill_texts(_fill_rows(start, batch, lots, now), now) for start in range(0, n, batch)]
    open_lot: dict[int, int] = {}
    t = bench.clock()
    for start, written in zip(range(0, n, batch), texts, strict=True):
        conn.execute("BEGIN IMMEDIATE")
        trans, post, fill_rows, new_lots, lot_upd, closes, pos, accs = _fill_rows(start, batch, open_lot, now)
        audit = _raw_audit(_SEQ0 + start, batch, now, written)
        conn.executemany(
            "INSERT INTO transfers (id, portfolio_id, number, kind, memo, audit_seq, created_at) VALUES (?, 1, ?, 'TRADE', '', ?, ?)",
            trans,
        )
        conn.executemany(
            "INSERT INTO postings (portfolio_id, transfer_id, account_id, amount_cents) VALUES (1, ?, ?, ?)", post
        )
        conn.executemany(
            "INSERT INTO fills (id, portfolio_id, account_id, instrument_id, action, quantity, price_e4, "
            "commission_cents, cash_cents, trade_date, week_start, transfer_id, audit_seq) "
            f"VALUES (?, 1, ?, 1, ?, {QTY}, 102500, {COMMISSION}, ?, '2027-01-04', '2027-01-04', ?, ?)",
            fill_rows,
        )
        conn.executemany(
            "INSERT INTO lots (id, portfolio_id, account_id, instrument_id, open_fill_id, side, opened_on, quantity, "
            f"open_cash_cents, remaining, remaining_cash_cents) VALUES (?, 1, ?, 1, ?, 'LONG', '2027-01-04', {QTY}, ?, "
            f"{QTY}, ?)",
            new_lots,
        )
        conn.executemany("UPDATE lots SET remaining = 0, remaining_cash_cents = 0 WHERE id = ?", lot_upd)
        conn.executemany(
            "INSERT INTO lot_closes (portfolio_id, account_id, lot_id, fill_id, quantity, closed_on, open_cash_cents, "
            f"close_cash_cents, gain_cents, term, realized) VALUES (1, ?, ?, ?, {QTY}, '2027-01-04', ?, ?, ?, "
            "'SHORT', TRUE)",  # TRUE: a boolean on PostgreSQL, 1 on SQLite
            [(a, lid, fid, oc, cc, oc + cc) for a, lid, fid, oc, cc, _g in closes],
        )
        conn.executemany(
            "INSERT INTO positions (portfolio_id, account_id, instrument_id, quantity, mark_e4, marked_on) "
            "VALUES (1, ?, 1, ?, 102500, '2027-01-04') ON CONFLICT (account_id, instrument_id) "
            "DO UPDATE SET quantity = excluded.quantity",
            [(a, q) for q, a in pos],
        )
        conn.executemany(
            "UPDATE accounts SET cash_cents = cash_cents + ?, positions_value_cents = ? WHERE id = ?",
            [(d, 0, a) for a, d in accs.items()],
        )
        conn.executemany(
            "UPDATE accounts SET cash_cents = cash_cents + ? WHERE id = ?",
            [(-sum(accs.values()) - COMMISSION * batch, ext), (COMMISSION * batch, ext + 1)],
        )
        conn.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", audit)
        raw_events(conn, [a[1] for a in audit], now, written)
        conn.execute("UPDATE portfolios SET audit_seq = ?, audit_head = ? WHERE id = 1", (_SEQ0 + start + batch, _HASH))
        conn.execute("COMMIT")
    elapsed = bench.elapsed(t)
    conn.close()
    return elapsed


# --- the tax-year report over a large tax ledger ------------------------------------------------


def _ledger(bench: Bench, n: int) -> str:
    """A portfolio whose tax year holds n realized lot closings (shares of 500 symbols, gains and
    losses, short and long term), written with the raw driver: the report is what is measured."""
    from alluse.bench.raw import _raw_connection as _raw_sqlite
    from alluse.bench.raw import _raw_group_rows

    url = bench.fresh_url()
    conn = _raw_sqlite(url)
    rng = random.Random(4)
    conn.execute("BEGIN IMMEDIATE")
    _raw_group_rows(conn, 0, 10)
    coms = _com_ids(10)
    conn.executemany(
        "INSERT INTO instruments (id, portfolio_id, symbol, kind, underlying, multiplier) "
        "VALUES (?, 1, ?, 'STOCK', ?, 1)",
        [(k + 1, f"S{k:03d}", f"S{k:03d}") for k in range(500)],
    )
    conn.execute(
        "INSERT INTO transfers (id, portfolio_id, number, kind, memo, audit_seq, created_at) "
        "VALUES (100000, 1, 100000, 'TRADE', '', 1, '2027-01-01 00:00:00')"
    )
    start = date(2026, 1, 1)
    chunk = 100_000
    for base in range(0, n, chunk):
        fills_rows, lot_rows, close_rows = [], [], []
        for i in range(base, min(n, base + chunk)):
            opened = start + timedelta(days=rng.randrange(0, 700))
            closed = max(opened, date(2027, 1, 1)) + timedelta(days=rng.randrange(0, 365))
            closed = min(closed, date(2027, 12, 31))
            cost = rng.randrange(1_000, 1_000_000)
            proceeds = cost + rng.randrange(-cost // 2, cost // 2)
            term = Term.LONG if (closed - opened).days > 365 else Term.SHORT
            fid = i + 1
            fills_rows.append((fid, coms[i % 10], opened.isoformat()))
            lot_rows.append((fid, coms[i % 10], rng.randrange(1, 501), fid, opened.isoformat(), -cost))
            close_rows.append((coms[i % 10], fid, fid, closed.isoformat(), -cost, proceeds, proceeds - cost, term))
        conn.executemany(
            "INSERT INTO fills (id, portfolio_id, account_id, instrument_id, action, quantity, price_e4, "
            "commission_cents, cash_cents, trade_date, week_start, transfer_id, audit_seq) "
            "VALUES (?, 1, ?, 1, 'BTO', 1, 1, 0, 0, ?, '2026-01-05', 100000, 1)",
            fills_rows,
        )
        conn.executemany(
            "INSERT INTO lots (id, portfolio_id, account_id, instrument_id, open_fill_id, side, opened_on, quantity, "
            "open_cash_cents, remaining, remaining_cash_cents) VALUES (?, 1, ?, ?, ?, 'LONG', ?, 100, ?, 0, 0)",
            lot_rows,
        )
        conn.executemany(
            "INSERT INTO lot_closes (portfolio_id, account_id, lot_id, fill_id, quantity, closed_on, open_cash_cents, "
            "close_cash_cents, gain_cents, term, realized) VALUES (1, ?, ?, ?, 100, ?, ?, ?, ?, ?, 1)",
            close_rows,
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return url


def tax_year_report(bench: Bench) -> None:
    import sqlite3

    from alluse.store.db import make_engine

    n = bench.ledger_lots
    url = _ledger(bench, n)
    engine = make_engine(url)
    times = []
    for _ in range(bench.repeat):
        t = time.perf_counter()
        r = reports.tax_year(engine, "bench", 2027)
        times.append(time.perf_counter() - t)
    closes = r["short_term"]["closes"] + r["long_term"]["closes"]
    assert closes == n, (closes, n)
    engine.dispose()
    bench.emit(
        "tax_year_report_ms",
        1000 * min(times),
        "ms",
        realized_lots=n,
        wash_sale_flagged=r["wash_sale_flagged"]["closes"],
    )
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    raw = []
    for _ in range(bench.repeat):
        t = time.perf_counter()
        conn.execute(
            "SELECT term, sum(CASE WHEN gain_cents > 0 THEN gain_cents ELSE 0 END), "
            "sum(CASE WHEN gain_cents < 0 THEN gain_cents ELSE 0 END), count(*) FROM lot_closes "
            "WHERE portfolio_id = 1 AND realized = 1 AND closed_on BETWEEN '2027-01-01' AND '2027-12-31' GROUP BY term"
        ).fetchall()
        raw.append(time.perf_counter() - t)
    conn.close()
    bench.emit(
        "raw_tax_year_aggregate_ms",
        1000 * min(raw),
        "ms",
        realized_lots=n,
        note="sums by term only, no wash-sale check",
    )


def run_trades(bench: Bench) -> None:
    single = bench.median_rate("fills, one per unit of work", bench.single_fills, lambda: fills_single(bench))
    bench.emit("fills_per_s", single, "fills/s", mode="single", fills=bench.single_fills)
    raw_single = bench.median_rate("raw fills, one per transaction", bench.single_fills, lambda: raw_fills(bench, True))
    bench.emit("raw_fills_per_s", raw_single, "fills/s", mode="single", fills=bench.single_fills)
    bulk = bench.median_rate("fills, bulk import", bench.bulk_fills, lambda: fills_bulk(bench))
    bench.emit("fills_per_s", bulk, "fills/s", mode="bulk", fills=bench.bulk_fills)
    raw_bulk = bench.median_rate("raw fills, bulk", bench.bulk_fills, lambda: raw_fills(bench, False))
    bench.emit("raw_fills_per_s", raw_bulk, "fills/s", mode="bulk", fills=bench.bulk_fills)
    bench.ratio(
        "fills_single_vs_raw", single, raw_single, "fills, one per unit of work", "raw fills, one per transaction"
    )
    bench.ratio("fills_bulk_vs_raw", bulk, raw_bulk, "fills, bulk import", "raw fills, bulk")
    tax_year_report(bench)
