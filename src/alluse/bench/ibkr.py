"""Benchmark of the IBKR statement import on a generated Flex statement of 10,000 trades.

`ibkr_parse_s`: reading the XML with ibflex into facts. `ibkr_import_trades_per_s`: the import after
parsing — one unit of work booking every trade through `services.trades.Book` (idempotency keys,
audit chain, journal, FIFO lots, tax ledger, positions, broker rows), then the reconciliation. The
raw baseline (`raw_ibkr_insert_trades_per_s`) writes the same kinds of rows per trade with bare
sqlite3 executemany in the same run (the trades bench's raw fills). SQLite only, as the trades bench.
"""

from __future__ import annotations

import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from alluse.brokers.ibkr import read_flex
from alluse.services import groups
from alluse.services.statements import import_flex

if TYPE_CHECKING:
    from alluse.bench.harness import Bench

TRADES = 10_000
ACCOUNT = "U7000001"
DAY = date(2026, 10, 5)
QTY, PRICE, COMMISSION = 10, Decimal("10.25"), Decimal("1.00")
DEPOSIT = Decimal("1000000")


def flex_statement(n: int, account: str = ACCOUNT) -> bytes:
    """A Flex statement of one account: a deposit, then n trades — round trips of 10 XYZ shares
    (bought, then sold), each with a commission — and the ending cash they add up to."""
    root = ET.Element("FlexQueryResponse", queryName="bench", type="AF")
    stmts = ET.SubElement(root, "FlexStatements", count="1")
    d = DAY.isoformat()
    st = ET.SubElement(
        stmts, "FlexStatement", accountId=account, fromDate=d, toDate=d, period="Custom", whenGenerated=f"{d};200000"
    )
    trades = ET.SubElement(st, "Trades")
    cash = DEPOSIT
    for i in range(n):
        buy = i % 2 == 0
        proceeds = -QTY * PRICE if buy else QTY * PRICE
        net = proceeds - COMMISSION
        cash += net
        ET.SubElement(
            trades,
            "Trade",
            accountId=account,
            currency="USD",
            assetCategory="STK",
            symbol="XYZ",
            tradeID=str(10_000_000 + i),
            tradeDate=d,
            transactionType="ExchTrade",
            quantity=str(QTY if buy else -QTY),
            tradePrice=str(PRICE),
            proceeds=str(proceeds),
            taxes="0",
            ibCommission=str(-COMMISSION),
            ibCommissionCurrency="USD",
            netCash=str(net),
            openCloseIndicator="O" if buy else "C",
            buySell="BUY" if buy else "SELL",
            levelOfDetail="EXECUTION",
        )
    txs = ET.SubElement(st, "CashTransactions")
    ET.SubElement(
        txs,
        "CashTransaction",
        accountId=account,
        currency="USD",
        type="Deposits/Withdrawals",
        amount=str(DEPOSIT),
        dateTime=f"{d};090000",
        transactionID="20000000",
        levelOfDetail="DETAIL",
    )
    report = ET.SubElement(st, "CashReport")
    ET.SubElement(report, "CashReportCurrency", accountId=account, currency="USD", endingCash=str(cash))
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def run_ibkr(bench: Bench) -> None:
    from alluse.bench.trades import raw_fills

    data = flex_statement(TRADES)
    parse_s = statistics.median(_timed(lambda: read_flex(data)) for _ in range(bench.repeat))
    bench.emit("ibkr_parse_s", parse_s, "s", trades=TRADES)
    bench.emit("ibkr_parse_trades_per_s", TRADES / parse_s, "trades/s", trades=TRADES)
    flex = read_flex(data)

    def ours() -> float:
        engine = bench.fresh_engine()
        refs = [f"IBKR:{ACCOUNT}", "IBKR:U7000002", "IBKR:U7000003"]
        groups.open_group(engine, "bench", "bench", "g", groups.group_opening(0, refs))
        t = time.perf_counter()
        report = import_flex(engine, "bench", "bench", flex)
        elapsed = time.perf_counter() - t
        assert report["accounts"][0]["added"] == TRADES + 1 and report["reconciliation"]["differences"] == 0
        engine.dispose()
        return elapsed

    rate = bench.median_rate("ibkr: import", TRADES, ours)
    bench.emit("ibkr_import_trades_per_s", rate, "trades/s", trades=TRADES, after="parsing")
    saved = bench.bulk_fills
    bench.bulk_fills = TRADES
    try:
        raw = bench.median_rate("ibkr: raw insert", TRADES, lambda: raw_fills(bench, per_transaction=False))
    finally:
        bench.bulk_fills = saved
    bench.emit("raw_ibkr_insert_trades_per_s", raw, "trades/s", trades=TRADES)
    bench.emit("ibkr_import_vs_raw", rate / raw, "ratio")


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
