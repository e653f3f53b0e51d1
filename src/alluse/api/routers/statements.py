"""Broker statements: upload an IBKR Flex XML statement to import it (exactly once per row) or only
to reconcile alluse against it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from pydantic import BaseModel

from alluse.api.deps import Ctx, Trader, Viewer
from alluse.api.money import typed_money
from alluse.api.problems import responses
from alluse.brokers.ibkr import MAX_BYTES
from alluse.domain.errors import InvalidInput
from alluse.services.statements import Reconciliation, StatementImported, import_statement, reconcile_statement

router = APIRouter(tags=["statements"], responses=responses(400, 401, 403, 404, 409, 422))


class DifferenceOut(BaseModel):
    what: str  # cash, quantity or cost basis
    symbol: str | None = None
    broker: str | None = None  # dollars (cash, cost basis)
    alluse: str | None = None
    broker_quantity: int | None = None
    alluse_quantity: int | None = None
    note: str | None = None


class AccountReconciliationOut(BaseModel):
    brokerage_account: str
    account: str
    as_of: str
    cash: str
    positions: int
    differences: list[DifferenceOut]
    not_compared: dict[str, int]


class ReconciliationOut(BaseModel):
    accounts: list[AccountReconciliationOut]
    differences: int


class AccountImportOut(BaseModel):
    brokerage_account: str
    account: str
    period: str
    added: int
    already_present: int
    unsupported: dict[str, int]
    option_eae_rows: int


class ImportOut(BaseModel):
    accounts: list[AccountImportOut]
    marks: int
    not_read: dict[str, int]
    ignored_attributes: dict[str, int]
    reconciliation: ReconciliationOut


StatementFile = Annotated[UploadFile, File(description="An IBKR Flex Query XML file (Activity statement).")]


def _read(statement: UploadFile) -> bytes:
    data = statement.file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"statement: larger than {MAX_BYTES // (1024 * 1024)} MB")
    return data


@router.post("/portfolios/{portfolio}/statements/ibkr", response_model=ImportOut, status_code=201)
def import_ibkr(scope: Trader, c: Ctx, statement: StatementFile) -> dict:
    """Import a Flex statement: each row once, keyed by IBKR's own ids (re-uploading or overlapping
    statements add only new rows), all rows or none; the answer carries the per-account report
    (added, already present, unsupported) and the reconciliation."""
    data = _read(statement)
    return typed_money(import_statement(c.engine, scope.actor, scope.portfolio_id, data), StatementImported)


@router.post("/portfolios/{portfolio}/statements/ibkr/reconcile", response_model=ReconciliationOut)
def reconcile_ibkr(scope: Viewer, c: Ctx, statement: StatementFile) -> dict:
    """Compare each mapped account's cash and positions with the statement, as of its end date.
    Changes nothing; differences are a 200 with the list, not an error."""
    data = _read(statement)
    return typed_money(reconcile_statement(c.engine, scope.portfolio_id, data), Reconciliation)
