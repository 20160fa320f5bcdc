"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tollway import __version__
from tollway.alert.endpoints import router as alerts_router
from tollway.auth.keys import KeyCache
from tollway.catalog.endpoints import router as catalog_router
from tollway.catalog.service import published_plan_meter_guard
from tollway.config import Settings, get_settings
from tollway.customer.endpoints import router as customers_router
from tollway.db import make_engine, make_sessionmaker
from tollway.errors import install_error_handlers
from tollway.event.endpoints import router as events_router
from tollway.event.store import SqlEventStore
from tollway.invoice.endpoints import router as invoices_router
from tollway.kit.idempotency import IdempotencyMiddleware
from tollway.meter.endpoints import router as meters_router
from tollway.meter.service import register_mutation_guard
from tollway.notification.endpoints import router as webhooks_router
from tollway.payment.endpoints import router as payments_router
from tollway.settings.endpoints import router as settings_router
from tollway.subscription.endpoints import router as subscriptions_router

ROUTERS = [
    customers_router,
    events_router,
    meters_router,
    catalog_router,
    subscriptions_router,
    invoices_router,
    settings_router,
    webhooks_router,
    alerts_router,
    payments_router,
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    register_mutation_guard(published_plan_meter_guard)  # a meter a published plan uses stays as it is
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if settings.run_worker_in_serve:  # the background worker (billing runs, outbox) in-process
            from tollway.worker import Worker

            worker = Worker(app.state.sessionmaker, settings)
            worker.start_thread()
        yield
        if worker is not None:
            worker.stop()
            worker.join(timeout=30)
        engine.dispose()

    app = FastAPI(
        title="Tollway",
        version=__version__,
        description="Usage-based billing for APIs: meter, price, bill. Contract: API v1.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.key_cache = KeyCache()
    app.state.event_sink = SqlEventStore(engine)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(IdempotencyMiddleware, sessionmaker_getter=lambda: app.state.sessionmaker)

    @app.get("/healthz", tags=["ops"], include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
