"""A unit of work of one request reads less than a batch does (its portfolio found by the head read,
its ids and figures read together); what it writes and what it refuses stay the same."""

import pytest
import sqlalchemy as sa

from alluse.domain.errors import Conflict, NotFound
from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.services.verify import verify
from alluse.store.schema import audit_log, transfers


def test_a_portfolio_named_by_name_is_the_one_written_to_and_replayed(engine: sa.Engine) -> None:
    create_portfolio(engine, "t", "first", "k:first")
    create_portfolio(engine, "t", "second", "k:second")
    g = groups.open_group(engine, "t", " second ", "g1", groups.group_opening(100_000_00))
    gen = g["accounts"]["GEN"]["account_id"]
    moved = cash.move_cash(engine, "t", "second", [("d1", cash.deposit(gen, 1_000, group=False))])[0]
    again = cash.move_cash(engine, "t", "second", [("d1", cash.deposit(gen, 1_000, group=False))])[0]
    assert again == {**moved, "replayed": True}
    # The same key in the other portfolio is another request: its account is not there.
    with pytest.raises(NotFound):
        cash.move_cash(engine, "t", "first", [("d1", cash.deposit(gen, 1_000, group=False))])
    with engine.connect() as conn:
        owners = conn.execute(sa.select(audit_log.c.portfolio_id, audit_log.c.idempotency_key)).all()
        second = conn.execute(sa.text("SELECT id FROM portfolios WHERE name = 'second'")).scalar_one()
        assert {pid for pid, key in owners if key in ("g1", "d1")} == {second}
        assert conn.execute(sa.select(sa.func.count()).select_from(transfers)).scalar_one() == 2


def test_a_portfolio_not_found_by_name_is_the_lookup_s_own_error(engine: sa.Engine) -> None:
    create_portfolio(engine, "t", "main", "k:main")
    with pytest.raises(NotFound, match="did you mean main"):
        groups.open_group(engine, "t", "mian", "g1", groups.group_opening(100_000_00))
    # By id, as a number or as its text, the portfolio is found as before.
    with engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT id FROM portfolios WHERE name = 'main'")).scalar_one()
    assert groups.open_group(engine, "t", str(pid), "g1", groups.group_opening(100_000_00))["name"] == "A1"
    assert groups.open_group(engine, "t", pid, "g2", groups.group_opening(100_000_00))["name"] == "A2"


def test_one_opening_s_name_is_checked_with_the_defaults(engine: sa.Engine, portfolio: str) -> None:
    assert groups.open_group(engine, "t", portfolio, "g1", groups.group_opening(100_000_00, name="a2"))["name"] == "A2"
    # The next number's name is taken: the one after it.
    assert groups.open_group(engine, "t", portfolio, "g2", groups.group_opening(100_000_00))["name"] == "A3"
    with pytest.raises(Conflict, match="group name A3 is already in use"):
        groups.open_group(engine, "t", portfolio, "g3", groups.group_opening(100_000_00, name="A3"))
    opened = groups.open_groups(engine, "t", portfolio, [(k, groups.group_opening(100_000_00)) for k in ("g4", "g5")])
    assert [g["name"] for g in opened] == ["A4", "A5"]
    assert groups.open_group(engine, "t", portfolio, "g6", groups.group_opening(100_000_00, name="B1"))["name"] == "B1"
    assert verify(engine).ok
