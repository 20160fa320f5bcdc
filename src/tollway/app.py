"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from fastapi import FastAPI
from starlette.datastructures import State

from tollway import __version__, apidocs
from tollway.alert.endpoints import router as alerts_router
from tollway.auth.endpoints import router as api_keys_router
from tollway.auth.gate import AdmissionGate
from tollway.catalog.endpoints import router as catalog_router
from tollway.catalog.service import published_plan_meter_guard
from tollway.config import Settings, get_settings
from tollway.credit.endpoints import router as credits_router
from tollway.customer.endpoints import router as customers_router
from tollway.db import close_async_pool, make_engine, make_sessionmaker, open_async_pool
from tollway.errors import install_error_handlers
from tollway.event.endpoints import router as events_router
from tollway.event.store import SqlEventStore
from tollway.invoice.endpoints import router as invoices_router
from tollway.kit.idempotency import IdempotencyMiddleware
from tollway.kit.web import AccessLog, SecurityHeaders
from tollway.limit.endpoints import router as limits_router
from tollway.limit.keeper import LimitKeeper
from tollway.limit.protect import KeyRateLimiter, key_rate_limit
from tollway.meter.endpoints import router as meters_router
from tollway.meter.service import register_mutation_guard
from tollway.notification.endpoints import router as webhooks_router
from tollway.payment.endpoints import router as payments_router
from tollway.portal.endpoints import router as portal_router
from tollway.portal.endpoints import sessions_router as portal_sessions_router
from tollway.portal.pages import router as portal_pages_router
from tollway.settings.endpoints import router as settings_router
from tollway.subscription.endpoints import router as subscriptions_router
from tollway.web import mount_static
from tollway.web.console.routes import install as install_console

ROUTERS = [
    api_keys_router,
    customers_router,
    events_router,
    meters_router,
    catalog_router,
    subscriptions_router,
    invoices_router,
    settings_router,
    limits_router,
    webhooks_router,
    alerts_router,
    payments_router,
    portal_sessions_router,
    portal_router,
    portal_pages_router,
    credits_router,
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    register_mutation_guard(published_plan_meter_guard)  # a meter a published plan uses stays as it is

    app = FastAPI(
        title="Tollway",
        version=__version__,
        description="Usage-based billing for APIs: meter, price, bill. Contract: API v1.",
        lifespan=_lifespan,
        docs_url=None,  # served by tollway.apidocs with local assets
        redoc_url=None,
    )
    configure(app, settings)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_console(app)
    mount_static(app)
    # Middleware: the last added runs first. The gate authenticates by route and bounds the body
    # before Idempotency-Key handling (which needs the admitted principal) sees the request.
    app.add_middleware(IdempotencyMiddleware, sessionmaker_getter=lambda: app.state.sessionmaker)
    app.add_middleware(AdmissionGate, fastapi_app=app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog)

    apidocs.install(app, home="/console")

    @app.get("/healthz", tags=["ops"], include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def configure(app: FastAPI, settings: Settings) -> None:
    """Give ``app`` what its settings make, on a fresh ``app.state``: the settings, the engine and
    its sessions, the limit keeper, the per-key rate limiter, the admission hooks, the event sink
    (state added later, such as the payment provider made at its first use, is dropped).
    Everything the application reads that depends on the settings is here and is read from
    ``app.state`` per request; the routes, handlers and middleware built by :func:`create_app` do
    not depend on them. ``create_app`` calls it once; the test harness calls it once per test on
    one application per process, because building the routes of a new application costs far more
    than a test (tests/conftest.py)."""
    engine = make_engine(settings.database_url)
    app.state = State()
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.limits = LimitKeeper.from_settings(settings)
    app.state.key_rate_limiter = (
        KeyRateLimiter(settings.key_rate_limit, redis_url=settings.redis_url, prefix=settings.redis_prefix)
        if settings.key_rate_limit
        else None
    )
    # async (request, principal) -> None, run by the gate (auth.gate) before the body is read
    app.state.admission_hooks = [key_rate_limit]
    app.state.event_sink = SqlEventStore(engine)


@cache  # once per process
def freeze_startup_heap() -> None:
    """Take what the process made while starting (modules, routes, schemas, mappers: about
    200,000 objects) out of the cyclic garbage collector's sight (``gc.freeze``, after a
    collection so that no garbage is kept). Ingestion makes many objects that live as long as a
    request, which brings full collections every few large batches, and each one walked the
    whole start-up heap: the server's CPU per batch of 1000 events went from 9.2 to 5.4 ms with
    this alone (BENCHMARKS.md). What the process makes later is collected as before."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    freeze_startup_heap()
    worker = None
    await open_async_pool(app.state.engine)  # the key look-up and ingestion await PostgreSQL on this loop
    if settings.run_worker_in_serve:  # the background worker (billing runs, outbox) in-process
        from tollway.worker import Worker

        worker = Worker(app.state.sessionmaker, settings)
        worker.start_thread()
    yield
    if worker is not None:
        worker.stop()
        worker.join(timeout=30)
    await close_async_pool(app.state.engine)
    app.state.engine.dispose()
