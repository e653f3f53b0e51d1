"""`alluse verify`: recompute everything from the journal and the audit chain, and report differences.

Nothing here trusts a cached figure: balances and base capital are summed from postings, the audit
chain is re-MAC'd entry by entry with the audit keys, and every row of every covered table is
compared with the image in the manifest of the unit of work that last wrote it (store/rowlog.py).

The checks are small named functions, each yielding findings; `CHECKS` lists them and `verify` runs
them in that order. A new invariant is one function and one line in `CHECKS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.brokers.refs import PAPER
from alluse.config import get_settings
from alluse.domain.accounts import AccountKind
from alluse.domain.audit import GENESIS, entry_hash, entry_mac, timestamp_text
from alluse.domain.errors import AlluseError, InvalidInput, PermissionDenied
from alluse.domain.instruments import value_cents
from alluse.domain.lots import Side
from alluse.domain.rules import effective_rules
from alluse.security.audit_key import from_secret, keyring_audit_keys
from alluse.security.keyring import Keyring, KeyringError, load_keyring
from alluse.store import rowlog
from alluse.store.asof import capital_part
from alluse.store.schema import (
    account_config,
    accounts,
    audit_keys,
    audit_log,
    brokerage_accounts,
    brokerage_numbers,
    earmarks,
    events,
    fills,
    instruments,
    lot_closes,
    lots,
    marks,
    portfolios,
    positions,
    postings,
    system_audit,
    transfers,
)

SYSTEM = "system"


@dataclass(frozen=True)
class Finding:
    """One discrepancy: which check found it, what it is, and the table and row where it is."""

    check: str
    message: str
    table: str | None = None
    row: str | None = None


@dataclass(frozen=True)
class Head:
    """The last entry of one chain: a portfolio's (by id) or the system chain."""

    chain: str
    seq: int
    mac: str

    def token(self) -> str:
        return f"{self.chain}:{self.seq}:{self.mac}"

    @staticmethod
    def parse(text: str) -> Head:
        parts = text.strip().split(":")
        if len(parts) != 3 or not parts[1].isascii() or not parts[1].isdigit() or len(parts[2]) != 64:
            raise InvalidInput(f"expect-head: {text!r} is not a head as --export-head prints it (chain:seq:mac)")
        return Head(parts[0], int(parts[1]), parts[2].lower())


@dataclass
class VerifyReport:
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    heads: list[Head] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [f.message for f in self.findings]

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass
class Context:
    """What the checks share: the connection, the audit keys, and what earlier checks learned."""

    conn: sa.Connection
    keys: dict[str, bytes]
    counts: dict[str, int]
    expect: list[Head] = field(default_factory=list)
    heads: list[Head] = field(default_factory=list)
    # table -> row key -> the manifest entry that last wrote it (filled by the audit_chain check)
    recorded: dict[str, dict[object, tuple[Any, ...]]] = field(default_factory=dict)


Check = Callable[[Context], Iterator[Finding]]


def verify(engine: Engine, keyring: Keyring | None = None, expect: list[Head] | None = None) -> VerifyReport:
    """Run every check in `CHECKS`. The keyring (default: this configuration's) holds the audit keys."""
    with engine.connect() as conn:
        return verify_on(conn, keyring, expect)


def verify_on(conn: sa.Connection, keyring: Keyring | None = None, expect: list[Head] | None = None) -> VerifyReport:
    """`verify` on a connection the caller holds (sees its uncommitted changes)."""
    if keyring is None:
        keyring = load_keyring(get_settings(), create=False)
    _require_whole_view(conn)
    report = VerifyReport()
    ctx = Context(conn, {}, report.counts, list(expect or []))
    report.findings.extend(_load_keys(ctx, keyring))
    for check in CHECKS:
        try:
            report.findings.extend(check(ctx))
        except (ValueError, TypeError, KeyError, AlluseError) as exc:
            # A tampered value the check cannot even read (malformed JSON, an unknown kind) is a finding too.
            report.findings.append(Finding(check.__name__, f"{check.__name__} could not read the data: {exc}"))
    report.heads = ctx.heads
    return report


