"""A big COPY goes in from a thread of its own while the unit of work goes on (store/prepared.behind).
Whatever comes next on the connection waits for it and gets its error; above all COMMIT, which after a
failed COPY would otherwise end the transaction without an error, having written nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.services.verify import verify
from alluse.store import prepared
from alluse.store.prepared import BEHIND_ROWS, copy_rows
from alluse.store.schema import accounts

_PROBE = sa.MetaData()
_TABLE = sa.Table("copy_behind_probe", _PROBE, sa.Column("n", sa.Integer, primary_key=True), sa.Column("v", sa.Text))
_COLUMNS = ["n", "v"]


@pytest.fixture
def probe(pg: sa.Engine) -> sa.Engine:
    _PROBE.drop_all(pg)
    _PROBE.create_all(pg)
    yield pg
    _PROBE.drop_all(pg)


def _rows(n: int, duplicate: bool = False) -> list[tuple[int, str]]:
    rows = [(i, f"row {i}") for i in range(n)]
    return [*rows, rows[-1]] if duplicate else rows


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(_TABLE)).scalar_one())


def test_a_big_copy_is_in_for_the_next_statement_and_the_commit(probe: sa.Engine) -> None:
    with probe.connect() as conn, conn.begin():
        copy_rows(conn, _TABLE, _rows(BEHIND_ROWS), _COLUMNS)
        assert prepared._BEHIND  # handed over, not sent yet perhaps
        assert conn.execute(sa.select(sa.func.count()).select_from(_TABLE)).scalar_one() == BEHIND_ROWS
    assert not prepared._BEHIND
    assert _count(probe) == BEHIND_ROWS


def test_copies_behind_go_in_in_order(probe: sa.Engine) -> None:
    """The second COPY's rows come after the first one's: it is sent once the first one is in."""
    with probe.connect() as conn, conn.begin():
        copy_rows(conn, _TABLE, _rows(BEHIND_ROWS), _COLUMNS)
        copy_rows(conn, _TABLE, [(BEHIND_ROWS + i, "second") for i in range(BEHIND_ROWS)], _COLUMNS)
        copy_rows(conn, _TABLE, [(-1, "small, sent at once")], _COLUMNS)
    assert _count(probe) == 2 * BEHIND_ROWS + 1


def test_a_failed_copy_fails_the_next_statement_with_its_own_error(probe: sa.Engine) -> None:
    with probe.connect() as conn, conn.begin():
        copy_rows(conn, _TABLE, _rows(BEHIND_ROWS, duplicate=True), _COLUMNS)
        with pytest.raises(sa.exc.IntegrityError, match="copy_behind_probe_pkey") as raised:
            conn.execute(sa.select(sa.func.count()).select_from(_TABLE))
        assert "COPY copy_behind_probe" in str(raised.value)
        conn.rollback()
    assert _count(probe) == 0


def test_a_commit_after_a_failed_copy_raises_and_writes_nothing(probe: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="copy_behind_probe_pkey"):
        with probe.connect() as conn, conn.begin():
            copy_rows(conn, _TABLE, _rows(BEHIND_ROWS), _COLUMNS)
            copy_rows(conn, _TABLE, _rows(BEHIND_ROWS), _COLUMNS)  # every key again
    assert _count(probe) == 0
    assert not prepared._BEHIND


def test_a_rollback_waits_for_the_copy_and_undoes_it(probe: sa.Engine) -> None:
    with probe.connect() as conn:
        conn.begin()
        copy_rows(conn, _TABLE, _rows(BEHIND_ROWS, duplicate=True), _COLUMNS)
        conn.rollback()  # no error: the rollback undoes the COPY, failed or not
        assert conn.execute(sa.select(sa.func.count()).select_from(_TABLE)).scalar_one() == 0
    assert not prepared._BEHIND


def _journal(engine: sa.Engine, gens: list[int]) -> tuple[int, int, int]:
    """The postings' sum and count, and the Gen-Accs' cash."""
    with engine.connect() as conn:
        total, n = conn.execute(sa.text("SELECT coalesce(sum(amount_cents), 0), count(*) FROM postings")).one()
        gen_cash = conn.execute(
            sa.select(sa.func.sum(accounts.c.cash_cents)).where(accounts.c.id.in_(gens))
        ).scalar_one()
    return int(total), int(n), int(gen_cash)


def test_a_bulk_move_with_its_journal_copied_behind_conserves_every_cent(pg: sa.Engine) -> None:
    create_portfolio(pg, "t", "behind", "t:behind")
    opened = groups.open_groups(pg, "t", "behind", [(f"g{i}", groups.group_opening(10_000_000)) for i in range(20)])
    gens = [g["accounts"]["GEN"]["account_id"] for g in opened]
    _, before, gen_cash = _journal(pg, gens)
    # A move is a transfer and two postings: the journal's rows are copied from a thread.
    moves = [
        (
            f"m{i}",
            cash.deposit(gens[i % 20], 1_000 + i, group=False) if i % 2 == 0 else cash.withdrawal(gens[i % 20], 999),
        )
        for i in range(BEHIND_ROWS)
    ]
    assert len(cash.move_cash(pg, "t", "behind", moves)) == BEHIND_ROWS
    total, after, gen_cash_after = _journal(pg, gens)
    assert total == 0 and after == before + 2 * BEHIND_ROWS
    assert gen_cash_after - gen_cash == sum(1_000 + i for i in range(0, BEHIND_ROWS, 2)) - 999 * (BEHIND_ROWS // 2)
    assert verify(pg).ok
    # The same keys again: every move replayed, nothing written twice.
    assert all(r.get("replayed") for r in cash.move_cash(pg, "t", "behind", moves))
    assert _journal(pg, gens)[1] == after
