"""The pure booking of broker facts against open lots, without a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from alluse.domain.accounts import AccountKind, AccountStatus
from alluse.domain.booking import Booking, Fill, FillAction, check_holds_positions, trade_date
from alluse.domain.errors import InvalidInput, RuleViolation
from alluse.domain.instruments import Instrument, option, stock
from alluse.domain.ledger import DIVIDENDS, FEES, MARKET, Leg, TransferKind
from alluse.domain.lots import Term

EXT = {MARKET: 901, FEES: 902, DIVIDENDS: 903}
PUT = option("AAPL", date(2027, 3, 19), "P", "180")
CALL = option("AAPL", date(2027, 3, 19), "C", "200")
SHARES = stock("AAPL")


@dataclass
class Sleeve:
    id: int = 1
    kind: AccountKind = AccountKind.REV
    name: str = "A1-REV"
    status: AccountStatus = AccountStatus.ACTIVE
    label: str = "A1 Rev-Acc"
    cash: int = 10_000_000
    positions_value: int = 0
    collateral: int = 0


class Desk:
    """A booking over one or two sleeves and the three instruments, every lot list loaded (empty)."""

    def __init__(self, *sleeves: Sleeve) -> None:
        self.b = Booking()
        self.ids = {PUT.symbol: 11, CALL.symbol: 12, SHARES.symbol: 13}
        for ins in (PUT, CALL, SHARES):
            self.b.add_instrument(self.ids[ins.symbol], ins)
        for acc in sleeves or (Sleeve(),):
            self.b.accounts[acc.id] = acc
            self.b.positions[acc.id] = {}
            for iid in self.ids.values():
                self.b.lots[(acc.id, iid)] = []
        self.next_fill = 0

    def acc(self, aid: int = 1) -> Sleeve:
        acc = self.b.accounts[aid]
        assert isinstance(acc, Sleeve)
        return acc

    def book(
        self,
        action: str,
        ins: Instrument | None,
        qty: int = 0,
        price: str = "0",
        on: date = date(2027, 1, 4),
        **kw: int,
    ) -> object:
        self.next_fill += 1
        f = Fill(1, FillAction(action), ins.symbol if ins else None, qty, price, trade_date=on, **kw)
        iid = self.ids[ins.symbol] if ins else None
        stock_iid = self.ids[SHARES.symbol] if action == "ASSIGN" else None
        return self.b.book(f, self.acc(), iid, on, self.next_fill, EXT, stock_iid)

    def quantity(self, ins: Instrument) -> int:
        return self.b.positions[1][self.ids[ins.symbol]].quantity


def test_a_sold_put_opens_a_short_lot_ties_up_collateral_and_posts_three_legs() -> None:
    d = Desk()
    b = d.book("STO", PUT, 2, "3.50", commission_cents=130)
    assert b.cash_cents == 70_000 - 130 and b.kind is TransferKind.TRADE
    assert b.legs == [Leg(1, 69_870), Leg(EXT[MARKET], -70_000), Leg(EXT[FEES], 130)]
    assert d.acc().cash == 10_000_000 + 69_870
    assert d.acc().collateral == 2 * 100 * 180_00
    assert d.quantity(PUT) == -2 and d.acc().positions_value == -70_000
    (lot,) = d.b.new_lots
    assert (lot.side, lot.remaining, lot.remaining_cash, lot.new) == ("SHORT", 2, 69_870, True)
    assert b.realized_cents == 0 and d.b.closes == []


def test_buying_back_closes_fifo_realizes_short_term_and_releases_collateral() -> None:
    d = Desk()
    d.book("STO", PUT, 1, "3.00", on=date(2026, 1, 5))
    d.book("STO", PUT, 1, "4.00", on=date(2026, 2, 2))
    b = d.book("BTC", PUT, 1, "1.00", on=date(2027, 3, 1), commission_cents=65)
    # The oldest lot (premium $300) closes first; short premium is short-term however long it was held.
    assert b.realized_cents == 30_000 - 10_000 - 65
    (close,) = d.b.closes
    assert close.lot.opened_on == date(2026, 1, 5) and close.term == Term.SHORT and close.realized
    assert d.acc().collateral == 180_00 * 100 and d.quantity(PUT) == -1
    assert [lot.remaining for lot in d.b.lots[(1, 11)]] == [1]


def test_long_shares_held_over_a_year_close_long_term() -> None:
    d = Desk()
    d.book("BTO", SHARES, 100, "150", on=date(2025, 1, 2))
    b = d.book("STC", SHARES, 100, "170", on=date(2026, 1, 5))
    assert b.realized_cents == 2_000_00 and d.b.closes[0].term == Term.LONG
    assert d.acc().positions_value == 0


def test_refusals_write_nothing_the_method_does_not_hold() -> None:
    d = Desk()
    with pytest.raises(RuleViolation, match="calls must be covered"):
        d.book("STO", CALL, 1, "2")
    with pytest.raises(RuleViolation, match="only options are sold to open"):
        d.book("STO", SHARES, 100, "150")
    with pytest.raises(RuleViolation, match="cannot close 1"):
        d.book("BTC", PUT, 1, "1")
    d.book("BTO", SHARES, 100, "150")
    d.book("STO", CALL, 1, "2")
    with pytest.raises(RuleViolation, match="would uncover short calls"):
        d.book("STC", SHARES, 50, "160")
    with pytest.raises(RuleViolation, match="held short"):
        d.book("BTO", CALL, 1, "2")


def test_an_expired_short_put_keeps_its_premium() -> None:
    d = Desk()
    d.book("STO", PUT, 1, "2.5")
    b = d.book("EXPIRE", PUT, 1, on=date(2027, 3, 19))
    assert b.cash_cents == 0 and b.legs == [] and b.realized_cents == 25_000
    assert d.acc().collateral == 0 and d.quantity(PUT) == 0


def test_an_assigned_put_buys_shares_with_the_premium_in_their_basis() -> None:
    d = Desk()
    d.book("STO", PUT, 1, "2.5")
    b = d.book("ASSIGN", PUT, 1, on=date(2027, 3, 19), commission_cents=100)
    assert b.kind is TransferKind.ASSIGNMENT and b.cash_cents == -18_000_00 - 100
    assert b.realized_cents == 0 and not d.b.closes[0].realized
    assert d.quantity(SHARES) == 100 and d.acc().collateral == 0
    share_lot = d.b.lots[(1, 13)][0]
    assert share_lot.remaining_cash == -18_000_00 - 100 + 25_000


def test_an_assigned_call_delivers_the_shares_and_realizes_premium_with_them() -> None:
    d = Desk()
    d.book("BTO", SHARES, 100, "150", on=date(2026, 6, 1))
    d.book("STO", CALL, 1, "3", on=date(2027, 1, 4))
    b = d.book("ASSIGN", CALL, 1, on=date(2027, 3, 19))
    # Proceeds at the strike plus the call's premium, less the shares' cost.
    assert b.cash_cents == 20_000_00 and b.realized_cents == 20_000_00 + 300_00 - 15_000_00
    assert d.quantity(SHARES) == 0 and d.quantity(CALL) == 0


def test_dividends_and_fees_post_against_their_counter_accounts() -> None:
    d = Desk()
    b = d.book("DIVIDEND", SHARES, amount_cents=5_000, commission_cents=10)
    assert b.kind is TransferKind.DIVIDEND
    assert b.legs == [Leg(1, 4_990), Leg(EXT[DIVIDENDS], -5_000), Leg(EXT[FEES], 10)]
    f = d.book("FEE", None, amount_cents=1_000)
    assert f.legs == [Leg(1, -1_000), Leg(EXT[FEES], 1_000)] and f.instrument_id is None
    assert d.b.ext_delta == {EXT[DIVIDENDS]: -5_000, EXT[FEES]: 1_010}


def test_lots_move_in_kind_with_their_dates_basis_and_collateral() -> None:
    src, dst = Sleeve(), Sleeve(id=2, name="A1-COM", label="A1 Com-Acc", kind=AccountKind.COM)
    d = Desk(src, dst)
    d.book("STO", PUT, 2, "3", on=date(2026, 1, 5))
    (moved,) = d.b.move_in_kind(src, dst, [11], date(2027, 1, 8), [50, 51])
    assert (moved.out_fill_id, moved.in_fill_id, moved.quantity, moved.lots) == (50, 51, 2, 1)
    (lot,) = d.b.lots[(2, 11)]
    assert (lot.opened_on, lot.remaining_cash, lot.fill_id) == (date(2026, 1, 5), 60_000, 51)
    assert src.collateral == 0 and dst.collateral == 2 * 180_00 * 100
    assert d.b.positions[2][11].quantity == -2 and d.b.positions[1][11].quantity == 0
    assert not d.b.closes[-1].realized
    with pytest.raises(InvalidInput, match="same account"):
        d.b.move_in_kind(src, src, [11], date(2027, 1, 8), [52, 53])


def test_an_expiry_without_a_date_happens_on_the_expiry_and_external_accounts_hold_nothing() -> None:
    assert trade_date(Fill(1, FillAction.EXPIRE, PUT.symbol, 1), PUT) == date(2027, 3, 19)
    with pytest.raises(InvalidInput, match="needs a trade date"):
        trade_date(Fill(1, FillAction.BTO, SHARES.symbol, 1, "1"), SHARES)
    with pytest.raises(InvalidInput, match="external counter-account"):
        check_holds_positions(Sleeve(kind=AccountKind.EXT, name="ext:market"))
    with pytest.raises(InvalidInput, match="holds no positions"):
        check_holds_positions(Sleeve(status=AccountStatus.CLOSED))
