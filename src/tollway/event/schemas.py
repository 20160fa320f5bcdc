from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    errors: list[dict[str, Any]]


class EventOut(BaseModel):
    id: str
    customer: str
    type: str
    timestamp: datetime
    ingested_at: datetime
    properties: dict[str, Any]
    voided_at: datetime | None