def _load_keys(ctx: Context, keyring: Keyring) -> list[Finding]:
    """The audit keys: each keyring key's, and every older one sealed in audit_keys."""
    for k in keyring_audit_keys(keyring):
        ctx.keys[k.key_id] = k.secret
    out = []
    for key_id, sealed in ctx.conn.execute(sa.select(audit_keys.c.key_id, audit_keys.c.sealed)):
        try:
            k = from_secret(keyring.decrypt(bytes(sealed)))
        except KeyringError:
            out.append(
                Finding("audit_keys", f"audit key {key_id} cannot be unsealed with the keyring", "audit_keys", key_id)
            )
            continue
        if k.key_id != key_id:
            out.append(Finding("audit_keys", f"audit key {key_id} unseals to a different key", "audit_keys", key_id))
            continue
        ctx.keys[key_id] = k.secret
    return out


def _require_whole_view(conn: sa.Connection) -> None:
    """verify checks every portfolio at once (the sum of all postings, every audit chain), so it must
    see every row. Under the application role row-level security would hide all but one portfolio and
    the report would be silently partial: refuse instead."""
    if conn.dialect.name == "postgresql" and conn.exec_driver_sql("SELECT row_security_active('postings')").scalar():
        raise PermissionDenied(
            "verify needs the database owner role (row-level security hides other portfolios from "
            f"{conn.exec_driver_sql('SELECT current_user').scalar()}); run it with the owner's ALLUSE_DATABASE_URL"
        )


def ledger(ctx: Context) -> Iterator[Finding]:
    """Postings sum to zero overall and per transfer; each account's cached cash and base capital equal its postings."""
    conn = ctx.conn
    p, a, t = postings.c, accounts.c, transfers.c
    total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(p.amount_cents), 0))).scalar_one()
    ctx.counts["postings"] = conn.execute(sa.select(sa.func.count()).select_from(postings)).scalar_one()
    ctx.counts["transfers"] = conn.execute(sa.select(sa.func.count()).select_from(transfers)).scalar_one()
    if total != 0:
        yield Finding("ledger", f"postings sum to {total} cents, not zero", "postings")
    for tid, s in conn.execute(
        sa.select(p.transfer_id, sa.func.sum(p.amount_cents))
        .group_by(p.transfer_id)
        .having(sa.func.sum(p.amount_cents) != 0)
    ):
        yield Finding("ledger", f"transfer {tid} is unbalanced by {s} cents", "transfers", str(tid))
    capital = capital_part(t.kind, p.amount_cents)
    sums = (
        sa.select(
            p.portfolio_id, p.account_id, sa.func.sum(p.amount_cents).label("cash"), sa.func.sum(capital).label("base")
        )
        .join(transfers, sa.and_(t.portfolio_id == p.portfolio_id, t.id == p.transfer_id))
        .group_by(p.portfolio_id, p.account_id)
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
    ).outerjoin(sums, sa.and_(sums.c.portfolio_id == a.portfolio_id, sums.c.account_id == a.id))
    n = 0
    for aid, name, kind, cash, base, journal_cash, journal_base in conn.execute(q):
        n += 1
        if cash != journal_cash:
            yield Finding(
                "ledger",
                f"account {name} (#{aid}) caches cash {cash} but its postings sum to {journal_cash}",
                "accounts",
                str(aid),
            )
        if base != (journal_base if kind != AccountKind.EXT else 0):
            yield Finding(
                "ledger",
                f"account {name} (#{aid}) records base capital {base} but its capital flows sum to "
                f"{journal_base if kind != AccountKind.EXT else 0}",
                "accounts",
                str(aid),
            )
    ctx.counts["accounts"] = n


