"""Bodies of the portfolios routes (api/routers/portfolios.py)."""

from typing import Annotated

from pydantic import BaseModel

from alluse.api.schemas.common import In, Text


class PortfolioRole(BaseModel):
    portfolio_id: int
    name: str
    role: str


class PortfolioIn(In):
    name: Annotated[str, Text(100, 1)]
    template: Annotated[str, Text(20, 1)] = "moderate"


class PortfolioOut(BaseModel):
    portfolio_id: int
    name: str
    template: str | None = None
    replayed: bool = False
