"""The pre-trade protocol check (ALLUSE_RULES §7), pure: an order intent against its account's rules
and state gives violations (errors) and warnings (a human decides). Closing orders are always allowed
except where they would uncover a written call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from alluse.domain.accounts import SLEEVE_LABEL, AccountKind, CashSnapshot
from alluse.domain.instruments import LEAPS_MIN_DAYS, Instrument, value_cents
from alluse.domain.money import apply_bps, format_bps, format_usd
from alluse.domain.rules import WEEKDAYS, AccountRules

OPENING = ("BTO", "STO")


class WeekType(StrEnum):
    """How a week's market went (§7): predicted on Monday, confirmed on Friday."""

    GREEN = "GREEN"
    RED = "RED"
    CHOP = "CHOP"


class OrderStatus(StrEnum):
    """An order intent is REFUSED by the pre-trade check (nothing is sent) or FILLED by the broker."""

    REFUSED = "REFUSED"
    FILLED = "FILLED"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    action: str  # BTO, STO, BTC, STC
    instrument: Instrument
    quantity: int
    price_e4: int
    on: date
    delta: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the pre-trade check knows about one account: its money (`CashSnapshot`), its rules, and
    what it holds per underlying. The check needs the holdings and the rules, the lifecycle planners
    (`lifecycle.AccountState`) the surplus figures instead, so each rule gets its own shape."""

    kind: AccountKind
    label: str
    rules: AccountRules
    cash: CashSnapshot
    shares: dict[str, int] = field(default_factory=dict)  # underlying → shares held
    covering: dict[str, int] = field(default_factory=dict)  # underlying → shares covering written calls
    exposure: dict[str, int] = field(default_factory=dict)  # underlying → cents at risk


@dataclass(frozen=True, slots=True)
class CheckResult:
    violations: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations


def _allowed(kind: AccountKind, o: OrderIntent) -> str | None:
    """Why the method does not open this in this sleeve, or None."""
    ins, name = o.instrument, SLEEVE_LABEL.get(kind, kind.value)
    if kind in (AccountKind.GEN, AccountKind.REV):
        if o.action == "STO" and ins.is_option:
            return None
        return f"{name} opens only cash-secured puts and covered calls"
    if kind is AccountKind.COM:
        if o.action == "BTO" and not ins.is_option:
            return None
        if o.action == "BTO" and ins.is_call and ins.days_to_expiry(o.on) >= LEAPS_MIN_DAYS:
            return None
        if o.action == "STO" and ins.is_call:
            return None
        return f"{name} opens only shares, LEAPS calls (≥ {LEAPS_MIN_DAYS} days) and covered calls on held shares"
    return "external counter-accounts do not trade"


def check(o: OrderIntent, view: AccountView) -> CheckResult:
    v: list[str] = []
    w: list[str] = []
    ins, rules, snap = o.instrument, view.rules, view.cash
    if o.action not in OPENING:
        if o.action == "STC" and not ins.is_option:
            left = view.shares.get(ins.symbol, 0) - o.quantity
            if left < view.covering.get(ins.symbol, 0):
                v.append(f"selling {o.quantity} {ins.symbol} would uncover written calls: close the calls first")
        return CheckResult(v, w)

    why = _allowed(view.kind, o)
    if why:
        v.append(why)
    day = WEEKDAYS[o.on.weekday()] if o.on.weekday() < 5 else o.on.strftime("%a").upper()
    if day not in rules.entry_days:
        v.append(f"entry day {day} is not one of {view.label}'s entry days {','.join(rules.entry_days)}")

    premium = value_cents(o.quantity, o.price_e4, ins.multiplier)
    added_exposure = 0
    if o.action == "STO" and ins.is_option:
        if o.delta is None:
            v.append("a written option needs its delta to be checked against the delta band")
        elif not rules.delta_min <= abs(o.delta) <= rules.delta_max:
            v.append(f"delta {abs(o.delta)} is outside {view.label}'s band {rules.delta_min}–{rules.delta_max}")
        dte = ins.days_to_expiry(o.on)
        if not 0 <= dte <= rules.dte_max:
            v.append(f"{dte} days to expiry is outside {view.label}'s 0–{rules.dte_max}")
        notional = ins.strike_notional(o.quantity)
        if ins.is_put:
            added_exposure = notional
            if notional > snap.deployable_cash:
                v.append(
                    f"put is not cash-secured: collateral {format_usd(notional)} exceeds deployable cash "
                    f"{format_usd(snap.deployable_cash)}"
                )
        else:
            free = view.shares.get(ins.underlying, 0) - view.covering.get(ins.underlying, 0)
            if o.quantity * ins.multiplier > free:
                v.append(
                    f"call is not covered: {o.quantity * ins.multiplier} {ins.underlying} shares needed, "
                    f"{max(0, free)} held and not yet covering"
                )
        minimum = apply_bps(notional, rules.min_weekly_return_bps)
        if rules.min_weekly_return_bps and premium < minimum:
            w.append(
                f"premium {format_usd(premium)} is below the minimum weekly return "
                f"{format_bps(rules.min_weekly_return_bps)} of {format_usd(notional)} ({format_usd(minimum)}): "
                "a human decision is needed"
            )
    elif o.action == "BTO":
        added_exposure = premium
        if premium > snap.deployable_cash:
            v.append(
                f"cost {format_usd(premium)} exceeds deployable cash {format_usd(snap.deployable_cash)} "
                f"(cash buffer {format_usd(snap.cash_buffer)})"
            )
    if added_exposure:
        after = view.exposure.get(ins.underlying, 0) + added_exposure
        limit = apply_bps(snap.nav, rules.max_symbol_bps)
        if after > limit:
            v.append(
                f"{ins.underlying} exposure would be {format_usd(after)}, over {format_bps(rules.max_symbol_bps)} "
                f"of NAV ({format_usd(limit)})"
            )
    return CheckResult(v, w)