def positions_and_lots(ctx: Context) -> Iterator[Finding]:
    """Lots from their closings; positions from the lots; each account's positions value from its
    positions and their prices; short-put collateral from the open short put lots."""
    conn = ctx.conn
    lo, c, p, i, a = lots.c, lot_closes.c, positions.c, instruments.c, accounts.c
    closed = (
        sa.select(
            c.portfolio_id, c.lot_id, sa.func.sum(c.quantity).label("q"), sa.func.sum(c.open_cash_cents).label("cash")
        )
        .group_by(c.portfolio_id, c.lot_id)
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
    ).select_from(
        lots.outerjoin(closed, sa.and_(closed.c.portfolio_id == lo.portfolio_id, closed.c.lot_id == lo.id)).join(
            instruments, sa.and_(i.portfolio_id == lo.portfolio_id, i.id == lo.instrument_id)
        )
    )
    held: dict[tuple[int, int], int] = {}
    collateral: dict[int, int] = {}
    n = 0
    for lid, aid, iid, side, qty, ocash, rem, rcash, cq, ccash, pc, strike, mult in conn.execute(q):
        n += 1
        if (rem, rcash) != (qty - cq, ocash - ccash):
            yield Finding(
                "positions",
                f"lot {lid} caches {rem} open ({rcash} cents) but its closings leave {qty - cq} ({ocash - ccash} cents)",
                "lots",
                str(lid),
            )
        held[(aid, iid)] = held.get((aid, iid), 0) + (qty - cq) * (1 if side == Side.LONG else -1)
        if side == Side.SHORT and pc == "P":
            collateral[aid] = collateral.get(aid, 0) + value_cents(qty - cq, strike, mult)
    ctx.counts["lots"] = n
    value: dict[int, int] = {}
    seen = set()
    for pos_id, aid, iid, qty, mark, mult in conn.execute(
        sa.select(p.id, p.account_id, p.instrument_id, p.quantity, p.mark_e4, i.multiplier).join(
            instruments, sa.and_(i.portfolio_id == p.portfolio_id, i.id == p.instrument_id)
        )
    ):
        seen.add((aid, iid))
        if qty != held.get((aid, iid), 0):
            yield Finding(
                "positions",
                f"account #{aid} position in instrument #{iid} is {qty}, its lots hold {held.get((aid, iid), 0)}",
                "positions",
                str(pos_id),
            )
        value[aid] = value.get(aid, 0) + value_cents(qty, mark, mult)
    for (aid, iid), qty in held.items():
        if (aid, iid) not in seen and qty:
            yield Finding(
                "positions", f"account #{aid} holds {qty} of instrument #{iid} in lots but has no position", "positions"
            )
    for aid, name, pv, coll in conn.execute(sa.select(a.id, a.name, a.positions_value_cents, a.collateral_cents)):
        if pv != value.get(aid, 0):
            yield Finding(
                "positions",
                f"account {name} caches positions value {pv} but its positions are worth {value.get(aid, 0)}",
                "accounts",
                str(aid),
            )
        if coll != collateral.get(aid, 0):
            yield Finding(
                "positions",
                f"account {name} holds collateral {coll} but its open short puts need {collateral.get(aid, 0)}",
                "accounts",
                str(aid),
            )


