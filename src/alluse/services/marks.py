"""Marks: market prices per instrument and date (ALLUSE_RULES §6). A mark revalues every position in
that instrument whose price is not newer, keeping each account's cached positions value in step; a
market move that leaves an account below its buffer raises a BUFFER_BREACH alert, never an error."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import NotRequired, TypedDict, cast

from sqlalchemy.engine import Engine

from alluse.domain.errors import InvalidInput, NotFound
from alluse.domain.instruments import parse_price, parse_symbol, value_cents
from alluse.services.alerts import check_buffer
from alluse.store import marks as store
from alluse.store.repo import load_accounts
from alluse.store.uow import Request, Tx, write


class MarksApplied(TypedDict):
    as_of: str
    marks: int
    positions_revalued: int
    buffer_breach: list[str]  # the accounts the marks left below their cash buffer
    replayed: NotRequired[bool]


class FeedTick(TypedDict):
    symbol: str
    as_of: str
    recorded: bool  # false: a symbol never traded in this portfolio
    replayed: NotRequired[bool]


def parse_marks_file(path: Path) -> dict[str, str]:
    """CSV with columns symbol,price (a header row is optional) or a JSON object {symbol: price}."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text, parse_float=str, parse_int=str)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"{path}: expected a JSON object of symbol → price")
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise InvalidInput(f"{path} line {n}: expected symbol,price")
        if n == 1 and row[1].strip().lower() == "price":
            continue
        out[row[0]] = row[1]
    return out


def record_marks(
    engine: Engine, actor: str, portfolio: str | int | None, key: str, prices: dict[str, str], as_of: date
) -> MarksApplied:
    if not prices:
        raise InvalidInput("no marks given")
    parsed = {parse_symbol(s).symbol: parse_price(p, field=f"price of {s}") for s, p in prices.items()}

    def apply(tx: Tx, _reqs: list[Request]) -> list[MarksApplied]:
        return [apply_marks(tx, parsed, as_of, tx.seq(0))]

    payload = {"as_of": as_of.isoformat(), "prices": {s: str(v) for s, v in sorted(parsed.items())}}
    return cast(MarksApplied, write(engine, portfolio, actor, "trade.marks", [Request(key, payload)], apply)[0])


def apply_marks(tx: Tx, parsed: dict[str, int], as_of: date, seq: int, *, known_only: bool = False) -> MarksApplied:
    """Record marks (symbol → price in ten-thousandths) inside the caller's unit of work and revalue
    positions. `known_only`: skip symbols never traded in the portfolio instead of refusing them."""
    conn, pid = tx.conn, tx.portfolio_id
    ids = store.instrument_ids(conn, pid, parsed)
    missing = sorted(set(parsed) - ids.keys())
    if known_only:
        parsed = {s: v for s, v in parsed.items() if s in ids}
    elif missing:
        raise NotFound(f"no instrument {missing[0]!r} has been traded in this portfolio")
    if not parsed:
        return {"as_of": as_of.isoformat(), "marks": 0, "positions_revalued": 0, "buffer_breach": []}
    store.insert_marks(
        conn,
        [
            {"portfolio_id": pid, "instrument_id": ids[s], "as_of": as_of, "price_e4": v, "audit_seq": seq}
            for s, v in parsed.items()
        ],
    )
    price_by_id = {ids[s]: v for s, v in parsed.items()}
    rows = store.positions_to_revalue(conn, pid, price_by_id, as_of)
    delta: dict[int, int] = {}
    for _pid, aid, iid, qty, old, mult in rows:
        new = price_by_id[iid]
        delta[aid] = delta.get(aid, 0) + value_cents(qty, new, mult) - value_cents(qty, old, mult)
    if rows:
        store.set_position_marks(conn, pid, {r[0]: price_by_id[r[2]] for r in rows}, as_of)
    state = load_accounts(conn, pid, sorted(delta))
    breaches = []
    for aid, d in delta.items():
        acc = state[aid]
        acc.positions_value += d
        store.set_positions_value(conn, pid, aid, acc.positions_value)
        if check_buffer(tx, acc, f"the marks of {as_of.isoformat()}"):
            breaches.append(acc.name)
    return {
        "as_of": as_of.isoformat(),
        "marks": len(parsed),
        "positions_revalued": len(rows),
        "buffer_breach": sorted(breaches),
    }


def record_feed_marks(
    engine: Engine, actor: str, portfolio: str | int | None, ticks: list[tuple[str, str, str, date]]
) -> list[FeedTick]:
    """Marks from a price feed, one unit of work per batch: each tick (message id, symbol, price,
    day) is its own request keyed `feed:<message id>`, so a redelivered message changes nothing. A
    tick for a symbol never traded here is recorded as skipped, not refused (the feed carries the
    whole market). Within a batch the last price of a symbol and day wins."""
    parsed = [(mid, parse_symbol(sym).symbol, parse_price(price), day) for mid, sym, price, day in ticks]
    by_key = {f"feed:{mid}": (sym, price, day) for mid, sym, price, day in parsed}
    requests = [Request(k, {"symbol": s, "price_e4": p, "as_of": d.isoformat()}) for k, (s, p, d) in by_key.items()]

    def apply(tx: Tx, fresh: list[Request]) -> list[FeedTick]:
        known = set(store.instrument_ids(tx.conn, tx.portfolio_id, {by_key[r.key][0] for r in fresh}))
        days: dict[date, tuple[int, dict[str, int]]] = {}
        for n, r in enumerate(fresh):
            sym, price, day = by_key[r.key]
            if sym in known:
                days.setdefault(day, (n, {}))[1][sym] = price
        for day, (first, prices) in sorted(days.items()):
            apply_marks(tx, prices, day, tx.seq(first))
        return [{"symbol": by_key[r.key][0], "as_of": by_key[r.key][2].isoformat(),
                 "recorded": by_key[r.key][0] in known} for r in fresh]  # fmt: skip

    if not requests:
        return []
    return cast(list[FeedTick], write(engine, portfolio, actor, "trade.marks_feed", requests, apply))
