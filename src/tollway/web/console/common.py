"""What every console page shares: the navigation, the page context, the session dependency."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.responses import HTMLResponse

from tollway.errors import TollwayError
from tollway.operator.service import SignedIn
from tollway.web import PageContext, page_response

TITLE = "Tollway console"
NAV = [
    ("overview", "Overview", "/console"),
    ("customers", "Customers", "/console/customers"),
    ("meters", "Meters", "/console/meters"),
    ("events", "Events", "/console/events"),
    ("plans", "Plans", "/console/plans"),
    ("simulator", "Simulator", "/console/simulator"),
    ("invoices", "Invoices", "/console/invoices"),
    ("webhooks", "Webhooks", "/console/webhooks"),
    ("settings", "Settings", "/console/settings"),
    ("api-keys", "API keys", "/console/api-keys"),
]
"""The navigation, in the contract's order."""


def console_page(
    template: str, operator: SignedIn | None, *, active: str | None = None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A console page (or an htmx fragment) rendered in the shared layout, with the navigation
    and the operator's CSRF token for its forms."""
    return page_response(
        template,
        PageContext(title=TITLE),
        status_code=status_code,
        nav=NAV if operator is not None else [],
        active=active,
        operator=operator,
        csrf=operator.csrf_token if operator is not None else None,
        **context,
    )


def error_text(exc: TollwayError) -> str:
    """A domain error as one line for a page: the fields named, else the message."""
    return "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.message


def form_text(form: FormData, name: str) -> str:
    """A text field of a submitted form, stripped ("" when absent or not text)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
