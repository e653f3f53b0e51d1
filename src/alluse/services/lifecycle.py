"""The lifecycle engine (ALLUSE_RULES §5): find the accounts a rule acts on, plan, apply exactly once.

A sweep finds candidates with set-based SQL over the cached account figures (necessary conditions
only: a post-tax surplus can never exceed NAV − base capital), then applies each action in its own
unit of work keyed by (rule, account or group, period or as-of date). Inside that unit of work the
action is planned again from the locked, committed state, so a resumed, repeated or concurrent run
never acts twice and never acts on stale figures.

Work is done family by family (a PRIMARY group and every group forked from it, at any depth): forks
and merges only move money inside a family, so families are independent. Within a family the order
is fixed: quarterly reinvestment, Rev-Acc forks, Gen-Acc forks, then merges deepest first until none
is left. One worker at a time sweeps a portfolio as of a day (`_sweeping`); SQLite has one writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, NotRequired, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.brokers.refs import PAPER, BrokerageRef
from alluse.domain.accounts import SLEEVES, AccountKind, AccountStatus, CashSnapshot, GroupKind
from alluse.domain.ledger import Leg, TransferKind
from alluse.domain.lifecycle import (
    AccountState,
    EarmarkPurpose,
    ForkPlan,
    LifecycleConfig,
    MergePlan,
    Outcome,
    ReinvestPlan,
    Rule,
    SurplusFigures,
    is_quarter_end,
    plan_gen_fork,
    plan_merge,
    plan_reinvestment,
    plan_rev_fork,
    quarter_of,
)
from alluse.domain.money import Cents, format_usd
from alluse.services.alerts import BUFFER_BREACH, alert_event, raise_alert
from alluse.services.brokers import brokers_of, pool_free, release_to_pool, take_from_pool
from alluse.services.configuration import portfolio_lifecycle
from alluse.services.earmarks import earmark_row as _earmark_row
from alluse.services.groups import GroupOpening, open_fork_groups
from alluse.store import earmarks as earmark_store
from alluse.store import merges as merge_store
from alluse.store.asof import account_as_of, accounts_with_facts_after
from alluse.store.earmarks import EarmarkRow
from alluse.store.idlist import in_ids
from alluse.store.prepared import Prepared, insert
from alluse.store.repo import JournalEntry, account_label, allocate_ids, insert_journal
from alluse.store.schema import (
    account_groups,
    accounts,
    earmarks,
    lifecycle_actions,
    lot_closes,
)
from alluse.store.scope import resolve_portfolio, scope_to
from alluse.store.uow import Request, Tx, write, write_planned
from alluse.views import tax
from alluse.views.lifecycle import Genealogy, genealogy

ACTOR_ACTION = "lifecycle"
_a, _g, _la = accounts.c, account_groups.c, lifecycle_actions.c


# --- figures -------------------------------------------------------------------------------------
# Post-tax surplus and the quarter's realized gain come from the tax ledger (services/tax.py). The
# sweep first narrows the portfolio with set-based SQL on necessary conditions (a post-tax surplus
# never exceeds NAV − base capital; a quarter with gains has realized closings), then computes the
# exact figures for the few candidates only.

_STATE_COLS = (
    _a.id,
    _a.group_id,
    _a.kind,
    _a.name,
    _a.status,
    _a.cash_cents,
    _a.positions_value_cents,
    _a.collateral_cents,
    _a.earmarked_cents,
    _a.base_capital_cents,
    _a.buffer_bps,
)


@dataclass(frozen=True, slots=True)
class Sleeve:
    """A sweep's candidate: what the planners read (`state`) and what only the sweep reads to choose
    (the status, the stored name, the quarter's realized gain for reinvestment)."""

    state: AccountState
    status: AccountStatus
    name: str
    quarter_gain: int = 0


def _sleeve(row: Any, quarter_gain: int, surplus: tax.PostTaxSurplus | None) -> Sleeve:
    aid, gid, kind, name, status, cash, pos, coll, ear, base, buffer_bps = row
    kind = AccountKind(kind)
    snap = CashSnapshot(account_label(kind, name), kind, cash, pos, coll, ear, buffer_bps)
    figures = None
    if surplus is not None:
        p = surplus
        figures = SurplusFigures(p.nav, p.base_capital, p.unpaid_tax_on_realized, p.tax_on_unrealized)
    return Sleeve(AccountState(aid, snap, figures, gid), AccountStatus(status), name, quarter_gain)


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _quarter_gains(conn: sa.Connection, pid: int, as_of: date, ids: list[int] | None = None) -> dict[int, int]:
    """Net realized gain (pre-tax, short and long term) of each active Rev-Acc and Com-Acc whose
    quarter so far is positive: the same figure as tax.realized_gain(...).total, for many accounts at once."""
    c = lot_closes.c
    # The quarter's closings are summed first, then their accounts looked up by key: joined the other
    # way round, a database without planner statistics yet (PostgreSQL before its first ANALYZE) read
    # every closing once per account, 1 s instead of 1 ms at 10,000 accounts (docs/benchmarks.md).
    total = sa.func.sum(c.gain_cents).label("total")
    sums = (
        sa.select(c.account_id, c.portfolio_id, total)
        .where(c.portfolio_id == pid, c.realized.is_(True), c.closed_on >= quarter_start(as_of), c.closed_on <= as_of)
        .group_by(c.account_id, c.portfolio_id)
        .having(total > 0)
    )
    if ids is not None:
        sums = sums.where(in_ids(c.account_id))
    g = sums.subquery()
    q = (
        sa.select(g.c.account_id, g.c.total)
        .join(accounts, sa.and_(_a.portfolio_id == g.c.portfolio_id, _a.id == g.c.account_id))
        # The portfolio named on the outer query too: Citus routes a join to one shard only then.
        .where(_a.portfolio_id == pid, _a.kind.in_(("REV", "COM")), _a.status == "ACTIVE")
    )
    return {int(aid): int(t) for aid, t in conn.execute(q, {"ids": ids})}


def _load_rows(conn: sa.Connection, pid: int, ids: list[int]) -> dict[int, Any]:
    return {row[0]: row for row in _STATE_ROWS.rows(conn, pid=pid, ids=ids)}


_STATE_ROWS = Prepared(sa.select(*_STATE_COLS).where(_a.portfolio_id == sa.bindparam("pid"), in_ids(_a.id)))


def _as_of_rows(conn: sa.Connection, pid: int, rows: dict[int, Any], as_of: date, later: set[int]) -> dict[int, Any]:
    """The cached figures are the latest state; an account with facts dated after `as_of` gets its
    figures as of that day instead (store/asof.py), so a later fill never counts in an earlier run."""
    out = dict(rows)
    for aid in sorted(later & rows.keys()):
        st = account_as_of(conn, pid, aid, as_of)
        aid_, gid, kind, name, status, *_cached, buffer_bps = rows[aid]
        figures = (st.cash, st.positions_value, st.collateral, st.earmarked, st.base_capital)
        out[aid] = (aid_, gid, kind, name, status, *figures, buffer_bps)
    return out


# --- candidates ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Candidates:
    sleeves: dict[int, Sleeve] = field(default_factory=dict)
    reinvest: list[int] = field(default_factory=list)
    rev_forks: list[int] = field(default_factory=list)
    gen_forks: list[int] = field(default_factory=list)
    merges: list[int] = field(default_factory=list)  # FORK group ids
    breaches: list[int] = field(default_factory=list)


_NAV = _a.cash_cents + _a.positions_value_cents
# Prepared: a sweep runs these every time, most often to find nothing (a projection runs it weekly).
_CANDIDATES = Prepared(
    sa.select(*_STATE_COLS).where(
        _a.portfolio_id == sa.bindparam("pid"),
        _a.status == "ACTIVE",
        _a.kind != "EXT",
        sa.or_(
            sa.and_(_a.kind == "GEN", _NAV - _a.base_capital_cents >= sa.bindparam("gen", type_=sa.BigInteger)),
            sa.and_(_a.kind == "REV", _NAV - _a.base_capital_cents >= sa.bindparam("rev", type_=sa.BigInteger)),
            # Below the buffer, allowing for the buffer's rounding to the cent; checked exactly below.
            _a.cash_cents * 10_000 < _a.buffer_bps * _NAV + 5_000,
        ),
    )
)
_ACTIVE_FORK = (_g.kind == "FORK", _g.status == "ACTIVE")
_ACTIVE_FORKS = Prepared(sa.select(_g.id).where(_g.portfolio_id == sa.bindparam("pid"), *_ACTIVE_FORK).limit(1))
_FORK_GROUPS_AT = Prepared(
    sa.select(_g.id)
    .join(accounts, sa.and_(_a.portfolio_id == _g.portfolio_id, _a.group_id == _g.id))
    .where(_g.portfolio_id == sa.bindparam("pid"), *_ACTIVE_FORK)
    .group_by(_g.id)
    .having(sa.func.sum(_NAV) >= sa.bindparam("threshold", type_=sa.BigInteger))
)


def find_candidates(
    conn: sa.Connection, pid: int, as_of: date, cfg: LifecycleConfig, *, exact: bool = True
) -> Candidates:
    """Every sleeve a rule might act on, every FORK group at or above the merge threshold, every sleeve
    below its cash buffer: a few set-based queries, then exact figures for what they found. A run
    passes exact=False: its appliers compute the exact figures anyway, under the lock."""
    found = _CANDIDATES.rows(conn, pid=pid, gen=cfg.gen_fork_threshold, rev=cfg.rev_fork_threshold)
    rows = {row[0]: tuple(row) for row in found}
    gains = _quarter_gains(conn, pid, as_of) if is_quarter_end(as_of) else {}
    later = accounts_with_facts_after(conn, pid, as_of)
    rows.update(_load_rows(conn, pid, sorted((gains.keys() | later) - rows.keys())))
    rows = {aid: row for aid, row in _as_of_rows(conn, pid, rows, as_of, later).items() if row[4] == "ACTIVE"}
    out = Candidates()

    def fork_rule(row: Any) -> bool:
        kind = AccountKind(row[2])
        return (kind is AccountKind.GEN or kind is AccountKind.REV) and row[5] + row[6] - row[9] >= (
            cfg.gen_fork_threshold if kind is AccountKind.GEN else cfg.rev_fork_threshold
        )

    exact_ids = [aid for aid, row in rows.items() if exact and fork_rule(row)]
    surpluses = tax.post_tax_surplus_many(conn, pid, exact_ids, as_of) if exact_ids else {}
    for aid, row in sorted(rows.items()):
        kind = AccountKind(row[2])
        s = _sleeve(row, gains.get(aid, 0), surpluses.get(aid))
        out.sleeves[aid] = s
        if s.state.cash.buffer_breached:
            out.breaches.append(aid)
        if aid in gains:
            out.reinvest.append(aid)
        threshold = cfg.gen_fork_threshold if kind is AccountKind.GEN else cfg.rev_fork_threshold
        if fork_rule(row) and (not exact or (s.state.figures is not None and s.state.figures.surplus >= threshold)):
            (out.gen_forks if kind is AccountKind.GEN else out.rev_forks).append(aid)
    out.merges = _merge_candidates(conn, pid, as_of, cfg, later)
    return out


def _merge_candidates(conn: sa.Connection, pid: int, as_of: date, cfg: LifecycleConfig, later: set[int]) -> list[int]:
    """FORK groups whose combined NAV as of `as_of` reaches the merge threshold (§5.3). The cached
    figures serve unless a member has facts dated after the day; then that member's NAV is taken as of it."""
    # Most sweeps find no FORK group at all (none forked yet, or all merged): one index lookup says so,
    # where the sums below walk every account of the portfolio (SQLite, without planner statistics,
    # drives the join from the accounts: 100,002 of them at the bench's size).
    if not _ACTIVE_FORKS.rows(conn, pid=pid):
        return []
    if not later:
        return [int(g) for (g,) in _FORK_GROUPS_AT.rows(conn, pid=pid, threshold=cfg.merge_threshold)]
    forks = sa.and_(_g.portfolio_id == pid, *_ACTIVE_FORK)
    navs: dict[int, int] = {}
    rows = conn.execute(
        sa.select(_a.id, _a.group_id, _a.cash_cents + _a.positions_value_cents)
        .join(account_groups, sa.and_(_g.portfolio_id == _a.portfolio_id, _a.group_id == _g.id))
        .where(forks)
    )
    for aid, gid, nav in rows:
        navs[gid] = navs.get(gid, 0) + (account_as_of(conn, pid, aid, as_of).nav if aid in later else int(nav))
    return sorted(g for g, nav in navs.items() if nav >= cfg.merge_threshold)


# --- appliers -----------------------------------------------------------------------------------
# Each applier takes a batch of candidates, plans each one again under the portfolio lock, and
# applies those that still act in the same transaction: one request (idempotency key, audit entry)
# per action, all legs of an action together, and the batch commits whole or not at all.


def fork_key(rule: Rule, account_id: int, as_of: date) -> str:
    return f"lifecycle:{rule.value.lower()}:{account_id}:{as_of.isoformat()}"


def merge_key(group_id: int, as_of: date) -> str:
    return f"lifecycle:merge:{group_id}:{as_of.isoformat()}"


def reinvest_key(account_id: int, period: str) -> str:
    return f"lifecycle:reinvest:{account_id}:{period}"


def _load_sleeves(
    conn: sa.Connection, pid: int, ids: list[int], as_of: date, *, surplus: bool = False, gains: bool = False
) -> dict[int, Sleeve]:
    rows = _as_of_rows(conn, pid, _load_rows(conn, pid, ids), as_of, accounts_with_facts_after(conn, pid, as_of))
    quarter = _quarter_gains(conn, pid, as_of, ids) if gains else {}
    surpluses = tax.post_tax_surplus_many(conn, pid, list(rows), as_of) if surplus else {}
    return {aid: _sleeve(row, quarter.get(aid, 0), surpluses.get(aid)) for aid, row in rows.items()}


class ActionApplied(TypedDict):
    """A lifecycle action as its audit entry stores it: a fork (account, group, group_id,
    parent_group_id), a merge (group, into, target_group_id, transfer_id) or a reinvestment
    (account, period, earmarks: cents by purpose)."""

    rule: str
    action_id: int
    amount_cents: Cents
    reason: str
    account: NotRequired[str]
    group: NotRequired[str]
    group_id: NotRequired[int]
    parent_group_id: NotRequired[int | None]
    into: NotRequired[str]
    target_group_id: NotRequired[int]
    transfer_id: NotRequired[int | None]
    period: NotRequired[str]
    earmarks: NotRequired[dict[str, int]]


class PlanRecord(TypedDict):
    """A planner's decision as the audit record and `plan` show it: a fork (account_id, amount, legs:
    cents by sleeve kind, surplus, deployable), a merge (group_id, target_account_id, combined NAV,
    moves: cents by account id) or a reinvestment (account_id, period, realized gain, tax reserve,
    reinvestable, earmarks: cents by purpose, buffer figures)."""

    rule: str
    outcome: str
    reason: str
    account_id: NotRequired[int]
    amount_cents: NotRequired[Cents]
    legs: NotRequired[dict[str, int]]
    surplus_cents: NotRequired[Cents]
    deployable_cents: NotRequired[Cents]
    group_id: NotRequired[int]
    target_account_id: NotRequired[int]
    combined_nav_cents: NotRequired[Cents]
    moves: NotRequired[dict[str, int]]
    period: NotRequired[str]
    realized_gain_cents: NotRequired[Cents]
    tax_reserve_cents: NotRequired[Cents]
    reinvestable_cents: NotRequired[Cents]
    buffer_restore_cents: NotRequired[Cents]
    earmarks: NotRequired[dict[str, int]]
    not_earmarked_cents: NotRequired[Cents]
    still_below_buffer: NotRequired[bool]
    buffer_shortfall_cents: NotRequired[Cents]


class PlannedAction(PlanRecord):
    """One row of `plan`: the decision, what it acts on, and its amount (every row has one)."""

    subject: str


class Waiting(TypedDict):
    """A fork or merge that waits (or a buffer breach): the alert a run raises for it."""

    kind: str  # the alert's event kind
    subject: str
    account_id: int
    account: str
    reason: str


def _results(written: list[dict[str, Any]]) -> list[ActionApplied]:
    """The actions this run applied (a replayed one was applied by an earlier run)."""
    return [cast(ActionApplied, r) for r in written if not r.get("replayed")]


def _fork_pools(conn: sa.Connection, pid: int, account_ids: Collection[int]) -> dict[int, tuple[str, int | None]]:
    """For each forking account: which broker the new sleeves use (the parent's) and how many pool
    accounts the broker's pool holds for forks (None: the paper broker makes what the pool lacks)."""
    brokers = brokers_of(conn, pid, account_ids)
    free = {b: pool_free(conn, pid, b) for b in set(brokers.values()) if b != PAPER}
    return {aid: (b, free.get(b)) for aid in account_ids for b in [brokers.get(aid, PAPER)]}


def _child_names(conn: sa.Connection, pid: int, forks: list[tuple[int, str]]) -> list[str]:
    """The name of each fork's new group, by its parent group and letter. A1 forks A1F1, A1F2 ...; its
    Rev-Acc forks A1R1 ...: names say where a group came from, and each family numbers its own
    children, so the order families are processed in never changes a name."""
    parents = dict(_GROUP_NAMES.rows(conn, pid=pid, ids=sorted({gid for gid, _ in forks})))
    out = []
    for gid, letter in forks:
        prefix = f"{parents[gid]}{letter}"
        # A range on the (portfolio, name) index: every name starting with the prefix, nothing else scanned.
        taken = {n for (n,) in _NAMES_FROM.rows(conn, pid=pid, lo=prefix, hi=prefix + "\uffff")}
        n = 1
        while f"{prefix}{n}" in taken:
            n += 1
        out.append(f"{prefix}{n}")
    return out


_GROUP_NAMES = Prepared(sa.select(_g.id, _g.name).where(_g.portfolio_id == sa.bindparam("pid"), in_ids(_g.id)))
_NAMES_FROM = Prepared(
    sa.select(_g.name).where(
        _g.portfolio_id == sa.bindparam("pid"), _g.name >= sa.bindparam("lo"), _g.name < sa.bindparam("hi")
    )
)


def apply_forks(
    engine: Engine,
    actor: str,
    pid: int,
    items: list[tuple[Rule, int]],
    as_of: date,
    cfg: LifecycleConfig,
    waiting: list[ForkPlan] | None = None,
) -> list[ActionApplied]:
    """Rev-Acc and Gen-Acc forks, in the order given; pool accounts taken by one are gone for the next.
    Forks that wait are appended to `waiting`."""
    chosen: list[tuple[Rule, Sleeve, ForkPlan, str]] = []
    waits: list[ForkPlan] = []

    def decide(conn: sa.Connection, _pid: int) -> tuple[list[Request], Any]:
        chosen[:], waits[:] = _choose_forks(conn, pid, items, as_of, cfg)
        requests = [Request(fork_key(rule, s.state.account_id, as_of), {"rule": rule.value,
                    "account_id": s.state.account_id, "as_of": as_of.isoformat()}) for rule, s, _p, _b in chosen]  # fmt: skip
        return requests, apply

    def apply(tx: Tx, fresh: list[Request]) -> list[ActionApplied]:
        conn = tx.conn
        tx.announce = False  # the lifecycle's own event kinds below
        todo = {fork_key(rule, s.state.account_id, as_of): (rule, s, plan, broker) for rule, s, plan, broker in chosen}
        openings = _fork_openings(tx, pid, [todo[r.key] for r in fresh], cfg)
        opened = open_fork_groups(tx, openings, [tx.seq(i) for i in range(len(fresh))])
        first = allocate_ids(conn, lifecycle_actions, len(fresh))
        actions: list[dict[str, Any]] = []
        out: list[ActionApplied] = []
        for i, (r, o) in enumerate(zip(fresh, opened, strict=True)):
            rule, s, plan, _ = todo[r.key]
            aid, action_id = s.state.account_id, first + i
            detail = {"plan": _plan_dict(plan), "group": o}
            actions.append(_action_row(tx, i, action_id, rule, r.key, as_of, None, aid, o["group_id"], plan.amount,
                                       detail))  # fmt: skip
            tx.emit(i, f"lifecycle.{rule.value.lower()}", detail, aid, action_id)
            alert_event(tx, i, "fork_ready", aid, f"{s.state.label}: {rule.value} applied, new group {o['name']} "
                        f"funded with {format_usd(plan.amount)}: fund its brokerage accounts")  # fmt: skip
            out.append({"rule": rule.value, "action_id": action_id, "account": s.state.label,
                        "amount_cents": Cents(plan.amount), "group": o["name"], "group_id": o["group_id"],
                        "parent_group_id": s.state.group_id, "reason": plan.reason})  # fmt: skip
        _ACTION_INSERT.many(conn, actions)
        return out

    applied = _results(write_planned(engine, pid, actor, ACTOR_ACTION, decide))
    if waiting is not None:
        waiting.extend(waits)
    return applied


def _choose_forks(
    conn: sa.Connection, pid: int, items: list[tuple[Rule, int]], as_of: date, cfg: LifecycleConfig
) -> tuple[list[tuple[Rule, Sleeve, ForkPlan, str]], list[ForkPlan]]:
    """The forks that apply now (with their sleeve, plan and broker) and those that wait, in the order
    given; pool accounts one fork takes are gone for the next."""
    chosen: list[tuple[Rule, Sleeve, ForkPlan, str]] = []
    waits: list[ForkPlan] = []
    sleeves = _load_sleeves(conn, pid, sorted({aid for _, aid in items}), as_of, surplus=True)
    pool_left: dict[str, int] = {}
    pools = _fork_pools(conn, pid, sleeves)
    for rule, aid in items:
        s = sleeves.get(aid)
        if s is None or s.status is not AccountStatus.ACTIVE:
            continue
        broker, free = pools[aid]
        if free is not None:
            free = pool_left.setdefault(broker, free)
        plan = (plan_gen_fork if rule is Rule.GEN_FORK else plan_rev_fork)(s.state, cfg, free)
        if plan is not None and plan.outcome is Outcome.WAIT:
            waits.append(plan)
        if plan is None or plan.outcome is not Outcome.APPLY:
            continue
        if free is not None:
            pool_left[broker] -= plan.brokerage_needed
        chosen.append((rule, s, plan, broker))
    return chosen, waits


def _fork_openings(
    tx: Tx, pid: int, forks: list[tuple[Rule, Sleeve, ForkPlan, str]], cfg: LifecycleConfig
) -> list[GroupOpening]:
    """The group each fork opens: named after its family, funded from its sleeve, over accounts taken
    from the brokerage pool (one pool account is never given to two forks)."""
    openings: list[GroupOpening] = []
    pools = take_from_pool(tx.conn, pid, [(broker, plan.brokerage_needed) for _r, _s, plan, broker in forks])
    names = _child_names(
        tx.conn, pid, [(s.state.group_id, "F" if r is Rule.GEN_FORK else "R") for r, s, _p, _b in forks]
    )
    for (rule, s, plan, _broker), pool, name in zip(forks, pools, names, strict=True):
        parent_gid = s.state.group_id
        refs: list[BrokerageRef | None] = [None, None, None]
        for kind, ref in zip(plan.legs, pool, strict=False):
            refs[SLEEVES.index(kind)] = ref
        openings.append(
            GroupOpening(
                plan.amount,
                (refs[0], refs[1], refs[2]),
                cfg.gen_fork_split if rule is Rule.GEN_FORK else cfg.rev_fork_allocation,
                name,
                GroupKind.FORK if rule is Rule.GEN_FORK else GroupKind.PRIMARY,
                parent_gid,
                s.state.account_id,
            )
        )
    return openings


def _merge_target(conn: sa.Connection, pid: int, gid: int) -> tuple[int, str] | None:
    """The Com-Acc of the nearest active ancestor (the spawning group, or further up if it merged)."""
    parent = conn.execute(sa.select(_g.parent_group_id).where(_g.portfolio_id == pid, _g.id == gid)).scalar()
    while parent is not None:
        row = conn.execute(
            sa.select(_a.id, _a.name, _g.parent_group_id, _g.status)
            .join(account_groups, sa.and_(_g.portfolio_id == _a.portfolio_id, _g.id == _a.group_id))
            .where(_a.portfolio_id == pid, _a.group_id == parent, _a.kind == "COM")
        ).first()
        if row is not None and row.status == "ACTIVE":
            return row.id, account_label(AccountKind.COM, row.name)
        parent = conn.execute(sa.select(_g.parent_group_id).where(_g.portfolio_id == pid, _g.id == parent)).scalar()
    return None


def _earmark_balances(conn: sa.Connection, pid: int, account_ids: list[int]) -> dict[int, dict[EarmarkPurpose, int]]:
    e = earmarks.c
    out: dict[int, dict[EarmarkPurpose, int]] = {}
    q = (
        sa.select(e.account_id, e.purpose, sa.func.sum(e.amount_cents))
        .where(e.portfolio_id == pid, in_ids(e.account_id))
        .group_by(e.account_id, e.purpose)
    )
    for aid, purpose, total in conn.execute(q, {"ids": account_ids}):
        if total:
            out.setdefault(aid, {})[EarmarkPurpose(purpose)] = int(total)
    return out


def plan_group_merge(conn: sa.Connection, pid: int, gid: int, cfg: LifecycleConfig) -> MergePlan | None:
    g = conn.execute(sa.select(_g.name, _g.kind, _g.status).where(_g.id == gid, _g.portfolio_id == pid)).one()
    if g.kind != GroupKind.FORK.value or g.status != "ACTIVE":
        return None
    rows = conn.execute(
        sa.select(_a.id, _a.kind, _a.name, _a.cash_cents, _a.positions_value_cents, _a.collateral_cents).where(
            _a.portfolio_id == pid, _a.group_id == gid, _a.status == "ACTIVE"
        )
    ).all()
    members = [
        AccountState(r.id, CashSnapshot(account_label(r.kind, r.name), AccountKind(r.kind), r.cash_cents,
                                        r.positions_value_cents, r.collateral_cents), None, gid)
        for r in rows
    ]  # fmt: skip
    plan = plan_merge(gid, g.name, members, _merge_target(conn, pid, gid), cfg)
    return plan


def apply_merges(
    engine: Engine, actor: str, pid: int, gids: list[int], as_of: date, cfg: LifecycleConfig
) -> list[ActionApplied]:
    """Merge FORK groups, in the order given (deepest first, so a child lands in its parent before the
    parent itself moves on). Each merge is planned again when applied: earlier merges of the batch
    only ever add to the groups later ones read."""

    def decide(conn: sa.Connection, _pid: int) -> tuple[list[Request], Any]:
        requests = []
        for gid in gids:
            plan = plan_group_merge(conn, pid, gid, cfg)
            if plan is not None and plan.outcome is Outcome.APPLY:
                requests.append(Request(merge_key(gid, as_of), {"rule": Rule.MERGE.value, "group_id": gid}))
        return requests, apply

    def apply(tx: Tx, fresh: list[Request]) -> list[ActionApplied]:
        tx.announce = False  # lifecycle.merge below
        return [_merge_one(tx, i, pid, int(r.payload["group_id"]), r.key, as_of, cfg) for i, r in enumerate(fresh)]

    return _results(write_planned(engine, pid, actor, ACTOR_ACTION, decide))


def _merge_one(tx: Tx, i: int, pid: int, gid: int, key: str, as_of: date, cfg: LifecycleConfig) -> ActionApplied:
    """Apply one planned merge: cash legs, holdings in kind, statuses, the pool, earmarks, the action."""
    conn = tx.conn
    plan = plan_group_merge(conn, pid, gid, cfg)
    if plan is None or plan.outcome is not Outcome.APPLY:
        raise AssertionError(f"merge of group {gid} was planned under the lock but no longer applies")
    target = plan.target_account_id
    members = merge_store.active_members(conn, pid, gid)
    total = sum(plan.moves.values())
    legs = [Leg(aid, -cash) for aid, cash in plan.moves.items()]
    if total:
        legs.append(Leg(target, total))
    transfer_id = None
    if len(legs) >= 2:
        (transfer_id,) = insert_journal(
            conn, pid, tx.now, [JournalEntry(TransferKind.MERGE, legs, tx.seq(i), memo=f"merge {plan.group_name}")]
        )
    in_kind = merge_store.move_holdings(conn, pid, members, target)
    merge_store.close_merged(conn, pid, gid, members, target, total)
    released = release_to_pool(conn, pid, members)
    (action_id,) = [allocate_ids(conn, lifecycle_actions, 1)]
    _ACTION_INSERT.many(conn, [_action_row(tx, i, action_id, Rule.MERGE, key, as_of, None, target, gid, total,
                                           {"plan": _plan_dict(plan), "transfer_id": transfer_id,
                                                  "released": released})])  # fmt: skip
    moved = _move_earmarks(tx, i, members, target, action_id)
    detail = {"group": plan.group_name, "into": plan.target_label, "cash_cents": total, "earmarks": moved,
              "brokerage_returned_to_pool": released, **in_kind}  # fmt: skip
    tx.emit(i, "lifecycle.merge", detail, target, action_id)
    target_group = merge_store.group_of(conn, pid, target)
    return {"rule": Rule.MERGE.value, "action_id": action_id, "group": plan.group_name, "into": plan.target_label,
            "target_group_id": target_group, "amount_cents": Cents(total), "transfer_id": transfer_id,
            "reason": plan.reason}  # fmt: skip


def _move_earmarks(tx: Tx, i: int, members: list[int], target: int, action_id: int) -> dict[str, int]:
    """Open earmarks (a tax reserve above all) follow the money into the target Com-Acc."""
    rows: list[EarmarkRow] = []
    moved: dict[str, int] = {}
    for aid, by_purpose in _earmark_balances(tx.conn, tx.portfolio_id, members).items():
        for purpose, amount in by_purpose.items():
            rows.append(_earmark_row(tx, i, aid, purpose, -amount, action_id, "merge"))
            rows.append(_earmark_row(tx, i, target, purpose, amount, action_id, "merge"))
            moved[purpose.value] = moved.get(purpose.value, 0) + amount
    if rows:
        earmark_store.insert_earmarks(tx.conn, rows)
        merge_store.hand_over_earmarked(tx.conn, tx.portfolio_id, members, target, sum(moved.values()))
    return moved


def apply_reinvestments(
    engine: Engine, actor: str, pid: int, account_ids: list[int], as_of: date, cfg: LifecycleConfig
) -> list[ActionApplied]:
    """§5.4 for the given Rev-Accs and Com-Accs: the quarter's plan becomes earmarks. No cash moves."""
    period = quarter_of(as_of)
    chosen: dict[str, tuple[Sleeve, ReinvestPlan]] = {}

    def decide(conn: sa.Connection, _pid: int) -> tuple[list[Request], Any]:
        chosen.clear()
        for aid, s in sorted(_load_sleeves(conn, pid, account_ids, as_of, gains=True).items()):
            plan = plan_reinvestment(s.state, s.quarter_gain, period, cfg) if s.status is AccountStatus.ACTIVE else None
            if plan is not None:
                chosen[reinvest_key(aid, period)] = (s, plan)
        requests = [Request(k, {"rule": Rule.REINVEST.value, "account_id": s.state.account_id, "period": period})
                    for k, (s, _) in chosen.items()]  # fmt: skip
        return requests, apply

    def apply(tx: Tx, fresh: list[Request]) -> list[ActionApplied]:
        tx.announce = False  # lifecycle.reinvest below
        first = allocate_ids(tx.conn, lifecycle_actions, len(fresh))
        actions, marks, cached = [], [], []
        out: list[ActionApplied] = []
        for i, r in enumerate(fresh):
            s, plan = chosen[r.key]
            aid, action_id = s.state.account_id, first + i
            detail = _plan_dict(plan)
            actions.append(_action_row(tx, i, action_id, Rule.REINVEST, r.key, as_of, period, aid, None,
                                       plan.reinvestable, {"plan": detail}))  # fmt: skip
            earmarked = plan.all_earmarks
            marks += [_earmark_row(tx, i, aid, p, v, action_id, f"reinvest {period}") for p, v in earmarked.items()]
            if earmarked:
                cached.append({"aid": aid, "delta": sum(earmarked.values())})
            tx.emit(i, "lifecycle.reinvest", detail, aid, action_id)
            if earmarked:
                alert_event(tx, i, "reinvestment_ready", aid, f"{s.state.label}: reinvestment plan for {period} ready, "
                            f"{format_usd(plan.reinvestable)} earmarked")  # fmt: skip
            if plan.still_below_buffer:
                alert_event(tx, i, "buffer_breach", aid, f"{s.state.label}: {plan.reason}")
            out.append({"rule": Rule.REINVEST.value, "action_id": action_id, "account": s.state.label,
                        "period": period, "amount_cents": Cents(plan.reinvestable),
                        "earmarks": {k.value: v for k, v in earmarked.items()}, "reason": plan.reason})  # fmt: skip
        _ACTION_INSERT.many(tx.conn, actions)
        earmark_store.insert_earmarks(tx.conn, marks)
        earmark_store.add_to_earmarked(tx.conn, tx.portfolio_id, cached)
        return out

    return _results(write_planned(engine, pid, actor, ACTOR_ACTION, decide))


_ACTION_INSERT = insert(lifecycle_actions)


def _action_row(
    tx: Tx,
    i: int,
    action_id: int,
    rule: Rule,
    key: str,
    as_of: date,
    period: str | None,
    account_id: int,
    group_id: int | None,
    amount: int,
    detail: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": action_id,
        "portfolio_id": tx.portfolio_id,
        "rule": rule.value,
        "idempotency_key": key,
        "as_of": as_of,
        "period": period,
        "account_id": account_id,
        "group_id": group_id,
        "amount_cents": amount,
        "detail": json.dumps(detail, sort_keys=True, default=str),
        "audit_seq": tx.seq(i),
        "created_at": tx.now,
    }


def _plan_dict(plan: ForkPlan | MergePlan | ReinvestPlan) -> PlanRecord:
    if isinstance(plan, ForkPlan):
        return {"rule": plan.rule.value, "outcome": plan.outcome.value, "account_id": plan.account_id,
                "amount_cents": Cents(plan.amount), "legs": {k.value: v for k, v in plan.legs.items()},
                "surplus_cents": Cents(plan.surplus), "deployable_cents": Cents(plan.deployable),
                "reason": plan.reason}  # fmt: skip
    if isinstance(plan, MergePlan):
        return {"rule": plan.rule.value, "outcome": plan.outcome.value, "group_id": plan.group_id,
                "target_account_id": plan.target_account_id, "combined_nav_cents": Cents(plan.combined_nav),
                "moves": {str(k): v for k, v in plan.moves.items()}, "reason": plan.reason}  # fmt: skip
    return {"rule": plan.rule.value, "outcome": plan.outcome.value, "account_id": plan.account_id,
            "period": plan.period, "realized_gain_cents": Cents(plan.realized_gain),
            "tax_reserve_cents": Cents(plan.tax_reserve), "reinvestable_cents": Cents(plan.reinvestable),
            "buffer_restore_cents": Cents(plan.buffer_restore), "earmarks": {k.value: v for k, v in plan.earmarks.items()},
            "not_earmarked_cents": Cents(plan.not_earmarked), "still_below_buffer": plan.still_below_buffer,
            "buffer_shortfall_cents": Cents(plan.buffer_shortfall), "reason": plan.reason}  # fmt: skip


# --- the sweep ----------------------------------------------------------------------------------


@dataclass(slots=True)
class RunReport:
    as_of: date
    applied: list[ActionApplied] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    families: int = 0
    busy: bool = False  # another worker was sweeping the portfolio as of that day: this one did nothing

    def count(self, rule: Rule) -> int:
        return sum(1 for a in self.applied if a["rule"] == rule.value)


FAMILIES_PER_BATCH = 500
ALERT_KINDS = {
    "alert.fork_waiting": "FORK_WAITING",
    "alert.merge_waiting": "MERGE_WAITING",
    "alert.buffer_breach": BUFFER_BREACH,
}


def _with_tax_rate(conn: sa.Connection, pid: int, cfg: LifecycleConfig | None) -> LifecycleConfig:
    """The portfolio's own settings (`alluse config set portfolio …`) unless the caller passes a whole
    configuration; the tax reserve uses the portfolio's short-term rate (`alluse tax rates`) either way."""
    if cfg is None:
        return portfolio_lifecycle(conn, pid)
    return replace(cfg, short_term_tax_bps=tax.rates(conn, pid).short_term_bps)


# PostgreSQL: one worker at a time sweeps a portfolio as of a day, under an advisory lock on both
# (a single bigint key, hashed by the server from the two; `_sweeping`).
_SWEEP_TAKEN = Prepared(
    sa.select(
        sa.func.pg_try_advisory_xact_lock(
            sa.func.hashtextextended(
                sa.func.concat("alluse.lifecycle:", sa.bindparam("pid", type_=sa.BigInteger), ":",
                               sa.bindparam("day", type_=sa.Text)),
                0,
            )
        )
    )
)  # fmt: skip


@contextmanager
def _sweeping(engine: Engine, portfolio: str | int | None, as_of: date) -> Iterator[tuple[int, bool]]:
    """The portfolio's id, and whether this worker sweeps it as of `as_of`: False when another
    worker is sweeping it as of that day right now (PostgreSQL: an advisory lock held by a
    transaction open until this block ends, let go however it ends, a crash included).

    A worker that finds the sweep taken leaves at once instead of sharing it: every unit of work of
    a portfolio takes the portfolio's one audit-chain lock, so workers sharing a sweep wrote one
    after the other anyway, each paying its own scan of the portfolio, and took longer than one
    worker alone (docs/benchmarks.md, round fourteen). SQLite has one writer: a second sweep queues
    on it and applies nothing twice."""
    if engine.dialect.name != "postgresql":
        with engine.connect() as conn:
            pid = resolve_portfolio(conn, portfolio)
        yield pid, True
        return
    with engine.connect() as conn, conn.begin():
        pid = resolve_portfolio(conn, portfolio)
        ((taken,),) = _SWEEP_TAKEN.rows(conn, pid=pid, day=as_of.isoformat())
        yield pid, bool(taken)


def run(
    engine: Engine,
    actor: str,
    portfolio: str | int | None,
    as_of: date,
    cfg: LifecycleConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    families_per_batch: int = FAMILIES_PER_BATCH,
) -> RunReport:
    """Apply every rule that acts on `as_of`. Safe to repeat, to resume after a crash, and to start
    in several processes at once: on PostgreSQL one sweeps and the others leave it to that one
    (`busy`), on SQLite they queue on its one writer."""
    report = RunReport(as_of)
    with _sweeping(engine, portfolio, as_of) as (pid, mine):
        if not mine:
            report.busy = True
            return report
        with engine.connect() as conn:
            scope_to(conn, pid)
            cfg = _with_tax_rate(conn, pid, cfg)
            cands = find_candidates(conn, pid, as_of, cfg, exact=False)
            if not (cands.sleeves or cands.merges):
                return report
            # What each acting sleeve (by its group) and each merging group does: (kind, group, item).
            sleeves = (("reinvest", cands.reinvest), ("rev", cands.rev_forks), ("gen", cands.gen_forks))
            acting = [(kind, cands.sleeves[a].state.group_id, a) for kind, ids in sleeves for a in ids]
            acting += [("merge", gid, gid) for gid in cands.merges]
            tree = genealogy(conn, pid, of={gid for _kind, gid, _item in acting})
        families: dict[int, dict[str, list[int]]] = {}
        for kind, gid, item in acting:
            families.setdefault(tree.root(gid), {}).setdefault(kind, []).append(item)
        roots = sorted(families)
        report.families = len(roots)
        for done in range(0, len(roots), families_per_batch):
            batch = roots[done : done + families_per_batch]
            _families(engine, actor, pid, [families[r] for r in batch], tree, as_of, cfg, report)
            if progress:
                progress(done + len(batch), len(roots))
        _alerts(engine, actor, pid, as_of, cfg, cands, report)
    return report


def _families(
    engine: Engine,
    actor: str,
    pid: int,
    work: list[dict[str, list[int]]],
    tree: Genealogy,
    as_of: date,
    cfg: LifecycleConfig,
    report: RunReport,
) -> None:
    """The rules in their fixed order over a batch of families (which never touch each other)."""

    def every(kind: str) -> list[int]:
        return sorted(x for w in work for x in w.get(kind, []))

    if reinvest := every("reinvest"):  # each apply_* is a unit of work: none for nothing to do
        report.applied += apply_reinvestments(engine, actor, pid, reinvest, as_of, cfg)
    born: set[int] = set()  # FORK groups this run created (not in the genealogy snapshot)

    def merges(depths: dict[int, int]) -> None:
        while depths:
            order = sorted(depths, key=lambda g: (-depths[g], g))  # deepest first
            done = apply_merges(engine, actor, pid, order, as_of, cfg)
            report.applied += done
            grown = {}
            for r in done:
                target = r["target_group_id"]
                if target in born or tree.kind.get(target) == GroupKind.FORK.value:
                    # The receiving FORK group grew and may reach the threshold itself.
                    grown[target] = depths.get(target, tree.depth(target) if target in tree.parent else 1)
            depths = grown

    # A FORK group at the threshold merges before any of its sleeves could fork the growth away.
    merges({gid: tree.depth(gid) for gid in every("merge")})
    items = [(Rule.REV_FORK, a) for a in every("rev")] + [(Rule.GEN_FORK, a) for a in every("gen")]
    waits: list[ForkPlan] = []
    forked = apply_forks(engine, actor, pid, items, as_of, cfg, waits) if items else []
    report.waiting += [_fork_wait(p) for p in waits]
    report.applied += forked
    new_depths = {}
    for r in forked:
        if r["rule"] == Rule.GEN_FORK.value:
            born.add(r["group_id"])
            parent = r["parent_group_id"]
            if r["amount_cents"] >= cfg.merge_threshold and parent is not None:  # a fork always has one
                new_depths[r["group_id"]] = tree.depth(parent) + 1
    merges(new_depths)


def _alerts(
    engine: Engine, actor: str, pid: int, as_of: date, cfg: LifecycleConfig, cands: Candidates, report: RunReport
) -> None:
    """Waiting forks and merges and buffer breaches found by this sweep: one alert each per account
    and day, all in one unit of work."""
    with engine.connect() as conn:
        scope_to(conn, pid)
        report.waiting += _waiting_merges(conn, pid, cands, cfg)
    alerts: list[Waiting] = list(report.waiting)
    for aid in cands.breaches:
        s = cands.sleeves[aid].state
        alerts.append(
            {"kind": "alert.buffer_breach", "subject": f"account:{aid}", "account_id": aid, "account": s.label,
             "reason": f"{s.label} holds cash {format_usd(s.cash.cash)}, below its cash buffer of "
                       f"{format_usd(s.cash.cash_buffer)}"}
        )  # fmt: skip
    if not alerts:
        return
    by_key = {f"lifecycle:{a['kind']}:{a['subject']}:{as_of.isoformat()}": a for a in alerts}
    requests = [Request(k, {"kind": a["kind"], "subject": a["subject"]}) for k, a in by_key.items()]

    def apply(tx: Tx, fresh: list[Request]) -> list[dict[str, Any]]:
        tx.announce = False  # raise_alert writes the alert.* event of each new alert
        for i, r in enumerate(fresh):  # onto the alerts list a human works through (one open per kind and account)
            a = by_key[r.key]
            raise_alert(tx, a["account_id"], ALERT_KINDS[a["kind"]], f"{a['account']}: {a['reason']}", i)
        return [{"alert": by_key[r.key]["kind"], "reason": by_key[r.key]["reason"]} for r in fresh]

    write(engine, pid, actor, "lifecycle.alert", requests, apply)


def _fork_wait(plan: ForkPlan) -> Waiting:
    return {"kind": "alert.fork_waiting", "subject": f"{plan.rule.value.lower()}:{plan.account_id}",
            "account_id": plan.account_id, "account": plan.label, "reason": plan.reason}  # fmt: skip


def _waiting_merges(conn: sa.Connection, pid: int, cands: Candidates, cfg: LifecycleConfig) -> list[Waiting]:
    out: list[Waiting] = []
    for gid in cands.merges:
        mp = plan_group_merge(conn, pid, gid, cfg)
        if mp is not None and mp.outcome is Outcome.WAIT:
            gen = conn.execute(
                sa.select(_a.id).where(_a.portfolio_id == pid, _a.group_id == gid, _a.kind == "GEN")
            ).scalar_one()
            out.append({"kind": "alert.merge_waiting", "subject": f"group:{gid}", "account_id": gen,
                        "account": f"group {mp.group_name}", "reason": mp.reason})  # fmt: skip
    return out


def _fork_plans(conn: sa.Connection, pid: int, cands: Candidates, cfg: LifecycleConfig) -> list[ForkPlan]:
    """Fork plans in run order; pool accounts taken by earlier forks are not offered to later ones."""
    left: dict[str, int] = {}
    plans = []
    pools = _fork_pools(conn, pid, [*cands.rev_forks, *cands.gen_forks])
    for ids, planner in (
        (cands.rev_forks, plan_rev_fork),
        (cands.gen_forks, plan_gen_fork),
    ):
        for aid in sorted(ids):
            broker, free = pools[aid]
            if free is not None:
                free = left.setdefault(broker, free)
            plan = planner(cands.sleeves[aid].state, cfg, free)
            if plan is None:
                continue
            if plan.outcome is Outcome.APPLY and free is not None:
                left[broker] -= plan.brokerage_needed
            plans.append(plan)
    return plans


# --- read-only views ----------------------------------------------------------------------------


_APPLIED_KEYS = sa.select(_la.idempotency_key).where(
    _la.portfolio_id == sa.bindparam("pid"), _la.idempotency_key.in_(sa.bindparam("keys", expanding=True))
)


def plan(
    engine: Engine, portfolio: str | int | None, as_of: date, cfg: LifecycleConfig | None = None
) -> list[PlannedAction]:
    """Every action a run on `as_of` would take on the current state, with amounts and reasons.
    Changes nothing. Merges that only another action of the same run makes possible show up after it."""
    rows: list[PlannedAction] = []
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        cfg = _with_tax_rate(conn, pid, cfg)
        cands = find_candidates(conn, pid, as_of, cfg)
        period = quarter_of(as_of)
        # A quarter's reinvestment is applied once: after that a run replays it and acts on nothing.
        keys = {aid: reinvest_key(aid, period) for aid in cands.reinvest}
        applied = (
            set(conn.execute(_APPLIED_KEYS, {"pid": pid, "keys": list(keys.values())}).scalars()) if keys else set()
        )
        for aid in sorted(cands.reinvest):
            if keys[aid] in applied:
                continue
            s = cands.sleeves[aid]
            p = plan_reinvestment(s.state, s.quarter_gain, period, cfg)
            if p is not None:
                rows.append({**_plan_dict(p), "subject": p.label, "amount_cents": Cents(p.reinvestable)})
        merging = set()
        for gid in sorted(cands.merges):
            mp = plan_group_merge(conn, pid, gid, cfg)
            if mp is not None:
                rows.append(
                    {**_plan_dict(mp), "subject": f"group {mp.group_name}", "amount_cents": Cents(mp.combined_nav)}
                )
                merging.add(gid) if mp.outcome is Outcome.APPLY else None
        for fp in _fork_plans(conn, pid, cands, cfg):
            if cands.sleeves[fp.account_id].state.group_id not in merging:  # its sleeves merge instead
                rows.append({**_plan_dict(fp), "subject": fp.label})
        for aid in cands.breaches:
            st = cands.sleeves[aid].state
            rows.append({"rule": "BUFFER", "outcome": "ALERT", "subject": st.label, "amount_cents": Cents(st.cash.cash_buffer - st.cash.cash),
                         "reason": "cash is below the cash buffer: the run raises a buffer-breach alert"})  # fmt: skip
    return rows
