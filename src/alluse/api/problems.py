"""Errors as RFC 9457 problem+json. Every error a user can cause maps to a 4xx with the domain
message, which is written to be acted on; anything else is a 500 that says only that it is a bug."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from alluse.domain import errors as e
from alluse.security.keyring import KeyringError

log = logging.getLogger("alluse.api")
MEDIA_TYPE = "application/problem+json"

STATUS: list[tuple[type[e.AlluseError], int]] = [
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.IntegrityFailure, 409),
    (e.RuleViolation, 422),
    (e.TooManyAttempts, 429),
    (e.InvalidInput, 400),
    (KeyringError, 503),
]


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": f"urn:alluse:problem:{code}", "title": code.replace("-", " "), "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def status_of(exc: e.AlluseError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _alluse(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.AlluseError)
    headers = None
    if isinstance(exc, e.Unauthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, e.TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(status_of(exc), exc.code, str(exc), headers)


def _validation(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return problem(422, "invalid-request", "; ".join(parts) or "invalid request")


def _http(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {
        404: "not-found",
        405: "method-not-allowed",
        413: "body-too-large",
        415: "unsupported-media-type",
        422: "invalid-request",
    }.get(exc.status_code, "http-error")
    return problem(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


def _database(_req: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, sa.exc.IntegrityError):
        return problem(409, "conflict", "refused by a database constraint (the request contradicts stored data)")
    if isinstance(exc, sa.exc.DataError):
        return problem(400, "invalid-input", "a value is out of range or malformed for the database")
    if isinstance(exc, sa.exc.OperationalError):
        log.error("database unavailable: %s", exc.orig)
        return problem(503, "unavailable", "the database is unavailable; try again shortly")
    return _bug(_req, exc)


def _bug(_req: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error", exc_info=exc)
    return problem(500, "internal-error", "internal error: this is a bug, and it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.AlluseError, _alluse)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(sa.exc.DBAPIError, _database)
    app.add_exception_handler(Exception, _bug)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems an endpoint may answer with."""
    return {
        s: {
            "model": Problem,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            "description": "problem",
        }
        for s in statuses
    }
