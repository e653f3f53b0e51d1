"""IBKR Flex Query XML (Activity statements) read with `ibflex`, turned into broker facts.

Pure: bytes in, `FlexFile` out, no database. Every amount becomes exact integer cents and every price
exact ten-thousandths; a value that would lose anything in that conversion is an error naming the row
and the field, never a silent rounding. Each fact is keyed by IBKR's own ids (`tradeID` for trades,
`transactionID` for cash transactions) so an import can add each one exactly once.

Robustness against real files: only the sections alluse reads (Trades, OptionEAE, CashTransactions,
OpenPositions, CashReport), their row elements and the attributes alluse reads from them are handed
to ibflex (`READ`); everything else is removed first and the removed sections and rows are counted
in `FlexFile.skipped_sections`. So an attribute newer than ibflex, or an enumeration value ibflex does
not know in an attribute alluse does not read, cannot make a statement unreadable. Should ibflex
still warn about an attribute it does not know, the warning is counted in `ignored_attributes`.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ibflex import enums, parser

from alluse.domain.errors import InvalidInput
from alluse.domain.instruments import E4, Instrument, option, parse_price, stock, value_cents
from alluse.domain.money import to_cents

BROKER = "IBKR"
_INSTRUMENT = ("accountId", "currency", "assetCategory", "symbol", "underlyingSymbol", "description")
_OPTION = ("multiplier", "strike", "expiry", "putCall")
# The sections alluse reads, each with its row element and the attributes read from it. Only these
# reach ibflex: attributes IBKR adds later, or values of attributes alluse does not read, cannot
# make a statement unreadable (and parsing a trade row is several times faster).
READ: dict[str, tuple[str, frozenset[str]]] = {
    "Trades": (
        "Trade",
        frozenset(
            (*_INSTRUMENT, *_OPTION, "tradeID", "tradeDate", "tradeTime", "dateTime", "transactionType")
            + ("quantity", "tradePrice", "proceeds", "taxes", "ibCommission", "netCash", "openCloseIndicator")
            + ("notes", "levelOfDetail")
        ),
    ),
    "OptionEAE": (
        "OptionEAE",
        frozenset((*_INSTRUMENT, *_OPTION, "date", "transactionType", "quantity", "tradePrice", "tradeID")),
    ),
    "CashTransactions": (
        "CashTransaction",
        frozenset(("accountId", "currency", "type", "amount", "dateTime", "reportDate", "symbol", "description"))
        | {"transactionID", "levelOfDetail"},
    ),
    "OpenPositions": (
        "OpenPosition",
        frozenset((*_INSTRUMENT, *_OPTION, "position", "side", "markPrice", "costBasisMoney", "levelOfDetail")),
    ),
    "CashReport": ("CashReportCurrency", frozenset(("accountId", "currency", "endingCash", "levelOfDetail"))),
}
MAX_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Fact:
    """One broker fact in alluse's terms. `action`: a trade action (BTO/STO/BTC/STC/EXPIRE/ASSIGN),
    DIVIDEND, FEE, or a cash flow (DEPOSIT, WITHDRAWAL, INTEREST, WITHHOLDING). `cash_cents` is the
    broker's net cash effect on the account (signed), which booking must reproduce to the cent."""

    key: str  # "trade:<tradeID>" or "cash:<transactionID>"
    action: str
    on: date
    symbol: str | None = None
    multiplier: int = 1
    quantity: int = 0
    price: str = "0"
    commission_cents: int = 0
    amount_cents: int = 0
    cash_cents: int = 0
    rows: int = 1  # broker rows this fact stands for (an assignment: the option row and the stock row)
    memo: str = ""
    at: str = ""  # the row's time of day (HHMMSS) when it has one: the booking order within a day

    def payload(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "on": self.on.isoformat(),
            "symbol": self.symbol,
            "multiplier": self.multiplier,
            "quantity": self.quantity,
            "price": self.price,
            "commission_cents": self.commission_cents,
            "amount_cents": self.amount_cents,
            "cash_cents": self.cash_cents,
        }


@dataclass(frozen=True, slots=True)
class HeldPosition:
    """An OpenPositions row: signed quantity, cost basis in cents (IBKR's sign: positive for long,
    negative for a short option's credit), and the end-of-period mark."""

    symbol: str
    quantity: int
    cost_basis_cents: int
    mark_e4: int
    multiplier: int