def brokerage_mapping(ctx: Context) -> Iterator[Finding]:
    """Every active account maps to exactly one brokerage account of its own portfolio."""
    conn = ctx.conn
    a, b = accounts.c, brokerage_accounts.c
    q = (
        sa.select(a.name, a.status, sa.func.count(b.id))
        .select_from(
            accounts.outerjoin(brokerage_accounts, sa.and_(b.portfolio_id == a.portfolio_id, b.account_id == a.id))
        )
        .where(a.kind != "EXT")
        .group_by(a.id, a.name, a.status)
    )
    for name, status, mapped in conn.execute(q):
        if status == "ACTIVE" and mapped != 1:
            yield Finding(
                "brokerage_mapping",
                f"active account {name} maps to {mapped} brokerage accounts, not exactly one",
                "brokerage_accounts",
            )
        if status in ("MERGED", "CLOSED") and mapped:
            yield Finding(
                "brokerage_mapping",
                f"{status.lower()} account {name} still holds a brokerage account",
                "brokerage_accounts",
            )
    # A mapping whose account is not in the brokerage account's own portfolio (asked per shard group).
    own = sa.select(a.id).where(a.portfolio_id == b.portfolio_id, a.id == b.account_id)
    cross = conn.execute(sa.select(b.broker, b.number).where(b.account_id.is_not(None), ~own.exists())).all()
    for broker, number in cross:
        yield Finding(
            "brokerage_mapping",
            f"brokerage account {broker}:{number} maps to an account of another portfolio",
            "brokerage_accounts",
        )
    # Each number at a real broker is held in brokerage_numbers by the portfolio whose account it is,
    # and that table holds nothing else (its key is what refuses a number to a second portfolio).
    n = brokerage_numbers.c
    held = {(r.broker, r.number): r.portfolio_id for r in conn.execute(sa.select(n.broker, n.number, n.portfolio_id))}
    real = sa.select(b.broker, b.number, b.portfolio_id).where(b.broker != PAPER)
    for broker, number, pid in conn.execute(real):
        if held.pop((broker, number), None) != pid:
            yield Finding(
                "brokerage_mapping",
                f"brokerage account {broker}:{number} is not held by its portfolio in brokerage_numbers",
                "brokerage_numbers",
            )
    for broker, number in sorted(held):
        yield Finding(
            "brokerage_mapping",
            f"brokerage_numbers holds {broker}:{number}, which no portfolio has",
            "brokerage_numbers",
        )


def earmark_totals(ctx: Context) -> Iterator[Finding]:
    """The cached earmark total of each account equals its earmark entries; no earmark is overdrawn."""
    conn = ctx.conn
    e, a = earmarks.c, accounts.c
    sums = (
        sa.select(e.portfolio_id, e.account_id, sa.func.sum(e.amount_cents).label("total"))
        .group_by(e.portfolio_id, e.account_id)
        .subquery()
    )
    q = sa.select(a.name, a.earmarked_cents, sa.func.coalesce(sums.c.total, 0)).outerjoin(
        sums, sa.and_(sums.c.portfolio_id == a.portfolio_id, sums.c.account_id == a.id)
    )
    for name, cached, total in conn.execute(q):
        if cached != total:
            yield Finding(
                "earmarks",
                f"account {name} caches earmarks {cached} but its earmark entries sum to {total}",
                "accounts",
            )
    for name, purpose, total in conn.execute(
        sa.select(a.name, e.purpose, sa.func.sum(e.amount_cents))
        .join(accounts, sa.and_(a.portfolio_id == e.portfolio_id, a.id == e.account_id))
        .group_by(a.portfolio_id, a.id, a.name, e.purpose)  # names are unique within a portfolio only
        .having(sa.func.sum(e.amount_cents) < 0)
    ):
        yield Finding("earmarks", f"account {name} has drawn its {purpose} earmark below zero ({total})", "earmarks")


def buffer_config(ctx: Context) -> Iterator[Finding]:
    """Each account enforces the buffer its configuration gives it."""
    conn = ctx.conn
    q = sa.select(
        accounts.c.name,
        accounts.c.kind,
        accounts.c.buffer_bps,
        account_config.c.template,
        account_config.c.overrides,
    ).join(
        account_config,
        sa.and_(account_config.c.portfolio_id == accounts.c.portfolio_id, account_config.c.account_id == accounts.c.id),
    )
    for name, kind, buffer_bps, template, overrides in conn.execute(q):
        want = effective_rules(template, AccountKind(kind), json.loads(overrides)).buffer_bps
        if buffer_bps != want:
            yield Finding(
                "buffer_config",
                f"account {name} enforces a {buffer_bps} bps buffer but is configured for {want}",
                "accounts",
            )


