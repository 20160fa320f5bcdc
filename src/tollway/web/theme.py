"""The portal's look and embedding rules, read from the provider settings (``settings.portal``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class PortalTheme:
    title: str | None = None
    primary_color: str | None = None
    logo_url: str | None = None
    frame_ancestors: list[str] = field(default_factory=list)
    self_service: bool = False


def portal_settings(session: Session) -> PortalTheme:
    """``settings.portal`` (defaults until the provider settings exist)."""
    return PortalTheme()
