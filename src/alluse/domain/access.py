"""Roles: what a user or an API key may do in one portfolio."""

from __future__ import annotations

from enum import IntEnum

from alluse.domain.errors import InvalidInput


class Role(IntEnum):
    """Ordered: each role may do everything the ones below it may. Stored by name."""

    viewer = 1
    trader = 2
    owner = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().lower()]
        except KeyError:
            raise InvalidInput(f"unknown role {text!r}; choose viewer, trader or owner") from None