@dataclass(slots=True)
class AccountStatement:
    account_id: str
    from_date: date
    to_date: date
    facts: list[Fact] = field(default_factory=list)
    unsupported: Counter[str] = field(default_factory=Counter)
    positions: list[HeldPosition] = field(default_factory=list)
    ending_cash_cents: int | None = None
    eae_rows: int = 0

    @property
    def ref(self) -> str:
        return f"{BROKER}:{self.account_id}"


@dataclass(slots=True)
class FlexFile:
    statements: list[AccountStatement]
    skipped_sections: Counter[str] = field(default_factory=Counter)
    ignored_attributes: Counter[str] = field(default_factory=Counter)


# --- exact conversions ----------------------------------------------------------------------------


class RowError(InvalidInput):
    pass


def _where(kind: str, row: Any) -> str:
    rid = getattr(row, "tradeID", None) or getattr(row, "transactionID", None) or getattr(row, "symbol", None)
    return f"{kind} {rid}" if rid else kind


def cents(value: Decimal | None, name: str, where: str) -> int:
    """Exact cents of a Decimal; refuses a value with fractions of a cent."""
    if value is None:
        return 0
    scaled = value * 100
    if scaled != scaled.to_integral_value():
        raise RowError(f"{where}: {name}={value} has fractions of a cent; alluse keeps exact cents")
    return int(scaled)


def whole(value: Decimal | None, name: str, where: str) -> int:
    if value is None:
        raise RowError(f"{where}: {name} is missing")
    if value != value.to_integral_value():
        raise RowError(f"{where}: {name}={value} is not a whole number")
    return int(value)


def price_e4(value: Decimal | None, name: str, where: str) -> int:
    if value is None:
        return 0
    try:
        return parse_price(plain(value), field=name)
    except InvalidInput as exc:
        raise RowError(f"{where}: {name}: {exc}") from None


def plain(value: Decimal) -> str:
    """A Decimal's digits without exponent or trailing zeros ("50", "1.25"), as a price is typed."""
    return format(abs(value).normalize(), "f")


def price_str(value_e4: int) -> str:
    return str(Decimal(value_e4) / E4)


# --- reading ----------------------------------------------------------------------------------------


def read_flex(data: bytes) -> FlexFile:
    """Parse a Flex XML document into per-account statements; raises InvalidInput on anything wrong."""
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"the statement is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InvalidInput(f"not well-formed XML: {exc}") from None
    if root.tag != "FlexQueryResponse":
        raise InvalidInput(f"not an IBKR Flex Query response: the root element is <{root.tag}>")
    skipped: Counter[str] = Counter()
    for stmts in root.iter("FlexStatements"):
        for stmt in stmts:
            for section in list(stmt):
                if section.tag not in READ:
                    if len(section):
                        skipped[section.tag] += len(section)
                    stmt.remove(section)
                    continue
                tag, wanted = READ[section.tag]
                for row in list(section):
                    if row.tag != tag:  # order and symbol summaries, closed lots: the executions suffice
                        skipped[f"{section.tag}/{row.tag}"] += 1
                        section.remove(row)
                        continue
                    for name in [a for a in row.attrib if a not in wanted]:
                        del row.attrib[name]
    ignored: Counter[str] = Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            response = parser.parse_element(root)
        except parser.FlexParserError as exc:
            raise InvalidInput(f"the Flex statement cannot be read: {_locate(root) or exc}") from None
    for w in caught:
        ignored[str(w.message)] += 1
    statements = getattr(response, "FlexStatements", None) or ()
    if not statements:
        raise InvalidInput("the file holds no FlexStatement")
    out = [_statement(s) for s in statements]
    seen = Counter(s.account_id for s in out)
    dup = sorted(a for a, n in seen.items() if n > 1)
    if dup:
        raise InvalidInput(f"account {dup[0]} has more than one FlexStatement in this file")
    return FlexFile(out, skipped, ignored)


def _locate(root: ET.Element) -> str | None:
    """Name the first row ibflex refuses, with the ids a user can find it by (only run on failure)."""
    for elem in root.iter():
        if elem.tag in ("FlexQueryResponse", "FlexStatements", "FlexStatement") or not elem.attrib:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parser.parse_data_element(elem)
        except parser.FlexParserError as exc:
            ids = [f"{k}={elem.get(k)}" for k in ("accountId", "tradeID", "transactionID", "symbol") if elem.get(k)]
            return f"<{elem.tag} {' '.join(ids)}>: {exc}"
    return None


