"""Bodies of the audit routes (api/routers/audit.py)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    idempotency_key: str
    result: Any
    override_reason: str | None
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    problems: list[str]
    counts: dict[str, int]
