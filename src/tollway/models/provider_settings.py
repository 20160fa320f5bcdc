from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, JSONDoc, UTCDateTime
from tollway.kit.time import utcnow

SINGLETON_ID = 1


class ProviderSettingsRow(Base):
    """The provider's settings document (``tollway.settings``): one row, id 1, created by its
    migration. ``document`` holds the fields set so far; defaults fill the rest when read."""

    __tablename__ = "provider_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
