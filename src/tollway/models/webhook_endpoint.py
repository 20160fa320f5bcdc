from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow


class WebhookEndpoint(Base):
    """Where the provider receives webhooks. The signing secret is stored encrypted
    (``kit.crypto``, purpose ``webhook-secret``); ``event_types`` null means every type."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(1000))
    event_types: Mapped[list[str] | None] = mapped_column(JSONDoc)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="enabled")  # enabled | disabled
    disabled_reason: Mapped[str | None] = mapped_column(String(1000))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
