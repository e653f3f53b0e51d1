"""The broker adapter protocol: what alluse asks of a broker, whichever it is.

A broker may be a statement source (alluse reads what happened: IBKR's Flex Web Service) and an order
sink (alluse sends an order and books the execution: the paper broker). Adapters are thin: they speak
the broker's protocol and hand back facts; booking stays in `services/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from alluse.domain.instruments import Instrument


class StatementSource(Protocol):
    def statement(self) -> bytes:
        """The broker's statement document (IBKR: Flex Query XML)."""
        ...


@dataclass(frozen=True, slots=True)
class Order:
    """An order that passed the pre-trade check. `reference_e4`: the latest mark, the price the paper
    broker fills at (a live broker would take it as the limit)."""

    action: str  # BTO, STO, BTC, STC
    instrument: Instrument
    quantity: int
    reference_e4: int


@dataclass(frozen=True, slots=True)
class Execution:
    price_e4: int
    commission_cents: int


class OrderSink(Protocol):
    @property
    def name(self) -> str: ...

    def place(self, order: Order) -> Execution: ...
