"""Account configuration: a template per account with validated overrides; allocation per group and
per portfolio (ALLUSE_RULES §4, §7)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import NotRequired, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountKind, Allocation, GroupKind, check_allocation_for
from alluse.domain.errors import InvalidInput, NotFound
from alluse.domain.lifecycle import (
    LIFECYCLE_SETTINGS,
    LifecycleConfig,
    lifecycle_config,
    lifecycle_display,
    parse_lifecycle_setting,
)
from alluse.domain.parsing import parse_percent
from alluse.domain.rules import TEMPLATE_ALLOCATION, TEMPLATES, effective_rules, parse_override
from alluse.store import configuration as store
from alluse.store.repo import resolve_account, resolve_group
from alluse.store.scope import resolve_portfolio
from alluse.store.uow import Request, Tx, write
from alluse.views import tax

PORTFOLIO = "portfolio"


class PortfolioConfiguration(TypedDict):
    target: str  # "portfolio"
    template: str  # for new groups
    allocation: str  # Gen/Rev/Com percentages, as typed back
    lifecycle: dict[str, str]  # every lifecycle setting, as typed back
    tax_reserve_pct: str
    overridden: list[str]  # the lifecycle settings the portfolio changed


class GroupConfiguration(TypedDict):
    target: str  # the group's name
    kind: str
    allocation: str


class AccountConfiguration(TypedDict):
    target: str  # the account's name
    template: str
    overridden: list[str]  # the rules the account overrides
    rules: dict[str, str]  # the effective rules, as typed back


Configuration = PortfolioConfiguration | GroupConfiguration | AccountConfiguration


class GroupSettingChanged(TypedDict):
    """A changed group setting, as the audit entry stores it."""

    group_id: int
    allocation: str
    replayed: NotRequired[bool]


class AccountSettingChanged(TypedDict):
    """A changed account setting (a rule or the template), as the audit entry stores it."""

    account: str
    template: str
    rules: dict[str, str]
    replayed: NotRequired[bool]


# A changed portfolio setting names itself: {"target": "portfolio", <setting>: <value as typed back>}
# (and "replayed": true on a replay), so its keys are not fixed.
PortfolioSettingChanged = dict[str, str | bool]
SettingChanged = PortfolioSettingChanged | GroupSettingChanged | AccountSettingChanged


def parse_allocation(text: str) -> Allocation:
    """ "40/30/30" (Gen/Rev/Com percentages) into an Allocation."""
    parts = text.replace(",", "/").split("/")
    if len(parts) != 3:
        raise InvalidInput(f"allocation must be Gen/Rev/Com percentages like 40/30/30, got {text!r}")
    return Allocation(*(parse_percent(p, field="allocation") for p in parts))


def _alloc_text(gen: int, rev: int, com: int) -> str:
    return "/".join(f"{v / 100:g}" for v in (gen, rev, com))


def show(engine: Engine, portfolio: str | int | None, target: str) -> Configuration:
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        if target.lower() == PORTFOLIO:
            p = store.portfolio_row(conn, pid)
            stored = json.loads(p.lifecycle)
            return {
                "target": PORTFOLIO,
                "template": p.template,
                "allocation": _alloc_text(p.alloc_gen_bps, p.alloc_rev_bps, p.alloc_com_bps),
                "lifecycle": lifecycle_display(lifecycle_config(stored)),
                "tax_reserve_pct": f"{Decimal(tax.rates(conn, pid).short_term_bps) / 100:g}",
                "overridden": sorted(k for k, (f, _) in LIFECYCLE_SETTINGS.items() if f in stored),
            }
        try:
            aid = resolve_account(conn, pid, target)
        except NotFound:
            gid = resolve_group(conn, pid, target)
            grp = store.group_row(conn, gid)
            return {
                "target": grp.name,
                "kind": grp.kind,
                "allocation": _alloc_text(grp.alloc_gen_bps, grp.alloc_rev_bps, grp.alloc_com_bps),
            }
        row = store.account_config_of(conn, aid)
        overrides = row.overrides
        rules = effective_rules(row.template, AccountKind(row.kind), overrides)
        return {
            "target": row.name,
            "template": row.template,
            "overridden": sorted(overrides),
            "rules": rules.as_display(),
        }


def set_value(
    engine: Engine, actor: str, portfolio: str | int | None, target: str, key: str, value: str, idem_key: str
) -> SettingChanged:
    """Change one setting of an account (a rule, or its template), a group or the portfolio (allocation,
    template for new groups). Validated before anything is written."""

    def apply(tx: Tx, _reqs: list[Request]) -> list[SettingChanged]:
        conn, pid = tx.conn, tx.portfolio_id
        if target.lower() == PORTFOLIO:
            return [_set_portfolio(conn, pid, key, value)]
        try:
            aid = resolve_account(conn, pid, target)
        except NotFound:
            return [_set_group(conn, resolve_group(conn, pid, target), key, value)]
        return [_set_account(conn, aid, key, value)]

    payload = {"target": target, "key": key, "value": value}
    return cast(SettingChanged, write(engine, portfolio, actor, "config.set", [Request(idem_key, payload)], apply)[0])


def _set_portfolio(conn: sa.Connection, pid: int, key: str, value: str) -> PortfolioSettingChanged:
    if key == "allocation":
        alloc = parse_allocation(value)
        check_allocation_for(GroupKind.PRIMARY, alloc)
    elif key == "template":
        if value not in TEMPLATES:
            raise InvalidInput(f"unknown template {value!r}; choose one of {', '.join(TEMPLATES)}")
        alloc = TEMPLATE_ALLOCATION[value]
        store.save_portfolio_template(conn, pid, value)
    elif key in LIFECYCLE_SETTINGS:
        return _set_lifecycle(conn, pid, key, value)
    elif key == "tax_reserve_pct":
        raise InvalidInput("the tax reserve uses the short-term tax rate: change it with `alluse tax rates`")
    else:
        raise InvalidInput(f"portfolio settings: allocation, template, {', '.join(LIFECYCLE_SETTINGS)}")
    store.save_portfolio_allocation(conn, pid, alloc)
    return {"target": PORTFOLIO, key: value}


def _set_lifecycle(conn: sa.Connection, pid: int, key: str, value: str) -> PortfolioSettingChanged:
    stored = store.stored_lifecycle(conn, pid)
    try:
        name, parsed = parse_lifecycle_setting(key, value)
        stored[name] = parsed
        cfg = lifecycle_config(stored)  # refuses a combination that does not hold together
    except InvalidInput as exc:
        raise InvalidInput(f"{key}: {exc}") from None
    store.save_lifecycle(conn, pid, stored)
    return {"target": PORTFOLIO, key: lifecycle_display(cfg)[key]}


def portfolio_lifecycle(conn: sa.Connection, pid: int) -> LifecycleConfig:
    """The lifecycle configuration the engine runs with for this portfolio: the method's defaults with
    the portfolio's settings applied, and the tax reserve at its short-term tax rate."""
    stored = store.stored_lifecycle(conn, pid)
    return replace(lifecycle_config(stored), short_term_tax_bps=tax.rates(conn, pid).short_term_bps)


def _set_group(conn: sa.Connection, gid: int, key: str, value: str) -> GroupSettingChanged:
    if key != "allocation":
        raise InvalidInput("group settings: allocation")
    kind = GroupKind(store.group_kind(conn, gid))
    alloc = parse_allocation(value)
    check_allocation_for(kind, alloc)
    store.save_group_allocation(conn, gid, alloc)
    return {"group_id": gid, "allocation": value}


def _set_account(conn: sa.Connection, aid: int, key: str, value: str) -> AccountSettingChanged:
    row = store.account_config_of(conn, aid)
    template, overrides = row.template, row.overrides
    if key == "template":
        template = value
    else:
        field, parsed = parse_override(key, value)
        overrides[field] = parsed
    rules = effective_rules(template, AccountKind(row.kind), overrides)  # validates the combination
    store.save_account_config(conn, aid, template, overrides, rules.buffer_bps)
    return {"account": row.name, "template": template, "rules": rules.as_display()}
