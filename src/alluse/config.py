"""One typed settings object; environment variables ALLUSE_*; defaults work out of the box."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from alluse import DEFAULT_DATABASE_URL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALLUSE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Who the CLI records as the actor of a write when no user is logged in.
    actor: str | None = None

    # Encryption of broker credentials and signing of API tokens. ALLUSE_SECRET_KEY holds one or more
    # Fernet keys, comma-separated, newest first; without it the key file is used (created on first
    # use with 0600 permissions).
    secret_key: str | None = None
    key_file: str = "./alluse.key"

    access_token_minutes: int = 15
    refresh_token_hours: int = 12
    # Failed logins allowed per username and per client address within the window (counted in the
    # database, shared by every server process).
    login_max_failures: int = 5
    login_window_seconds: int = 300
    # Addresses (or CIDR networks), comma-separated, of reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed. Empty: the client address is the TCP peer, whatever it sends.
    trusted_proxies: str = ""

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [x.strip() for x in self.trusted_proxies.split(",") if x.strip()]

    # Request bounds: bodies over max_body_bytes get 413 while they stream in; JSON bodies may nest
    # max_json_depth levels and hold max_json_keys keys per object.
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    max_json_keys: int = 1000

    # The one place the Content-Security-Policy is set: same-origin scripts, styles and images, no
    # inline script, no framing. The interactive API docs pages need their CDN and inline start-up.
    content_security_policy: str = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    docs_content_security_policy: str = (
        "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
        "worker-src blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )

    host: str = "127.0.0.1"
    port: int = 8000
    # Server processes for `alluse serve`; 0 picks one per CPU, at most 4 (docs/api.md, "Performance").
    workers: int = Field(default=0, ge=0, le=64)
    # Structured JSON request log lines on stderr.
    request_log: bool = True

    # IBKR Flex Web Service (statement download) and its polling while a statement is generated.
    ibkr_flex_url: str = "https://ndcdyn.interactivebrokers.com/AccountManagement/FlexWebService"
    ibkr_flex_poll_seconds: float = 5.0
    ibkr_flex_max_polls: int = 12
    # The paper broker's commission: per option contract and per share (USD, exact decimals).
    paper_commission_per_contract: str = "0.65"
    paper_commission_per_share: str = "0.005"

    # The event relay (docs/events.md): NATS server, JetStream stream and subject prefix, webhooks.
    nats_url: str = "nats://127.0.0.1:4222"
    events_stream: str = "ALLUSE"
    events_prefix: str = "alluse"
    webhook_timeout_seconds: float = 10.0
    # Retry n waits backoff × 2^(n-1) seconds (capped at an hour); after max attempts: FAILED.
    webhook_backoff_seconds: float = 10.0
    webhook_max_attempts: int = 8


@lru_cache
def get_settings() -> Settings:
    return Settings()


def server_workers(configured: int) -> int:
    """The server's process count: as configured, or one per CPU (at most 4) for 0."""
    return configured or max(1, min(os.cpu_count() or 1, 4))