def _statement(s: Any) -> AccountStatement:
    if not s.accountId:
        raise InvalidInput("a FlexStatement has no accountId")
    st = AccountStatement(s.accountId, s.fromDate, s.toDate)
    _trades(st, s.Trades or (), s.OptionEAE or ())
    for c in s.CashTransactions or ():
        _cash(st, c)
    for p in s.OpenPositions or ():
        _position(st, p)
    for c in s.CashReport or ():
        if c.currency == "USD" and c.endingCash is not None:
            st.ending_cash_cents = cents(c.endingCash, "endingCash", f"CashReport of {st.account_id}")
        elif c.currency not in ("USD", "BASE_SUMMARY", None) and (c.endingCash or 0) != 0:
            st.unsupported[f"cash in {c.currency}"] += 1
    twice = [k for k, n in Counter(f.key for f in st.facts).items() if n > 1]
    if twice:
        raise RowError(f"statement of {st.account_id}: {twice[0].replace(':', ' ', 1)} appears twice")
    # Booked in the order they happened: by date and time of day; rows without a time (and ties) keep
    # the statement's order, after the timed rows of their day.
    st.facts.sort(key=lambda f: (f.on, f.at or "240000"))
    return st


def _time(row: Any) -> str:
    when = getattr(row, "dateTime", None)
    if when is not None:
        return when.strftime("%H%M%S")
    t = getattr(row, "tradeTime", None)
    return t.strftime("%H%M%S") if t is not None else ""


def _instrument(row: Any, where: str) -> Instrument:
    try:
        if row.assetCategory is enums.AssetClass.OPTION:
            pc = row.putCall.value if row.putCall is not None else ""
            mult = whole(row.multiplier, "multiplier", where)
            underlying = row.underlyingSymbol or (row.symbol or "").split()[0]
            if row.expiry is None or row.strike is None:
                raise RowError(f"{where}: an option needs expiry and strike")
            return option(underlying, row.expiry, pc, plain(row.strike), mult)
        return stock(row.symbol or "")
    except RowError:
        raise
    except InvalidInput as exc:
        raise RowError(f"{where}: {exc}") from None


def _unsupported_reason(row: Any, kind: str) -> str | None:
    if row.currency not in (None, "USD"):
        return f"{kind} in {row.currency}"
    if row.assetCategory not in (enums.AssetClass.STOCK, enums.AssetClass.OPTION):
        cat = row.assetCategory.value if row.assetCategory else "unknown asset class"
        return f"{kind} in {cat}"
    return None


