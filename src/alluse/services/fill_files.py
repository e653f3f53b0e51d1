"""alluse's own fills file, CSV or JSON (docs/brokers.md, "alluse's own fills file").

Every value goes through the one parser for typed numbers (domain/parsing.py); every error names the
line (CSV) or the entry (JSON) and the column. A file without a `key` column gets a stable key per
row derived from the row's content (and its occurrence among identical rows), so importing the same
file again records nothing new.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from alluse.domain.errors import InvalidInput, InvalidNumber
from alluse.domain.instruments import parse_price, parse_symbol
from alluse.domain.parsing import parse_money, parse_quantity
from alluse.services.trades import TRADES, Fill, FillAction
from alluse.store.uow import validate_key

COLUMNS = ("key", "account", "action", "symbol", "quantity", "price", "commission", "date", "amount", "multiplier")
REQUIRED = ("account", "action")
MAX_ROWS = 1_000_000


def _fill(row: dict[str, str], where: str) -> Fill:
    def field(name: str) -> str:
        return (row.get(name) or "").strip()

    def check(name: str, parse: Any) -> Any:
        try:
            return parse(field(name))
        except InvalidNumber as exc:  # the column names the field already
            raise InvalidInput(f"{where}, column {name}: {exc.problem}; expected {exc.form}") from None
        except (InvalidInput, ValueError) as exc:
            raise InvalidInput(f"{where}, column {name}: {exc}") from None

    def action(text: str) -> FillAction:
        try:
            return FillAction(text.upper())
        except ValueError:
            raise InvalidInput(f"{text!r} is not one of {', '.join(a.value for a in FillAction)}") from None

    def day(text: str) -> date | None:
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"{text!r} is not a date (expected YYYY-MM-DD)") from None

    if not field("account"):
        raise InvalidInput(f"{where}, column account: empty")
    kind = check("action", action)
    quantity = check("quantity", lambda t: parse_quantity(t or "0", allow_zero=True))
    commission = check("commission", lambda t: parse_money(t or "0", field="commission", allow_zero=True))
    amount = check("amount", lambda t: parse_money(t) if t else 0)
    multiplier = check("multiplier", lambda t: parse_quantity(t, field="multiplier") if t else 100)
    on = check("date", day)
    check("price", lambda t: parse_price(t or "0"))
    symbol = field("symbol") or None
    if symbol is not None:
        check("symbol", lambda t: parse_symbol(t, multiplier))
    if kind in TRADES or kind in (FillAction.EXPIRE, FillAction.ASSIGN):
        if symbol is None:
            raise InvalidInput(f"{where}, column symbol: {kind.value} needs an instrument symbol")
        if quantity <= 0:
            raise InvalidInput(f"{where}, column quantity: {kind.value} needs a quantity above zero")
    elif amount <= 0:
        raise InvalidInput(f"{where}, column amount: {kind.value} needs an amount above zero")
    try:
        return Fill(field("account"), kind, symbol, quantity, field("price") or "0", commission, on, amount, multiplier)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def derived_key(fill: Fill, seen: Counter[str]) -> str:
    """A stable key from the row's content: the same row in the same place of a re-imported file gets
    the same key; identical rows within one file are told apart by their occurrence."""
    content = json.dumps(fill.payload(), sort_keys=True)
    digest = hashlib.sha256(content.encode()).hexdigest()[:32]
    seen[digest] += 1
    return f"fills:{digest}:{seen[digest]}"


def read_fills(path: Path) -> list[tuple[str, Fill]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix.lower() == ".json":
        rows = _json_rows(path, text)
    else:
        rows = _csv_rows(path, text)
    if not rows:
        raise InvalidInput(f"{path} holds no fills")
    out: list[tuple[str, Fill]] = []
    seen: Counter[str] = Counter()
    keys: set[str] = set()
    for where, row in rows:
        fill = _fill(row, where)
        if "key" in row:
            try:
                key = validate_key(row.get("key") or "")
            except InvalidInput as exc:
                raise InvalidInput(f"{where}, column key: {exc}") from None
        else:
            key = derived_key(fill, seen)
        if key in keys:
            raise InvalidInput(f"{where}, column key: {key!r} appears twice in the file")
        keys.add(key)
        out.append((key, fill))
    return out


def _check_columns(path: Path, columns: list[str], where: str) -> None:
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise InvalidInput(f"{path} {where}: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InvalidInput(f"{path} {where}: missing column {missing[0]!r}")


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [c.strip() for c in reader.fieldnames or []]
    if not header:
        return []
    reader.fieldnames = header
    _check_columns(path, header, "line 1")
    rows = []
    for row in reader:
        n = reader.line_num
        if None in row:
            raise InvalidInput(f"{path} line {n}: more values than columns")
        if not any((v or "").strip() for v in row.values()):
            continue
        rows.append((f"{path} line {n}", row))
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"{path}: more than {MAX_ROWS:,} rows")
    return rows


def _json_rows(path: Path, text: str) -> list[tuple[str, dict[str, str]]]:
    try:
        data = json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, list) or len(data) > MAX_ROWS:
        raise InvalidInput(f"{path}: expected a JSON array of fill objects")
    rows = []
    for i, item in enumerate(data, start=1):
        where = f"{path} fill {i}"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: expected an object")
        _check_columns(path, list(item), f"fill {i}")
        for k, v in item.items():
            if v is not None and not isinstance(v, str):
                raise InvalidInput(f"{where}, column {k}: expected a string or number")
        rows.append((where, {k: ("" if v is None else v) for k, v in item.items()}))
    return rows
