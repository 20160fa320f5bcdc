from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["admin", "ingest"]
    name: str | None = Field(default=None, max_length=200)


class ApiKeyOut(BaseModel):
    """An API key as listed: never the key itself (only its first characters, ``prefix``)."""

    id: str
    name: str | None
    scope: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the secret; shown only in this response, stored only hashed")
