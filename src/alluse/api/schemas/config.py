"""Bodies of the config routes (api/routers/config.py)."""

from typing import Annotated

from pydantic import Field

from alluse.api.schemas.common import In, Text


class ConfigIn(In):
    key: Annotated[str, Text(50, 1)] = Field(description="e.g. delta_min, entry_days, buffer_pct, template, allocation")
    value: Annotated[str, Text(100, 1)]
