from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tollway.db import Base, UTCDateTime
from tollway.kit.time import utcnow


class IdempotencyRecord(Base):
    """The first response to a create request sent with an ``Idempotency-Key`` header (status 0:
    claimed, the response not stored yet). Expires after ``kit.idempotency.RECORD_TTL``."""

    __tablename__ = "idempotency_records"

    # sha256 of the principal's subject, the method, the path and the Idempotency-Key.
    scope_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
