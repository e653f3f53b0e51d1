"""`alluse verify`: recompute everything from the journal and the audit chain, and report differences.

Nothing here trusts a cached figure: balances and base capital are summed from postings, the audit
chain is re-hashed entry by entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountKind
from alluse.domain.audit import GENESIS, entry_hash, timestamp_text
from alluse.domain.errors import PermissionDenied
from alluse.domain.instruments import value_cents
from alluse.domain.ledger import CAPITAL_FLOWS, CAPITAL_INFLOWS
from alluse.domain.rules import effective_rules
from alluse.store.schema import (
    account_config,
    accounts,
    audit_log,
    brokerage_accounts,
    earmarks,
    instruments,
    lot_closes,
    lots,
    portfolios,
    positions,
    postings,
    transfers,
)


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(engine: Engine) -> VerifyReport:
    report = VerifyReport()
    with engine.connect() as conn:
        _require_whole_view(conn)
        _ledger(conn, report)
        _positions(conn, report)
        _mapping(conn, report)
        _earmarks(conn, report)
        _config(conn, report)
        _audit(conn, report)
    return report


def _require_whole_view(conn: sa.Connection) -> None:
    """verify checks every portfolio at once (the sum of all postings, every audit chain), so it must
    see every row. Under the application role row-level security would hide all but one portfolio and
    the report would be silently partial: refuse instead."""
    if conn.dialect.name == "postgresql" and conn.exec_driver_sql("SELECT row_security_active('postings')").scalar():
        raise PermissionDenied(
            "verify needs the database owner role (row-level security hides other portfolios from "
            f"{conn.exec_driver_sql('SELECT current_user').scalar()}); run it with the owner's ALLUSE_DATABASE_URL"
        )


def _ledger(conn: sa.Connection, report: VerifyReport) -> None:
    p, a, t = postings.c, accounts.c, transfers.c
    total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(p.amount_cents), 0))).scalar_one()
    report.counts["postings"] = conn.execute(sa.select(sa.func.count()).select_from(postings)).scalar_one()
    report.counts["transfers"] = conn.execute(sa.select(sa.func.count()).select_from(transfers)).scalar_one()
    if total != 0:
        report.problems.append(f"postings sum to {total} cents, not zero")
    for tid, s in conn.execute(
        sa.select(p.transfer_id, sa.func.sum(p.amount_cents))
        .group_by(p.transfer_id)
        .having(sa.func.sum(p.amount_cents) != 0)
    ):
        report.problems.append(f"transfer {tid} is unbalanced by {s} cents")
    capital = sa.case(
        (t.kind.in_([k.value for k in CAPITAL_FLOWS]), p.amount_cents),
        (sa.and_(t.kind.in_([k.value for k in CAPITAL_INFLOWS]), p.amount_cents > 0), p.amount_cents),
        else_=0,
    )
    sums = (
        sa.select(p.account_id, sa.func.sum(p.amount_cents).label("cash"), sa.func.sum(capital).label("base"))
        .join(transfers, t.id == p.transfer_id)
        .group_by(p.account_id)
        .subquery()
    )
    q = sa.select(
        a.id,
        a.name,
        a.kind,
        a.cash_cents,
        a.base_capital_cents,
        sa.func.coalesce(sums.c.cash, 0),
        sa.func.coalesce(sums.c.base, 0),
    ).outerjoin(sums, sums.c.account_id == a.id)
    n = 0
    for aid, name, kind, cash, base, journal_cash, journal_base in conn.execute(q):
        n += 1
        if cash != journal_cash:
            report.problems.append(f"account {name} (#{aid}) caches cash {cash} but its postings sum to {journal_cash}")
        if kind != AccountKind.EXT and base != journal_base:
            report.problems.append(
                f"account {name} (#{aid}) records base capital {base} but its capital flows sum to {journal_base}"
            )
    report.counts["accounts"] = n


def _positions(conn: sa.Connection, report: VerifyReport) -> None:
    """Lots from their closings; positions from the lots; each account's positions value from its
    positions and their prices; short-put collateral from the open short put lots."""
    lo, c, p, i, a = lots.c, lot_closes.c, positions.c, instruments.c, accounts.c
    closed = (
        sa.select(c.lot_id, sa.func.sum(c.quantity).label("q"), sa.func.sum(c.open_cash_cents).label("cash"))
        .group_by(c.lot_id)
        .subquery()
    )
    q = sa.select(
        lo.id,
        lo.account_id,
        lo.instrument_id,
        lo.side,
        lo.quantity,
        lo.open_cash_cents,
        lo.remaining,
        lo.remaining_cash_cents,
        sa.func.coalesce(closed.c.q, 0),
        sa.func.coalesce(closed.c.cash, 0),
        i.put_call,
        i.strike_e4,
        i.multiplier,
    ).select_from(lots.outerjoin(closed, closed.c.lot_id == lo.id).join(instruments, i.id == lo.instrument_id))
    held: dict[tuple[int, int], int] = {}
    collateral: dict[int, int] = {}
    n = 0
    for lid, aid, iid, side, qty, ocash, rem, rcash, cq, ccash, pc, strike, mult in conn.execute(q):
        n += 1
        if (rem, rcash) != (qty - cq, ocash - ccash):
            report.problems.append(
                f"lot {lid} caches {rem} open ({rcash} cents) but its closings leave {qty - cq} ({ocash - ccash} cents)"
            )
        held[(aid, iid)] = held.get((aid, iid), 0) + (qty - cq) * (1 if side == "LONG" else -1)
        if side == "SHORT" and pc == "P":
            collateral[aid] = collateral.get(aid, 0) + value_cents(qty - cq, strike, mult)
    report.counts["lots"] = n
    value: dict[int, int] = {}
    seen = set()
    for aid, iid, qty, mark, mult in conn.execute(
        sa.select(p.account_id, p.instrument_id, p.quantity, p.mark_e4, i.multiplier).join(
            instruments, i.id == p.instrument_id
        )
    ):
        seen.add((aid, iid))
        if qty != held.get((aid, iid), 0):
            report.problems.append(
                f"account #{aid} position in instrument #{iid} is {qty}, its lots hold {held.get((aid, iid), 0)}"
            )
        value[aid] = value.get(aid, 0) + value_cents(qty, mark, mult)
    for (aid, iid), qty in held.items():
        if (aid, iid) not in seen and qty:
            report.problems.append(f"account #{aid} holds {qty} of instrument #{iid} in lots but has no position")
    for aid, name, pv, coll in conn.execute(sa.select(a.id, a.name, a.positions_value_cents, a.collateral_cents)):
        if pv != value.get(aid, 0):
            report.problems.append(
                f"account {name} caches positions value {pv} but its positions are worth {value.get(aid, 0)}"
            )
        if coll != collateral.get(aid, 0):
            report.problems.append(
                f"account {name} holds collateral {coll} but its open short puts need {collateral.get(aid, 0)}"
            )


def _mapping(conn: sa.Connection, report: VerifyReport) -> None:
    a, b = accounts.c, brokerage_accounts.c
    q = (
        sa.select(a.name, a.status, sa.func.count(b.id))
        .select_from(accounts.outerjoin(brokerage_accounts, b.account_id == a.id))
        .where(a.kind != "EXT")
        .group_by(a.id, a.name, a.status)
    )
    for name, status, mapped in conn.execute(q):
        if status == "ACTIVE" and mapped != 1:
            report.problems.append(f"active account {name} maps to {mapped} brokerage accounts, not exactly one")
        if status in ("MERGED", "CLOSED") and mapped:
            report.problems.append(f"{status.lower()} account {name} still holds a brokerage account")
    cross = conn.execute(
        sa.select(b.broker, b.number).join(accounts, a.id == b.account_id).where(a.portfolio_id != b.portfolio_id)
    ).all()
    for broker, number in cross:
        report.problems.append(f"brokerage account {broker}:{number} maps to an account of another portfolio")


def _earmarks(conn: sa.Connection, report: VerifyReport) -> None:
    """The cached earmark total of each account equals its earmark entries; no earmark is overdrawn."""
    e, a = earmarks.c, accounts.c
    sums = sa.select(e.account_id, sa.func.sum(e.amount_cents).label("total")).group_by(e.account_id).subquery()
    q = sa.select(a.name, a.earmarked_cents, sa.func.coalesce(sums.c.total, 0)).outerjoin(
        sums, sums.c.account_id == a.id
    )
    for name, cached, total in conn.execute(q):
        if cached != total:
            report.problems.append(f"account {name} caches earmarks {cached} but its earmark entries sum to {total}")
    for name, purpose, total in conn.execute(
        sa.select(a.name, e.purpose, sa.func.sum(e.amount_cents))
        .join(accounts, a.id == e.account_id)
        .group_by(a.name, e.purpose)
        .having(sa.func.sum(e.amount_cents) < 0)
    ):
        report.problems.append(f"account {name} has drawn its {purpose} earmark below zero ({total})")


def _config(conn: sa.Connection, report: VerifyReport) -> None:
    q = sa.select(
        accounts.c.name,
        accounts.c.kind,
        accounts.c.buffer_bps,
        account_config.c.template,
        account_config.c.overrides,
    ).join(account_config, account_config.c.account_id == accounts.c.id)
    for name, kind, buffer_bps, template, overrides in conn.execute(q):
        want = effective_rules(template, AccountKind(kind), json.loads(overrides)).buffer_bps
        if buffer_bps != want:
            report.problems.append(f"account {name} enforces a {buffer_bps} bps buffer but is configured for {want}")


def _audit(conn: sa.Connection, report: VerifyReport) -> None:
    heads = {
        pid: (seq, head)
        for pid, seq, head in conn.execute(sa.select(portfolios.c.id, portfolios.c.audit_seq, portfolios.c.audit_head))
    }
    al = audit_log.c
    q = sa.select(
        al.portfolio_id,
        al.seq,
        al.at,
        al.actor,
        al.action,
        al.idempotency_key,
        al.input_digest,
        al.result,
        al.override_reason,
        al.prev_hash,
        al.hash,
    ).order_by(al.portfolio_id, al.seq)
    state: dict[int, tuple[int, str]] = {}
    n = 0
    for r in conn.execute(q).yield_per(5000):
        n += 1
        seq, prev = state.get(r.portfolio_id, (0, GENESIS))
        if r.seq != seq + 1:
            report.problems.append(f"audit log of portfolio {r.portfolio_id}: entry {seq + 1} is missing")
        if r.prev_hash != prev:
            report.problems.append(
                f"audit log of portfolio {r.portfolio_id}: entry {r.seq} does not chain to the one before"
            )
        h = entry_hash(
            r.prev_hash,
            r.seq,
            timestamp_text(r.at),
            r.actor,
            r.action,
            r.idempotency_key,
            r.input_digest,
            r.result,
            r.override_reason,
        )
        if h != r.hash:
            report.problems.append(f"audit log of portfolio {r.portfolio_id}: entry {r.seq} was altered")
        state[r.portfolio_id] = (r.seq, r.hash)
    for pid, (seq, head) in heads.items():
        if state.get(pid, (0, GENESIS)) != (seq, head):
            report.problems.append(
                f"audit log of portfolio {pid} ends at entry {state.get(pid, (0,))[0]}, "
                f"but the portfolio records {seq} entries (entries deleted?)"
            )
    report.counts["audit_entries"] = n


def verify_audit(engine: Engine) -> VerifyReport:
    """The audit-chain part of `verify` on its own (`alluse audit verify`)."""
    report = VerifyReport()
    with engine.connect() as conn:
        _audit(conn, report)
    return report


def audit_entries(engine: Engine, portfolio_id: int, after: int = 0, limit: int = 100) -> list[dict]:
    al = audit_log.c
    q = (
        sa.select(al.seq, al.at, al.actor, al.action, al.idempotency_key, al.result, al.override_reason, al.hash)
        .where(al.portfolio_id == portfolio_id, al.seq > after)
        .order_by(al.seq)
        .limit(limit)
    )
    with engine.connect() as conn:
        # SQLite hands timestamps back naive; they were written in UTC.
        return [
            {**r._asdict(), "at": r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC), "result": json.loads(r.result)}
            for r in conn.execute(q)
        ]
