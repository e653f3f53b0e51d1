"""Opening groups: the §4 worked example to the cent, brokerage mapping, idempotency."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from alluse.domain.errors import Conflict, InvalidInput, NotFound
from alluse.services import brokers, groups
from alluse.services.verify import verify
from alluse.store.schema import audit_log, brokerage_accounts, postings
from alluse.views.accounts import account_tree
from alluse.views.brokers import list_brokerage


def _accounts(engine: sa.Engine, portfolio: str) -> dict[str, dict]:
    return {a["name"]: a for g in account_tree(engine, portfolio)["groups"] for a in g["accounts"]}


def test_worked_example_250k_to_the_cent(engine: sa.Engine, portfolio: str) -> None:
    r = groups.open_group(engine, "t", portfolio, "k1", groups.group_opening(25_000_000))
    assert r["name"] == "A1"
    acc = _accounts(engine, portfolio)
    expected = {
        "A1-GEN": (10_000_000, 500_000, 9_500_000),
        "A1-REV": (7_500_000, 375_000, 7_125_000),
        "A1-COM": (7_500_000, 375_000, 7_125_000),
    }
    for name, (cash, buffer, deployable) in expected.items():
        assert (acc[name]["cash_cents"], acc[name]["cash_buffer_cents"], acc[name]["deployable_cents"]) == (
            cash,
            buffer,
            deployable,
        )
        assert acc[name]["base_capital_cents"] == cash
    assert sum(a["cash_buffer_cents"] for a in acc.values()) == 1_250_000
    assert sum(a["deployable_cents"] for a in acc.values()) == 23_750_000
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(postings.c.amount_cents))).scalar_one() == 0
    assert verify(engine).ok


def test_named_brokerage_accounts_map_one_to_one(engine: sa.Engine, portfolio: str) -> None:
    refs = ["IBKR:U1000001", "IBKR:U1000002", "IBKR:U1000003"]
    r = groups.open_group(engine, "t", portfolio, "k1", groups.group_opening(1_000_000, refs))
    assert [r["accounts"][k]["brokerage_account"] for k in ("GEN", "REV", "COM")] == refs
    with pytest.raises(Conflict, match="IBKR:U1000002 is already mapped to Rev-Acc A1-REV"):
        groups.open_group(
            engine, "t", portfolio, "k2", groups.group_opening(1_000_000, ["IBKR:U1", "IBKR:U1000002", "IBKR:U3"])
        )
    # The refused opening left nothing behind: not even the brokerage accounts it would have registered.
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(brokerage_accounts)).scalar_one() == 3
    assert len(account_tree(engine, portfolio)["groups"]) == 1


def test_pool_accounts_are_used_when_named(engine: sa.Engine, portfolio: str) -> None:
    brokers.register(engine, "t", portfolio, ["IBKR:U7", "IBKR:U8", "IBKR:U9", "IBKR:U10"], "pool")
    groups.open_group(engine, "t", portfolio, "k1", groups.group_opening(1_000_000, ["IBKR:U7", "IBKR:U8", "IBKR:U9"]))
    listing = {b["brokerage_account"]: b for b in list_brokerage(engine, portfolio)}
    assert listing["IBKR:U10"]["status"] == "POOL" and listing["IBKR:U10"]["mapped_to"] is None
    assert listing["IBKR:U7"]["mapped_to"] == "Gen-Acc A1-GEN"
    with pytest.raises(Conflict, match="already registered"):
        brokers.register(engine, "t", portfolio, ["IBKR:U10"], "pool2")


def test_paper_accounts_are_created_on_demand(engine: sa.Engine, portfolio: str) -> None:
    r = groups.open_group(engine, "t", portfolio, "k1", groups.group_opening(1_000_000))
    assert all(a["brokerage_account"].startswith("PAPER:PA") for a in r["accounts"].values())
    assert verify(engine).ok
    # A paper-broker account is never named into being (its number comes from its id): naming one
    # that is not in this portfolio is refused, and nothing is written.
    with engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(brokerage_accounts)).scalar_one()
    with pytest.raises(InvalidInput, match="not in this portfolio's pool"):
        groups.open_group(
            engine, "t", portfolio, "k2", groups.group_opening(1_000_000, ["PAPER:PA9999999", "IBKR:U1", "IBKR:U2"])
        )
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(brokerage_accounts)).scalar_one() == before


def test_same_key_replays_and_different_input_conflicts(engine: sa.Engine, portfolio: str) -> None:
    first = groups.open_group(engine, "t", portfolio, "same", groups.group_opening(1_000_000))
    again = groups.open_group(engine, "t", portfolio, "same", groups.group_opening(1_000_000))
    assert again == {**first, "replayed": True}
    with pytest.raises(Conflict, match="already used for a different request"):
        groups.open_group(engine, "t", portfolio, "same", groups.group_opening(2_000_000))
    assert len(account_tree(engine, portfolio)["groups"]) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one() == 2  # portfolio + group


def test_custom_allocation_and_rounding_residue(engine: sa.Engine, portfolio: str) -> None:
    from alluse.services.configuration import parse_allocation

    r = groups.open_group(
        engine, "t", portfolio, "k", groups.group_opening(100_001, None, parse_allocation("33.33/33.33/33.34"))
    )
    split = {k: v["cash_cents"] for k, v in r["accounts"].items()}
    assert sum(split.values()) == 100_001
    assert split == {"GEN": 33_330, "REV": 33_330, "COM": 33_341}


@pytest.mark.parametrize(
    ("amount", "brokerage", "alloc", "error"),
    [
        (0, None, None, InvalidInput),
        (2, None, None, InvalidInput),  # too small to fund three sleeves
        (1_000, ["IBKR:U1"], None, InvalidInput),
        (1_000, ["IBKR:U1", "IBKR:U1", "IBKR:U2"], None, InvalidInput),
        (1_000, ["nonsense", "IBKR:U1", "IBKR:U2"], None, InvalidInput),
        (1_000, None, "50/50/0", InvalidInput),
        (1_000, None, "50/30/30", InvalidInput),
    ],
)
def test_bad_openings_are_refused(engine: sa.Engine, portfolio: str, amount, brokerage, alloc, error) -> None:
    from alluse.services.configuration import parse_allocation

    with pytest.raises(error):
        opening = groups.group_opening(amount, brokerage, parse_allocation(alloc) if alloc else None)
        groups.open_group(engine, "t", portfolio, "k", opening)
    assert account_tree(engine, portfolio)["groups"] == []


def test_unknown_portfolio(engine: sa.Engine) -> None:
    with pytest.raises(NotFound):
        groups.open_group(engine, "t", "nope", "k", groups.group_opening(1_000))
