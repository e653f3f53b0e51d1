"""Bodies of the portfolios routes (api/routers/portfolios.py)."""

from pydantic import BaseModel

from alluse.api.schemas.common import In, Text


class PortfolioRole(BaseModel):
    portfolio_id: int
    name: str
    role: str


class PortfolioIn(In):
    name: Text(100, 1)
    template: Text(20, 1) = "moderate"


class PortfolioOut(BaseModel):
    portfolio_id: int
    name: str
    template: str | None = None
    replayed: bool = False
