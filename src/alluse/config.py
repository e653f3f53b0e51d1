"""One typed settings object; environment variables ALLUSE_*; defaults work out of the box."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALLUSE_", extra="ignore")

    database_url: str = "sqlite:///./alluse.db"
    # Who the CLI records as the actor of a write when no user is logged in.
    actor: str | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