def _trades(st: AccountStatement, trades: tuple, eae: tuple) -> None:
    """Trade rows become facts. Rows IBKR books for an expiry (code Ep) become EXPIRE, for an
    assignment (code A) the option row becomes ASSIGN and absorbs its stock row (checked against the
    strike); exercises (code Ex) are listed as unsupported, both rows. OptionEAE rows must each have
    their trade row."""
    assigned_stock: list[tuple[Any, str]] = []
    ex_underlyings: set[tuple[date, str]] = set()
    eae_trades: Counter[tuple[str, date, str]] = Counter()
    for t in trades:
        where = _where("trade", t)
        if getattr(t, "levelOfDetail", None) not in (None, "EXECUTION"):
            continue  # order- or symbol-level summaries of the same executions
        reason = _unsupported_reason(t, "trades")
        if reason is None and t.transactionType not in (
            None,
            enums.TradeType.EXCHTRADE,
            enums.TradeType.BOOKTRADE,
        ):
            reason = f"trades of type {t.transactionType.value}"
        if reason:
            st.unsupported[reason] += 1
            continue
        if not t.tradeID:
            raise RowError(f"{where} of {st.account_id}: tradeID is missing")
        codes = {c.value for c in (t.notes or ())}
        ins = _instrument(t, where)
        qty = whole(t.quantity, "quantity", where)
        if qty == 0:
            raise RowError(f"{where}: quantity is zero")
        on = t.tradeDate or (t.dateTime.date() if t.dateTime else None)
        if on is None:
            raise RowError(f"{where}: tradeDate is missing")
        commission = -(cents(t.ibCommission, "ibCommission", where) + cents(t.taxes, "taxes", where))
        if commission < 0:
            st.unsupported["commission rebates"] += 1
            continue
        net = cents(t.netCash, "netCash", where)
        if "Ex" in codes:
            st.unsupported["option exercises"] += 1
            ex_underlyings.add((on, ins.underlying))
            continue
        if ins.is_option and ("Ep" in codes or "A" in codes):
            action = "EXPIRE" if "Ep" in codes else "ASSIGN"
            if action == "ASSIGN" and qty < 0:
                st.unsupported["assignments of long options"] += 1
                continue
            eae_trades[(ins.symbol, on, action)] += 1
            st.facts.append(
                Fact(
                    f"trade:{t.tradeID}",
                    action,
                    on,
                    ins.symbol,
                    ins.multiplier,
                    abs(qty),
                    "0",
                    commission,
                    0,
                    net,
                    memo=t.description or "",
                    at=_time(t),
                )
            )
            continue
        if "A" in codes and not ins.is_option:
            assigned_stock.append((t, where))
            continue
        p = price_e4(t.tradePrice, "tradePrice", where)
        oc = t.openCloseIndicator
        buy = qty > 0
        if oc is enums.OpenClose.OPEN:
            action = "BTO" if buy else "STO"
        elif oc is enums.OpenClose.CLOSE:
            action = "BTC" if buy else "STC"
        elif oc is None and not ins.is_option:
            action = "BTO" if buy else "STC"
        else:
            st.unsupported["trades that both close and open"] += 1
            continue
        gross = value_cents(abs(qty), p, ins.multiplier)
        proceeds = cents(t.proceeds, "proceeds", where)
        if proceeds != (-gross if buy else gross):
            raise RowError(
                f"{where}: proceeds={t.proceeds} is not quantity × tradePrice × multiplier "
                f"({abs(qty)} × {t.tradePrice} × {ins.multiplier})"
            )
        if net != proceeds - commission:
            raise RowError(f"{where}: netCash={t.netCash} is not proceeds + ibCommission + taxes")
        st.facts.append(
            Fact(
                f"trade:{t.tradeID}",
                action,
                on,
                ins.symbol,
                ins.multiplier,
                abs(qty),
                price_str(p),
                commission,
                0,
                net,
                memo=t.description or "",
                at=_time(t),
            )
        )
    _absorb_assigned_stock(st, assigned_stock, ex_underlyings)
    _check_eae(st, eae, eae_trades)


def _absorb_assigned_stock(st: AccountStatement, rows: list[tuple[Any, str]], ex: set[tuple[date, str]]) -> None:
    """Each stock row of an assignment must match ASSIGN facts of the same day and underlying: the
    shares are the contracts × multiplier and the price the strike. Its commission and cash join the
    option's fact, which books both legs."""
    from alluse.domain.instruments import parse_symbol

    for t, where in rows:
        on = t.tradeDate
        shares = whole(t.quantity, "quantity", where)
        if (on, t.symbol) in ex:
            st.unsupported["option exercises"] += 1
            continue
        matches = [
            i
            for i, f in enumerate(st.facts)
            if f.action == "ASSIGN" and f.on == on and parse_symbol(f.symbol or "", f.multiplier).underlying == t.symbol
        ]
        for i in matches:
            f = st.facts[i]
            ins = parse_symbol(f.symbol or "", f.multiplier)
            expect = f.quantity * f.multiplier * (1 if ins.is_put else -1)
            strike = price_e4(t.tradePrice, "tradePrice", where)
            if expect != shares or strike != ins.strike_e4 or f.rows != 1:
                continue
            commission = -(cents(t.ibCommission, "ibCommission", where) + cents(t.taxes, "taxes", where))
            net = cents(t.netCash, "netCash", where)
            notional = ins.strike_notional(f.quantity)
            if net + commission != (-notional if ins.is_put else notional):
                raise RowError(f"{where}: netCash={t.netCash} is not the strike × shares of the assignment")
            st.facts[i] = replace(
                f, commission_cents=f.commission_cents + commission, cash_cents=f.cash_cents + net, rows=2
            )
            break
        else:
            raise RowError(
                f"{where}: {abs(shares)} {t.symbol} shares marked as an assignment (code A) match no "
                "assigned option row of the same day"
            )
    for f in st.facts:
        if f.action == "ASSIGN" and f.rows != 2:
            raise RowError(f"trade {f.key.split(':', 1)[1]}: the assignment of {f.symbol} has no stock row")


