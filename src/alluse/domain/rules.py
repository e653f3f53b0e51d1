"""Per-account trading-rule configuration (ALLUSE_RULES §7) and its templates.

An account's effective rules are its template's values for its kind, with validated per-account
overrides on top. The cash-buffer rate is part of the rules but is stored on the account row itself,
because the ledger enforces it on every cash movement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from decimal import Decimal
from typing import Any

from alluse.domain.accounts import AccountKind, Allocation
from alluse.domain.errors import InvalidInput
from alluse.domain.parsing import parse_delta, parse_percent, parse_quantity

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI")


@dataclass(frozen=True, slots=True)
class AccountRules:
    delta_min: Decimal
    delta_max: Decimal
    dte_max: int
    entry_days: tuple[str, ...]
    buffer_bps: int = 500
    min_weekly_return_bps: int = 0
    max_symbol_bps: int = 2500

    def __post_init__(self) -> None:
        if not (Decimal(0) <= self.delta_min <= self.delta_max <= Decimal(1)):
            raise InvalidInput(f"delta band must satisfy 0 ≤ min ≤ max ≤ 1, got {self.delta_min}–{self.delta_max}")
        if self.dte_max < 0:
            raise InvalidInput("dte_max must not be negative")
        if not self.entry_days or any(d not in WEEKDAYS for d in self.entry_days):
            raise InvalidInput(f"entry_days must be a non-empty subset of {','.join(WEEKDAYS)}")
        for name in ("buffer_bps", "min_weekly_return_bps", "max_symbol_bps"):
            if not 0 <= getattr(self, name) <= 10_000:
                raise InvalidInput(f"{name} must be between 0 and 100 %")

    def as_display(self) -> dict[str, str]:
        out = {}
        for k, v in asdict(self).items():
            if k.endswith("_bps"):
                out[k.removesuffix("_bps") + "_pct"] = f"{Decimal(v) / 100:g}"
            elif isinstance(v, tuple):
                out[k] = ",".join(v)
            else:
                out[k] = str(v)
        return out


def _rules(dmin: str, dmax: str, dte: int, days: str, buffer_bps: int, min_ret: int) -> AccountRules:
    return AccountRules(Decimal(dmin), Decimal(dmax), dte, tuple(days.split(",")), buffer_bps, min_ret)


# Moderate is the method's table in §7; conservative and aggressive shift the delta bands by 0.10
# and move the buffer and allocation towards safety or growth.
TEMPLATES: dict[str, dict[AccountKind, AccountRules]] = {
    "conservative": {
        AccountKind.GEN: _rules("0.30", "0.40", 1, "THU", 750, 150),
        AccountKind.REV: _rules("0.20", "0.30", 7, "MON,TUE,WED", 750, 100),
        AccountKind.COM: _rules("0.10", "0.20", 7, "MON", 750, 0),
    },
    "moderate": {
        AccountKind.GEN: _rules("0.40", "0.50", 1, "THU", 500, 150),
        AccountKind.REV: _rules("0.30", "0.40", 7, "MON,TUE,WED", 500, 100),
        AccountKind.COM: _rules("0.20", "0.30", 7, "MON", 500, 0),
    },
    "aggressive": {
        AccountKind.GEN: _rules("0.50", "0.60", 1, "THU", 500, 150),
        AccountKind.REV: _rules("0.40", "0.50", 7, "MON,TUE,WED", 500, 100),
        AccountKind.COM: _rules("0.30", "0.40", 7, "MON", 500, 0),
    },
}

TEMPLATE_ALLOCATION: dict[str, Allocation] = {
    "conservative": Allocation(3000, 3500, 3500),
    "moderate": Allocation(4000, 3000, 3000),
    "aggressive": Allocation(5000, 2500, 2500),
}

DEFAULT_TEMPLATE = "moderate"

# Settable keys as a user names them → (field, parser).
_PCT_KEYS = {
    "buffer_pct": "buffer_bps",
    "min_weekly_return_pct": "min_weekly_return_bps",
    "max_symbol_pct": "max_symbol_bps",
}


def _parse_days(text: str) -> tuple[str, ...]:
    days = tuple(d.strip().upper()[:3] for d in text.split(",") if d.strip())
    bad = [d for d in days if d not in WEEKDAYS]
    if bad or not days:
        raise InvalidInput(f"entry_days must be weekdays like MON,TUE; got {text!r}")
    return days


SETTABLE_KEYS = ("delta_min", "delta_max", "dte_max", "entry_days", *_PCT_KEYS)


def template_rules(template: str, kind: AccountKind) -> AccountRules:
    if template not in TEMPLATES:
        raise InvalidInput(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")
    return TEMPLATES[template][kind]


def parse_override(key: str, text: str) -> tuple[str, Any]:
    """Turn a user's `key=value` into (stored field, JSON-able value); raises on a bad key or value."""
    if key in ("delta_min", "delta_max"):
        return key, str(parse_delta(text, field=key))
    if key == "dte_max":
        return key, parse_quantity(text, field=key, allow_zero=True)
    if key == "entry_days":
        return key, ",".join(_parse_days(text))
    if key in _PCT_KEYS:
        return _PCT_KEYS[key], parse_percent(text, field=key)
    raise InvalidInput(f"unknown setting {key!r}; settable: {', '.join(SETTABLE_KEYS)}")


def effective_rules(template: str, kind: AccountKind, overrides: dict[str, Any]) -> AccountRules:
    """Template values for the kind with the overrides applied; validates the combination."""
    base = template_rules(template, kind)
    known = {f.name for f in fields(AccountRules)}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise InvalidInput(f"stored override {name!r} is not a rule")
        if name in ("delta_min", "delta_max"):
            changes[name] = Decimal(value)
        elif name == "entry_days":
            changes[name] = tuple(value.split(","))
        else:
            changes[name] = int(value)
    return replace(base, **changes)