def position_marks(ctx: Context) -> Iterator[Finding]:
    """Each position is valued at a price the record holds: a fill or a mark of its instrument on
    the position's `marked_on` date."""
    conn, p = ctx.conn, positions.c
    facts = {
        (iid, d, price)
        for iid, d, price in conn.execute(sa.select(fills.c.instrument_id, fills.c.trade_date, fills.c.price_e4))
    }
    facts |= {
        (iid, d, price)
        for iid, d, price in conn.execute(sa.select(marks.c.instrument_id, marks.c.as_of, marks.c.price_e4))
    }
    # Shares delivered by an assignment or exercise are valued at the option's strike on that day.
    opt, stock = instruments.alias("opt"), instruments.alias("stock")
    delivered = (
        sa.select(stock.c.id, fills.c.trade_date, opt.c.strike_e4)
        .join(opt, sa.and_(opt.c.portfolio_id == fills.c.portfolio_id, opt.c.id == fills.c.instrument_id))
        .join(stock, sa.and_(stock.c.portfolio_id == opt.c.portfolio_id, stock.c.symbol == opt.c.underlying))
        .where(opt.c.kind == "OPTION", stock.c.kind == "STOCK")
    )
    facts |= {(iid, d, price) for iid, d, price in conn.execute(delivered)}
    for pos_id, iid, mark, on in conn.execute(sa.select(p.id, p.instrument_id, p.mark_e4, p.marked_on)):
        if (iid, on, mark) not in facts:
            yield Finding(
                "position_marks",
                f"positions row {pos_id} is valued at {mark} on {on}, which no fill or mark of instrument #{iid} records",
                "positions",
                str(pos_id),
            )


_ENTRY_COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "idempotency_key",
    "input_digest",
    "result",
    "override_reason",
    "prev_hash",
    "hash",
    "key_id",
    "rows",
)


def _chain_label(chain: str) -> str:
    return "the system audit chain" if chain == SYSTEM else f"audit log of portfolio {chain}"


