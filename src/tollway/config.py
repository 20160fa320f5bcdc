"""Settings, read from ``TOLLWAY_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLWAY_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./tollway.db",
        description="SQLAlchemy URL. sqlite:///path (default, a file in the working directory) "
        "or postgresql://user@host/db (psycopg 3 is used).",
    )
    redis_url: str | None = None
    # Where customers reach this server (portal links); default: the base URL of each request.
    public_url: str | None = None
    # Every Redis key this deployment writes starts with this (several deployments, or tests,
    # can share one Redis).
    redis_prefix: str = "tollway"
    # A limits check that cannot reach Redis: "database" computes from the events (exact,
    # slower), "allow" lets the request through.
    limits_redis_fallback: Literal["database", "allow"] = "database"
    # Requests per second per API key (bursts of one second's worth); unset = no limit.
    key_rate_limit: float | None = Field(default=None, gt=0)
    # Refuse events whose billing period was invoiced more than N days ago; unset = accept all.
    late_event_days: int | None = Field(default=None, ge=0)
    smtp_url: str | None = None
    # Encryption keys for secrets at rest are derived from it (kit.crypto); at least 32 characters.
    secret_key: str | None = None
    # Background worker (runs inside `tollway serve` unless disabled).
    run_worker_in_serve: bool = True
    billing_run_interval_seconds: float = Field(default=3600.0, ge=0, description="0 turns the scheduled run off")
    outbox_poll_interval_seconds: float = 2.0
    # How often the worker adds newly stored events to the meters' rollups. Less often means
    # larger batches that merge more events per rollup row (cheaper per event); queries read the
    # events not rolled up yet raw, so this only trades query work for ingestion work.
    rollup_interval_seconds: float = 5.0
    # How often the worker observes customers' credit balances (credits.low_balance / depleted).
    credits_check_interval_seconds: float = 60.0
    # How often the worker refreshes the stored upcoming-invoice totals (the console's "expected
    # this month") of customers with new events; 0 turns it off.
    forecast_interval_seconds: float = 60.0
    # Ingestion limits (contract: <= 1000 events, <= 1 MiB after decompression). max_body_bytes
    # also bounds every authenticated route's request body as sent (auth.gate: 413 beyond).
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

    @field_validator("secret_key")
    @classmethod
    def _secret_key_long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 32:
            raise ValueError("TOLLWAY_SECRET_KEY must be at least 32 characters")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
