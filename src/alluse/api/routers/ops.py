"""Liveness, readiness (database reachable and schema current) and Prometheus metrics."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from alluse.api.deps import Caller, Ctx
from alluse.api.problems import problem, responses
from alluse.api.schemas.ops import HealthOut
from alluse.services.database import newest_revision, schema_revision_of

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut, response_model_exclude_none=True)
async def health() -> dict:
    """The process is up (no database check)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=HealthOut, responses=responses(503))
def ready(c: Ctx) -> object:
    """Ready for traffic: the database answers and its schema is at the newest revision."""
    try:
        current = schema_revision_of(c.engine)
    except Exception:  # a failing database is the answer here ("not ready"), not an error
        return problem(503, "not-ready", "the database does not answer")
    if current != newest_revision():
        return problem(503, "not-ready", f"database schema at {current}, expected {newest_revision()}: run migrations")
    return {"status": "ready", "schema_revision": current}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}, **responses(401, 403)},
)
def metrics(request: Request, _who: Caller) -> Response:
    """Prometheus text format. Needs any valid token or API key: labels carry route templates only."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
