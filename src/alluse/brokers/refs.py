"""How a user names a brokerage account: BROKER:NUMBER, e.g. IBKR:U1234567."""

from __future__ import annotations

import re
from dataclasses import dataclass

from alluse.domain.errors import InvalidInput

PAPER = "PAPER"
_REF = re.compile(r"^(?P<broker>[A-Za-z][A-Za-z0-9]{1,19}):(?P<number>[A-Za-z0-9][A-Za-z0-9_-]{0,39})$")


@dataclass(frozen=True, slots=True)
class BrokerageRef:
    broker: str
    number: str

    def __str__(self) -> str:
        return f"{self.broker}:{self.number}"


def parse_brokerage_ref(text: str) -> BrokerageRef:
    m = _REF.match(text.strip())
    if not m:
        raise InvalidInput(f"brokerage account {text!r} must look like BROKER:NUMBER, e.g. IBKR:U1234567")
    return BrokerageRef(m["broker"].upper(), m["number"])


def paper_number(brokerage_id: int) -> str:
    """The built-in paper broker numbers its accounts after the row that records them."""
    return f"PA{brokerage_id:07d}"
