"""Settings, read from ``TOLLWAY_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLWAY_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./tollway.db",
        description="SQLAlchemy URL. sqlite:///path (default, a file in the working directory) "
        "or postgresql://user@host/db (psycopg 3 is used).",
    )
    redis_url: str | None = None
    smtp_url: str | None = None
    secret_key: str | None = None
    # Background worker (runs inside `tollway serve` unless disabled).
    run_worker_in_serve: bool = True
    billing_run_interval_seconds: float = 3600.0
    outbox_poll_interval_seconds: float = 2.0
    # How often the worker adds newly stored events to the meters' rollups. Less often means
    # larger batches that merge more events per rollup row (cheaper per event); queries read the
    # events not rolled up yet raw, so this only trades query work for ingestion work.
    rollup_interval_seconds: float = 5.0
    # Webhooks and alerts (docs/webhooks.md, docs/alerts.md).
    smtp_from: str | None = None
    webhook_allow_private_urls: bool = Field(
        default=False, description="let webhooks go to loopback/private/link-local addresses (SSRF guard off)"
    )
    webhook_timeout_seconds: float = 10.0
    webhook_disable_after_failures: int = 20
    webhook_disable_after_seconds: float = 24 * 3600.0
    # Ingestion limits (contract: <= 1000 events, <= 1 MiB after decompression).
    max_events_per_batch: int = 1000
    max_body_bytes: int = 1024 * 1024
    # Payments through Stripe (off unless the API key is set). api_base points the official
    # library at another Stripe-compatible server (a local fake in the tests).
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_timeout_seconds: float = 30.0
    stripe_max_network_retries: int = 2


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
