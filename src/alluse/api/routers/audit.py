"""The portfolio's hash-chained audit log, and the whole-database integrity check."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from alluse.api.deps import Ctx, Viewer, require_admin
from alluse.api.problems import responses
from alluse.api.schemas.audit import AuditEntryOut, VerifyOut
from alluse.services.verify import audit_entries, verify
from alluse.views.access import Principal

router = APIRouter(tags=["audit"], responses=responses(400, 401, 403, 404, 422))


@router.get("/portfolios/{portfolio}/audit", response_model=list[AuditEntryOut])
def audit_log(
    scope: Viewer,
    c: Ctx,
    after: Annotated[int, Query(ge=0, le=2**62, description="Entries after this sequence number")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list:
    """Who did what and when, oldest first, with each entry's hash."""
    return audit_entries(c.engine, scope.portfolio_id, after, limit)


@router.get("/verify", response_model=VerifyOut)
def run_verify(c: Ctx, _admin: Principal = Depends(require_admin)) -> dict:
    """Admin: recompute balances from the journal, check zero-sum, the brokerage mapping and every
    portfolio's audit chain. Whole-database, so admin only."""
    report = verify(c.engine)
    return {"ok": report.ok, "problems": report.problems, "counts": report.counts}
