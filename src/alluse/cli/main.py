"""`alluse`: every command is a thin shell over one service call or one read; errors are one line
and exit 1.

The commands live in one module per area; importing them here registers them on `app`."""

from __future__ import annotations

from alluse.cli import (  # noqa: F401
    admin,
    brokers,
    cash,
    events,
    groups,
    journal,
    lifecycle,
    project,
    reports,
    tax,
    trades,
    users,
)
from alluse.cli.common import app, state

__all__ = ["app", "state"]
