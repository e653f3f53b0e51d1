"""`verify` recomputes from the journal: every kind of tampering is caught."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from alluse.domain.lifecycle import EarmarkPurpose
from alluse.services.demo import build_demo
from alluse.services.groups import group_opening, open_group
from alluse.services.portfolios import create_portfolio
from alluse.services.verify import verify
from alluse.store.schema import accounts, audit_log, brokerage_accounts, earmarks, postings


@pytest.fixture
def demo(engine: sa.Engine) -> sa.Engine:
    lines = list(build_demo(engine, "t"))
    assert any("refused" in line for line in lines)
    report = verify(engine)
    assert report.ok, report.problems
    return engine


def _tamper(engine: sa.Engine, stmt: sa.Executable) -> list[str]:
    with engine.begin() as conn:
        conn.execute(stmt)
    return verify(engine).problems


def test_demo_is_idempotent(demo: sa.Engine) -> None:
    before = verify(demo).counts
    list(build_demo(demo, "t"))
    assert verify(demo).counts == before


def test_cached_cash_drift_is_caught(demo: sa.Engine) -> None:
    problems = _tamper(
        demo, accounts.update().where(accounts.c.name == "A1-GEN").values(cash_cents=accounts.c.cash_cents + 1)
    )
    assert any("A1-GEN" in p and "postings sum to" in p for p in problems)


def test_unbalanced_posting_is_caught(demo: sa.Engine) -> None:
    with demo.connect() as conn:  # ids are the database's to choose (Citus hands them out per node)
        some = conn.execute(sa.select(sa.func.min(postings.c.id))).scalar_one()
    problems = _tamper(
        demo, postings.update().where(postings.c.id == some).values(amount_cents=postings.c.amount_cents + 5)
    )
    assert any("unbalanced by 5 cents" in p for p in problems)
    assert any("postings sum to 5 cents" in p for p in problems)


def test_edited_and_deleted_audit_entries_are_caught(demo: sa.Engine) -> None:
    problems = _tamper(demo, audit_log.update().where(audit_log.c.seq == 3).values(result='{"forged":true}'))
    assert any("entry 3 was altered" in p for p in problems)
    problems = _tamper(demo, audit_log.delete().where(audit_log.c.seq == 5))
    assert any("entry 5 is missing" in p for p in problems)


def test_truncated_audit_tail_is_caught(demo: sa.Engine) -> None:
    with demo.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(audit_log.c.seq))).scalar_one()
    problems = _tamper(demo, audit_log.delete().where(audit_log.c.seq == last))
    assert any("entries deleted" in p for p in problems)


def test_broken_brokerage_mapping_is_caught(demo: sa.Engine) -> None:
    with demo.connect() as conn:
        gen = conn.execute(sa.select(accounts.c.id).where(accounts.c.name == "A2-GEN")).scalar_one()
    problems = _tamper(
        demo, brokerage_accounts.update().where(brokerage_accounts.c.account_id == gen).values(account_id=None)
    )
    assert any("A2-GEN maps to 0 brokerage accounts" in p for p in problems)


def test_an_overdrawn_earmark_is_caught_beside_a_same_named_account_of_another_portfolio(demo: sa.Engine) -> None:
    create_portfolio(demo, "t", "other", "other:portfolio", "moderate")
    open_group(demo, "t", "other", "other:A1", group_opening(1_000_000))
    with demo.begin() as conn:
        a = accounts.c
        rows = conn.execute(sa.select(a.portfolio_id, a.id).where(a.name == "A1-GEN").order_by(a.portfolio_id)).all()
        assert len(rows) == 2  # the same name in both portfolios
        for (pid, aid), amount in zip(rows, (-100, 100), strict=True):
            conn.execute(
                earmarks.insert().values(
                    id=10_000_000 + aid,
                    portfolio_id=pid,
                    account_id=aid,
                    purpose=EarmarkPurpose.TAX_RESERVE.value,
                    amount_cents=amount,
                    audit_seq=0,
                    created_at=datetime.now(UTC),
                )
            )
    problems = verify(demo).problems
    assert any("A1-GEN has drawn its TAX_RESERVE earmark below zero (-100)" in p for p in problems), problems
