"""Server-rendered pages (the customer portal, the operators' console): one Jinja2 environment
with the shared layout (``templates/layout.html``), the static files served from the package
(``static/``: our CSS and JS, and vendored libraries with their licences — no CDN, no Node.js),
and the security headers every page sends.

A page renders ``layout.html`` blocks; give it a :class:`PageContext` (title, colour, logo,
nonce). ``page_response`` sets the Content-Security-Policy (scripts only from ``/static``,
``frame-ancestors`` as given) and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from tollway.kit.fields import format_decimal
from tollway.kit.money import format_money

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static"

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _money(amount: str | Decimal | None, currency: str | None) -> str:
    """``"1234.5", "USD"`` -> ``"1,234.50 USD"``; blank for no amount."""
    if amount is None or currency is None:
        return ""
    return format_money(Decimal(amount), currency)


def _number(value: str | Decimal | int | None) -> str:
    """A quantity with thousands separators and every decimal it has: ``12345.5`` -> ``12,345.5``."""
    if value is None:
        return ""
    text = format_decimal(Decimal(value))
    whole, dot, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-') or 0):,}{dot}{frac}"


def _date(moment: datetime | None, tz: str | None = None) -> str:
    """A date in the given IANA zone (the customer's): ``3 Nov 2026``."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(tz)) if tz else moment
    return f"{local.day} {local:%b %Y}"


def _datetime(moment: datetime | None, tz: str | None = None) -> str:
    """A date and time in the given IANA zone (the customer's): ``3 Nov 2026, 14:05``."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(tz)) if tz else moment
    return f"{_date(local)}, {local:%H:%M}"


env.filters.update(money=_money, number=_number, date=_date, datetime=_datetime)

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOR = "#0b7285"


def mount_static(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")


@dataclass
class PageContext:
    """What the shared layout needs: the title, the theme colour, the logo and the CSP nonce."""

    title: str
    primary_color: str = DEFAULT_COLOR
    logo_url: str | None = None
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def __post_init__(self) -> None:
        if not _COLOR.match(self.primary_color or ""):
            self.primary_color = DEFAULT_COLOR


def _origin(url: str | None) -> str | None:
    if not url or url.startswith("data:"):
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def security_headers(
    *, nonce: str | None = None, frame_ancestors: Iterable[str] = (), image_origins: Iterable[str | None] = ()
) -> dict[str, str]:
    """CSP (scripts and styles only from this origin; a nonce for the theme's inline style;
    ``frame-ancestors 'self'`` plus the given origins), no Referer, no MIME sniffing."""
    images = " ".join(["'self'", "data:", *sorted({o for o in image_origins if o})])
    styles = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    ancestors = " ".join(["'self'", *frame_ancestors])
    csp = (
        f"default-src 'none'; script-src 'self'; style-src {styles}; img-src {images}; "
        f"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {ancestors}"
    )
    return {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def render(template: str, page: PageContext, **context: Any) -> str:
    return env.get_template(template).render(page=page, static=STATIC_PREFIX, **context)


def page_response(
    template: str,
    page: PageContext,
    *,
    frame_ancestors: Iterable[str] = (),
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A rendered page (or fragment) with the security headers."""
    all_headers = security_headers(
        nonce=page.nonce, frame_ancestors=frame_ancestors, image_origins=[_origin(page.logo_url)]
    )
    all_headers.update(headers or {})
    return HTMLResponse(render(template, page, **context), status_code=status_code, headers=all_headers)
