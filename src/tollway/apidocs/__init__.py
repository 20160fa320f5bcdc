"""Interactive API docs served from the package: Swagger UI at ``/docs`` and ReDoc at ``/redoc``
with vendored assets (``static/``, licences beside them), so the docs work offline and under a
strict Content-Security-Policy. ``/`` redirects to the docs.

Vendored: swagger-ui-dist 5.35.0 (Apache-2.0, ``static/swagger-ui/LICENSE`` and ``NOTICE``) and
redoc 2.5.4 (MIT, ``static/redoc/LICENSE``), from their npm packages.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PREFIX = "/docs/static"

# Swagger UI and ReDoc set styles inline; ReDoc runs its search in a worker started from a blob.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def _page(title: str, head: str, body: str) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" type="image/png" href="{PREFIX}/swagger-ui/favicon-32x32.png">{head}</head>'
        f"{body}</html>"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_CSP})


def install(app: FastAPI, *, home: str = "/docs") -> None:
    """Mount the assets and add ``/docs``, ``/redoc`` and ``/`` (a redirect to ``home``)."""
    app.mount(PREFIX, StaticFiles(directory=STATIC), name="apidocs-static")
    openapi = app.openapi_url or "/openapi.json"
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _page(
            title,
            f'<link rel="stylesheet" href="{PREFIX}/swagger-ui/swagger-ui.css">',
            f'<body data-openapi="{escape(openapi)}"><div id="swagger-ui"></div>'
            f'<script src="{PREFIX}/swagger-ui/swagger-ui-bundle.js"></script>'
            f'<script src="{PREFIX}/swagger-init.js"></script></body>',
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _page(
            title,
            "",
            f'<body style="margin:0"><redoc spec-url="{escape(openapi)}" hide-download-button></redoc>'
            f'<script src="{PREFIX}/redoc/redoc.standalone.js"></script></body>',
        )

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(home)
