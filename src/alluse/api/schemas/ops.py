"""Bodies of the ops routes (api/routers/ops.py)."""

from pydantic import BaseModel


class HealthOut(BaseModel):
    status: str
    schema_revision: str | None = None
