"""The provider settings document: three sections, every field with a default.

One model serves the response, the stored document and the ``PUT`` body: a ``PUT`` parses the
body with it (so a bad field is a 422 naming ``section.field``) and keeps only the fields the
caller set (``exclude_unset``), which the service merges onto the stored document."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"
_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def _image_url(value: str | None) -> str | None:
    """An ``https://``/``http://`` URL, or an inline ``data:image/png|jpeg;base64,`` image (the
    only kind the PDF embeds: rendering never fetches anything from the network)."""
    if value is None:
        return None
    if value.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL or a data:image/png|jpeg;base64 URL")
    return value


def _origin(value: str) -> str:
    """A web origin ``scheme://host[:port]`` (a leading ``*.`` wildcard allowed, as CSP allows),
    lower-cased, without path, query or fragment."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"'{value}' is not an origin (scheme://host[:port])") from exc
    host = (parts.hostname or "").lower()
    if (
        parts.scheme not in ("http", "https")
        or not _HOST.match(host)
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"'{value}' is not an origin (scheme://host[:port], no path)")
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


ImageUrl = Annotated[str | None, Field(max_length=200_000), AfterValidator(_image_url)]
Origin = Annotated[str, Field(max_length=300), AfterValidator(_origin)]


class CompanySettings(BaseModel):
    """The seller block of every invoice."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    address: str | None = Field(default=None, max_length=2000, description="multi-line, lines separated by \\n")
    tax_id: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL_PATTERN)
    logo_url: ImageUrl = None


class InvoiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_terms_days: int = Field(
        default=0, ge=0, le=3650, description="due date = issue date + these days, for plans without their own terms"
    )
    payment_instructions: str | None = Field(default=None, max_length=4000)
    footer: str | None = Field(default=None, max_length=2000)


class PortalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=200)
    primary_color: str | None = Field(default=None, pattern=COLOR_PATTERN, description="#rrggbb")
    logo_url: ImageUrl = None
    frame_ancestors: list[Origin] = Field(
        default_factory=list,
        max_length=50,
        description="origins allowed to embed the portal in a frame; empty = same origin only",
    )
    self_service: bool = False


class ProviderSettings(BaseModel):
    """``GET /v1/settings``; also the ``PUT`` body, where every section and field may be left out."""

    model_config = ConfigDict(extra="forbid")

    company: CompanySettings = Field(default_factory=CompanySettings)
    invoice: InvoiceSettings = Field(default_factory=InvoiceSettings)
    portal: PortalSettings = Field(default_factory=PortalSettings)