def audit_chain(ctx: Context) -> Iterator[Finding]:
    """Every chain, entry by entry: numbered without gaps, linked to the one before, MAC'd with a known
    audit key; each portfolio's recorded head is its last entry; every head the caller kept
    (`--expect-head`) is still in its chain. Collects the row manifests for `recorded_rows`."""
    conn = ctx.conn
    heads = {
        str(pid): (seq, head)
        for pid, seq, head in conn.execute(sa.select(portfolios.c.id, portfolios.c.audit_seq, portfolios.c.audit_head))
    }
    al = audit_log.c
    pids = {int(p) for p in heads} | set(conn.execute(sa.select(al.portfolio_id).distinct()).scalars())
    chains = [
        (str(pid), sa.select(*[al[c] for c in _ENTRY_COLUMNS]).where(al.portfolio_id == pid).order_by(al.seq))
        for pid in sorted(pids)
    ]
    sealed = set(conn.execute(sa.select(audit_keys.c.key_id)).scalars())
    signed_with: set[str] = set()
    sa_ = system_audit.c
    chains.append((SYSTEM, sa.select(*[sa_[c] for c in _ENTRY_COLUMNS]).order_by(sa_.seq)))
    expected = {h.chain: h for h in ctx.expect}
    for h in ctx.expect:
        if h.chain != SYSTEM and h.chain not in heads:
            yield Finding(
                "audit_chain", f"expected head {h.token()}: portfolio {h.chain} is gone", "portfolios", h.chain
            )
    n = 0
    for chain, q in chains:
        seq, prev = 0, GENESIS
        label = _chain_label(chain)
        where = "system_audit" if chain == SYSTEM else "audit_log"
        want = expected.get(chain)
        keys = ctx.keys
        # The results of the entries since the last one that carried a manifest: the entries of that
        # manifest's unit of work, whose outbox rows it may write as references to them.
        results: dict[int, str] = {}
        for row in conn.execute(q).yield_per(5000):
            r_seq, at, actor, action, ikey, idigest, result, reason, prev_hash, mac, key_id, rows = row
            n += 1
            if r_seq != seq + 1:
                yield Finding("audit_chain", f"{label}: entry {seq + 1} is missing", where, f"{chain}#{seq + 1}")
            if prev_hash != prev:
                yield Finding(
                    "audit_chain", f"{label}: entry {r_seq} does not chain to the one before", where, f"{chain}#{r_seq}"
                )
            at_text = timestamp_text(at)
            fields = (r_seq, at_text, actor, action, ikey, idigest, result, reason)
            if key_id is None:
                # Written before revision 0006_audit: a plain hash anyone can recompute.
                ok = entry_hash(prev_hash, *fields) == mac
                yield Finding(
                    "audit_chain",
                    f"{label}: entry {r_seq} is not keyed (written before the keyed chain)",
                    where,
                    f"{chain}#{r_seq}",
                )
            elif key_id not in keys:
                ok = True
                signed_with.add(key_id)
                yield Finding(
                    "audit_chain",
                    f"{label}: entry {r_seq} is signed with audit key {key_id}, which "
                    "neither the keyring nor audit_keys holds",
                    where,
                    f"{chain}#{r_seq}",
                )
            else:
                signed_with.add(key_id)
                ok = entry_mac(keys[key_id], key_id, prev_hash, *fields, rows) == mac
            if not ok:
                yield Finding("audit_chain", f"{label}: entry {r_seq} was altered", where, f"{chain}#{r_seq}")
            if want is not None and r_seq == want.seq and mac != want.mac:
                yield Finding(
                    "audit_chain",
                    f"{label}: entry {r_seq} is not the entry of the expected head {want.token()} "
                    "(the chain was rewritten)",
                    where,
                    f"{chain}#{r_seq}",
                )
            results[r_seq] = result
            if rows:
                _collect(ctx, chain, r_seq, at_text, rows, results)
                results = {}
            seq, prev = r_seq, mac
        if chain != SYSTEM and chain not in heads:
            yield Finding("audit_chain", f"{label} holds entries, but there is no portfolio {chain}", where, chain)
        elif chain != SYSTEM and (seq, prev) != heads[chain]:
            yield Finding(
                "audit_chain",
                f"{label} ends at entry {seq}, but the portfolio records {heads[chain][0]} entries "
                "(entries deleted, or the head rewound?)",
                "portfolios",
                chain,
            )
        if want is not None and seq < want.seq:
            yield Finding(
                "audit_chain",
                f"{label} ends at entry {seq}, before the expected head {want.token()} (the chain was truncated)",
                where,
                f"{chain}#{want.seq}",
            )
        if seq:
            ctx.heads.append(Head(chain, seq, prev))
    for key_id in sorted(signed_with - sealed):
        # The key is still in the keyring, but a rotation would lose it: its row was removed.
        yield Finding(
            "audit_chain", f"audit key {key_id} signed entries but is not sealed in audit_keys", "audit_keys", key_id
        )
    ctx.counts["audit_entries"] = n


def _collect(ctx: Context, chain: str, seq: int, at_text: str, rows_text: str, results: dict[int, str]) -> None:
    """Fold one entry's manifest into the latest record per row: (image, chain, seq, at). A row of a
    portfolio's table is written by one chain only, in sequence order; a global row (users, API keys)
    by whichever entry is newest. `results`: the results of the entries of the manifest's unit of work."""
    for table, rows in json.loads(rows_text).items():
        keys, images = rowlog.table_rows(rows, results)
        recorded = ctx.recorded.setdefault(table, {})
        for key, image in zip(keys, images, strict=True):
            k = tuple(key) if type(key) is list else key
            old = recorded.get(k)
            if old is None or old[1] == chain or at_text >= old[3]:
                recorded[k] = (image, chain, seq, at_text)


def _row_text(k: object) -> str:
    return ",".join(str(v) for v in k) if isinstance(k, tuple) else str(k)