_EAE = {
    enums.OptionAction.EXPIRE: "EXPIRE",
    enums.OptionAction.ASSIGN: "ASSIGN",
}


def _check_eae(st: AccountStatement, eae: tuple, trades: Counter[tuple[str, date, str]]) -> None:
    for e in eae:
        st.eae_rows += 1
        if e.transactionType not in _EAE:
            continue  # the Buy/Sell rows of the underlying, and exercises (listed with the trades)
        if _unsupported_reason(e, "option events"):
            continue
        where = _where("OptionEAE", e)
        ins = _instrument(e, where)
        key = (ins.symbol, e.date, _EAE[e.transactionType])
        if trades[key] <= 0:
            raise RowError(
                f"{where}: the {e.transactionType.value} of {ins.symbol} on {e.date} has no trade row; "
                "tick the Trades section (Executions) in the Flex query"
            )
        trades[key] -= 1


def _cash(st: AccountStatement, c: Any) -> None:
    where = _where("cash transaction", c)
    if getattr(c, "levelOfDetail", None) not in (None, "DETAIL"):
        return  # summary rows repeat the detail rows
    if c.currency not in (None, "USD"):
        st.unsupported[f"cash transactions in {c.currency}"] += 1
        return
    if not c.transactionID:
        raise RowError(f"{where} of {st.account_id}: transactionID is missing")
    amount = cents(c.amount, "amount", where)
    on = c.dateTime.date() if c.dateTime else c.reportDate
    if on is None:
        raise RowError(f"{where}: dateTime is missing")
    symbol = None
    if c.symbol and c.type in (enums.CashAction.DIVIDEND, enums.CashAction.PAYMENTINLIEU, enums.CashAction.WHTAX):
        try:
            symbol = stock(c.symbol).symbol
        except InvalidInput:
            symbol = None
    T = enums.CashAction
    action = {
        (T.DEPOSITWITHDRAW, True): "DEPOSIT",
        (T.DEPOSITWITHDRAW, False): "WITHDRAWAL",
        (T.DIVIDEND, True): "DIVIDEND",
        (T.PAYMENTINLIEU, True): "DIVIDEND",
        (T.WHTAX, False): "WITHHOLDING",
        (T.WHTAX, True): "WITHHOLDING",
        (T.BROKERINTRCVD, True): "INTEREST",
        (T.BROKERINTPAID, False): "INTEREST",
        (T.BROKERINTRCVD, False): "INTEREST",
        (T.FEES, False): "FEE",
        (T.COMMADJ, False): "FEE",
    }.get((c.type, amount > 0))
    if action is None or amount == 0:
        label = c.type.value if c.type else "cash transactions of unknown type"
        st.unsupported[f"{label}{' credits' if amount > 0 else ' debits' if amount < 0 else ''}"] += 1
        return
    st.facts.append(
        Fact(
            f"cash:{c.transactionID}",
            action,
            on,
            symbol,
            1,
            0,
            "0",
            0,
            abs(amount) if action in ("DIVIDEND", "FEE") else amount,
            amount,
            memo=(c.description or "")[:200],
            at=_time(c),
        )
    )


def _position(st: AccountStatement, p: Any) -> None:
    where = _where("open position", p)
    if getattr(p, "levelOfDetail", None) not in (None, "SUMMARY"):
        return  # lot rows repeat the summary row
    reason = _unsupported_reason(p, "positions")
    if reason:
        st.unsupported[reason] += 1
        return
    ins = _instrument(p, where)
    qty = whole(p.position, "position", where)
    if p.side is enums.LongShort.SHORT and qty > 0:
        qty = -qty
    # Compared, never booked: IBKR's sub-cent cost basis and 5-decimal marks are rounded half-even here.
    basis = to_cents(p.costBasisMoney or Decimal(0))
    mark = abs(p.markPrice or Decimal(0)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
    st.positions.append(HeldPosition(ins.symbol, qty, basis, price_e4(mark, "markPrice", where), ins.multiplier))
