"""Request and response bodies, at the edge only: services take and return plain values.

One module per router (`schemas/<router>.py`, the bodies of `routers/<router>.py`) over `common.py`,
which holds what they share: bounded text, money as decimal strings in and out, days, and `In`, the
base of every request body (unknown fields refused).
"""

from alluse.api.schemas.common import Amount, Day, In, Money, Text, Year, money, usd

__all__ = ["Amount", "Day", "In", "Money", "Text", "Year", "money", "usd"]
