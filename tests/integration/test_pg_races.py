"""The buffer rule under concurrency, on PostgreSQL: 8 processes × 500 withdrawals and transfers
against the same accounts at once."""

from __future__ import annotations

import multiprocessing as mp
import random
from collections import defaultdict

import pytest
import sqlalchemy as sa

from alluse.domain.accounts import AccountKind, CashSnapshot
from alluse.domain.errors import RuleViolation
from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.services.verify import verify
from alluse.store.schema import accounts, audit_log, postings, transfers
from alluse.store.uow import Request, Tx, write

pytestmark = pytest.mark.postgres

PROCESSES = 8
OPS = 500


def _worker(url: str, proc: int, sources: list[str], barrier, out) -> None:  # type: ignore[no-untyped-def]
    from alluse.store.db import make_engine

    engine = make_engine(url)
    rng = random.Random(proc)
    accepted, refused, unexpected = [], [], []
    barrier.wait()
    for i in range(OPS):
        key = f"p{proc}-{i}"
        src = rng.choice(sources)
        amount = rng.randrange(1_00, 400_00)
        if rng.random() < 0.5:
            move = cash.withdrawal(src, amount)
        else:
            move = cash.transfer(src, rng.choice([s for s in sources if s != src]), amount)
        try:
            cash.move_cash(engine, f"race-{proc}", "race", [(key, move)])
            accepted.append(key)
        except RuleViolation:
            refused.append(key)
        except Exception as exc:  # noqa: BLE001 — anything else reaching the caller is the failure we look for
            unexpected.append(f"{key}: {type(exc).__name__}: {exc}")
    engine.dispose()
    out.put((accepted, refused, unexpected))


def test_eight_processes_never_breach_the_buffer(pg: sa.Engine, pg_app_engine: sa.Engine) -> None:
    create_portfolio(pg, "t", "race", "k:race")
    groups.open_groups(pg, "t", "race", [(f"g{i}", groups.group_opening(5_000_000)) for i in range(2)])
    # Gen-Acc and Rev-Acc may send cash out; Com-Acc may not (ALLUSE_RULES), so it is left out.
    sources = ["A1-GEN", "A1-REV", "A2-GEN", "A2-REV"]
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
    # The clients connect as the application's own role, as production does (row-level security on).
    url = pg_app_engine.url.render_as_string(hide_password=False)
    procs = [ctx.Process(target=_worker, args=(url, p, sources, barrier, out)) for p in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    accepted = {k for a, _, _ in results for k in a}
    refused = {k for _, r, _ in results for k in r}
    unexpected = [u for _, _, u in results for u in u]

    assert unexpected == []
    assert len(accepted) + len(refused) == PROCESSES * OPS
    # The funds run out well before the end: the rule was exercised at the boundary, under contention.
    assert len(accepted) > 500 and len(refused) > 500

    with pg.connect() as conn:
        # Conservation: every transfer balances, so the whole journal sums to zero.
        assert conn.execute(sa.select(sa.func.sum(postings.c.amount_cents))).scalar_one() == 0
        unbalanced = conn.execute(
            sa.select(postings.c.transfer_id)
            .group_by(postings.c.transfer_id)
            .having(sa.func.sum(postings.c.amount_cents) != 0)
        ).all()
        assert unbalanced == []
        # Refused operations left no trace: the audit log holds exactly the accepted keys (plus setup).
        keys = set(conn.execute(sa.select(audit_log.c.idempotency_key)).scalars())
        race_keys = {k for k in keys if k.startswith("p") and "-" in k}
        assert race_keys == accepted
        assert not (keys & refused)
        moves = conn.execute(
            sa.select(sa.func.count()).select_from(transfers).where(transfers.c.kind.in_(["WITHDRAWAL", "TRANSFER"]))
        ).scalar_one()
        assert moves == len(accepted)

        # Replay the journal in commit order (the audit sequence) and check every committed state:
        # no sleeve ever had negative deployable cash.
        info = {
            r.id: r
            for r in conn.execute(
                sa.select(
                    accounts.c.id,
                    accounts.c.kind,
                    accounts.c.name,
                    accounts.c.buffer_bps,
                    accounts.c.cash_cents,
                    accounts.c.positions_value_cents,
                    accounts.c.collateral_cents,
                    accounts.c.earmarked_cents,
                )
            )
        }
        legs = conn.execute(
            sa.select(transfers.c.audit_seq, postings.c.account_id, postings.c.amount_cents)
            .join(
                transfers,
                (transfers.c.portfolio_id == postings.c.portfolio_id) & (transfers.c.id == postings.c.transfer_id),
            )
            .order_by(transfers.c.audit_seq, postings.c.id)
        ).all()
    by_seq: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for seq, aid, amount in legs:
        by_seq[seq].append((aid, amount))
    balance: dict[int, int] = defaultdict(int)
    worst = 0
    for seq in sorted(by_seq):
        for aid, amount in by_seq[seq]:
            balance[aid] += amount
        for aid, _ in by_seq[seq]:
            a = info[aid]
            if a.kind == "EXT":
                continue
            snap = CashSnapshot(
                a.name,
                AccountKind(a.kind),
                balance[aid],
                a.positions_value_cents,
                a.collateral_cents,
                a.earmarked_cents,
                a.buffer_bps,
            )
            worst = min(worst, snap.deployable_cash)
    assert worst >= 0
    # The replay ends where the cached balances are.
    assert all(balance[aid] == a.cash_cents for aid, a in info.items())
    assert verify(pg).ok


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_transient_conflicts_are_retried_not_surfaced(pg: sa.Engine, sqlstate: str) -> None:
    """A real serialization failure / deadlock raised by the server on the first attempt: the unit of
    work rolls back, retries, and the caller sees one success with one audit entry."""
    create_portfolio(pg, "t", "main", "k:main")
    attempts = []

    def apply(tx: Tx, fresh: list[Request]) -> list[dict]:
        attempts.append(1)
        if len(attempts) == 1:
            tx.conn.exec_driver_sql(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$")
        return [{"ok": True}]

    result = write(pg, "main", "t", "test.retry", [Request("once", {"x": 1})], apply)
    assert result == [{"ok": True}] and len(attempts) == 2
    with pg.connect() as conn:
        n = conn.execute(
            sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.idempotency_key == "once")
        ).scalar_one()
    assert n == 1
