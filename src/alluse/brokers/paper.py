"""The built-in paper broker: an order sink that fills every order at once, in full, at the latest
mark, charging a configurable commission per option contract or per share."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from alluse.brokers.base import Execution, Order, OrderSink
from alluse.brokers.refs import PAPER
from alluse.domain.errors import InvalidInput
from alluse.domain.money import to_cents


def _rate(text: str, name: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"{name} must be a decimal amount, got {text!r}") from None
    if not d.is_finite() or d < 0:
        raise InvalidInput(f"{name} must be a non-negative amount, got {text!r}")
    return d


@dataclass(frozen=True)
class PaperBroker:
    per_contract: Decimal
    per_share: Decimal
    name: str = PAPER

    @classmethod
    def from_settings(cls, per_contract: str, per_share: str) -> PaperBroker:
        return cls(
            _rate(per_contract, "ALLUSE_PAPER_COMMISSION_PER_CONTRACT"),
            _rate(per_share, "ALLUSE_PAPER_COMMISSION_PER_SHARE"),
        )

    def place(self, order: Order) -> Execution:
        rate = self.per_contract if order.instrument.is_option else self.per_share
        # Commissions round half-even to cents at money.to_cents, the one rounding point.
        return Execution(order.reference_e4, to_cents(rate * order.quantity))


def order_sink(broker: str, per_contract: str, per_share: str) -> OrderSink:
    """The order sink of an account's broker. Only the paper broker takes orders."""
    if broker == PAPER:
        return PaperBroker.from_settings(per_contract, per_share)
    raise NotImplementedError(
        f"live {broker} orders are not built: place the order at {broker} and import its statement "
        "(see docs/brokers.md)"
    )
