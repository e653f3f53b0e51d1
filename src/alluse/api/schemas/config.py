"""Bodies of the config routes (api/routers/config.py)."""

from pydantic import Field

from alluse.api.schemas.common import In, Text


class ConfigIn(In):
    key: Text(50, 1) = Field(description="e.g. delta_min, entry_days, buffer_pct, template, allocation")
    value: Text(100, 1)