def recorded_rows(ctx: Context) -> Iterator[Finding]:
    """Every row of every covered table is the row the audit chain last recorded for its key: none
    added, edited or removed behind the chain's back (store/rowlog.py says what is covered)."""
    conn = ctx.conn
    total = 0
    for table in rowlog.covered_tables():
        shape = rowlog.shape(table)
        recorded = ctx.recorded.pop(table.name, {})
        for row in conn.execute(sa.select(*shape.columns)).yield_per(10000):
            total += 1
            k, image = shape.from_row(row)
            rec = recorded.pop(k, None)
            if rec is not None and rec[0] == image:
                continue
            where = _row_text(k)
            if rec is None:
                message = f"{table.name} row {where} was not written through the audit chain (inserted directly?)"
            elif rec[0] is None:
                message = f"{table.name} row {where} was deleted by {_chain_label(rec[1])} entry {rec[2]} but is there"
            else:
                message = f"{table.name} row {where} differs from what {_chain_label(rec[1])} entry {rec[2]} recorded (edited?)"
            yield Finding("recorded_rows", message, table.name, where)
        for k, (image, chain, seq, _at) in recorded.items():
            if image is not None:
                yield Finding(
                    "recorded_rows",
                    f"{table.name} row {_row_text(k)} written by {_chain_label(chain)} entry {seq} is missing (deleted?)",
                    table.name,
                    _row_text(k),
                )
    for name in ctx.recorded:
        yield Finding("recorded_rows", f"the audit chain records rows of {name}, which is not a covered table", name)
    ctx.counts["rows"] = total


def event_sequence(ctx: Context) -> Iterator[Finding]:
    """Each portfolio's outbox numbers its events 1, 2, 3 … with no gap, and its recorded last number
    is the last event's."""
    e = events.c
    last = dict(ctx.conn.execute(sa.select(e.portfolio_id, sa.func.max(e.seq)).group_by(e.portfolio_id)).all())
    counted: dict[int, int] = dict(
        ctx.conn.execute(sa.select(e.portfolio_id, sa.func.count()).group_by(e.portfolio_id)).all()
    )
    for pid, recorded in ctx.conn.execute(sa.select(portfolios.c.id, portfolios.c.event_seq)):
        if recorded != (last.get(pid) or 0) or counted.get(pid, 0) != (last.get(pid) or 0):
            yield Finding(
                "event_sequence",
                f"portfolio {pid} records {recorded} outbox events, but holds {counted.get(pid, 0)} numbered up to "
                f"{last.get(pid) or 0}",
                "portfolios",
                str(pid),
            )


CHECKS: tuple[Check, ...] = (
    audit_chain,
    recorded_rows,
    ledger,
    positions_and_lots,
    position_marks,
    brokerage_mapping,
    earmark_totals,
    buffer_config,
    event_sequence,
)


def verify_audit(engine: Engine, keyring: Keyring | None = None) -> VerifyReport:
    """The audit-chain part of `verify` on its own (`alluse audit verify`)."""
    if keyring is None:
        keyring = load_keyring(get_settings(), create=False)
    report = VerifyReport()
    with engine.connect() as conn:
        ctx = Context(conn, {}, report.counts)
        report.findings.extend(_load_keys(ctx, keyring))
        report.findings.extend(audit_chain(ctx))
        report.heads = ctx.heads
    return report


class AuditEntry(TypedDict):
    """One entry of a portfolio's audit chain, its result read back from the stored JSON."""

    seq: int
    at: datetime
    actor: str
    action: str
    idempotency_key: str
    result: dict[str, object]
    override_reason: str | None
    hash: str


def audit_entries(engine: Engine, portfolio_id: int, after: int = 0, limit: int = 100) -> list[AuditEntry]:
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
            {
                "seq": r.seq,
                "at": r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
                "actor": r.actor,
                "action": r.action,
                "idempotency_key": r.idempotency_key,
                "result": json.loads(r.result),
                "override_reason": r.override_reason,
                "hash": r.hash,
            }
            for r in conn.execute(q)
        ]
