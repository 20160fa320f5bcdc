"""No route handler that takes the request's database session runs on the event loop.

An ``async def`` handler with ``SessionDep`` runs its queries on the event loop. On SQLite every
transaction waits for the write lock (``BEGIN IMMEDIATE``); when another request holds it in the
threadpool, that request can only finish through the loop the handler blocks, so both wait for
the 30 s busy timeout (seen as a console page taking 30 s beside a plan preview failing with
"database is locked"). Such handlers are plain ``def`` (FastAPI runs them in the threadpool),
reading an awaited form through ``web.console.auth.FormDep``.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from tollway.app import create_app
from tollway.config import Settings
from tollway.deps import SessionDep, get_session


def _uses_session(dependant: Dependant) -> bool:
    return any(d.call is get_session or _uses_session(d) for d in dependant.dependencies)


def _handlers(app: FastAPI) -> list[Any]:
    """Every route with a dependant (those of included routers too), as the admission gate sees them."""
    return [r for r in iter_route_contexts(app.routes) if getattr(r, "dependant", None) is not None]


def _offenders(app: FastAPI) -> list[str]:
    return sorted(
        f"{sorted(route.methods)} {route.path}"
        for route in _handlers(app)
        if inspect.iscoroutinefunction(route.endpoint) and _uses_session(route.dependant)
    )


def test_no_async_handler_takes_the_database_session(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'rules.db'}", run_worker_in_serve=False))
    assert len([r for r in _handlers(app) if _uses_session(r.dependant)]) > 50  # the rule sees them
    assert _offenders(app) == []


def test_the_rule_catches_an_async_handler_with_the_session(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'rules.db'}", run_worker_in_serve=False))

    @app.post("/probe")
    async def probe(session: SessionDep) -> dict[str, str]:
        return {}

    assert _offenders(app) == ["['POST'] /probe"]
