"""The background worker: meter rollups, the scheduled billing run and the outbox drain, in one loop.

Runs alone (``tollway worker``) or as a thread inside ``tollway serve``. Several workers may run
against one PostgreSQL: billing periods and outbox messages are claimed with row locks
(``FOR UPDATE`` / ``SKIP LOCKED``), so each invoice is written once and each message delivered
by one worker at a time. ``stop()`` (wired to SIGTERM/SIGINT by the CLI) lets the current step
finish and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from tollway.config import Settings
from tollway.credit import alerts as credit_alerts
from tollway.db import session_scope
from tollway.invoice import forecast
from tollway.invoice.finalize import run_billing
from tollway.kit.idempotency import purge_expired
from tollway.kit.time import utcnow
from tollway.limit.counters import purge_ended
from tollway.meter import rollup
from tollway.notification.outbox import drain
from tollway.payment.sync import PaymentSync

log = logging.getLogger("tollway.worker")

AS_OF_LAG = timedelta(seconds=30)
"""Scheduled runs cut invoices off 30 s before they are computed, so an event whose ingestion is
still committing is billed as a late event (an adjustment) instead of being missed."""
HOUSEKEEPING_INTERVAL_SECONDS = 3600.0


class Worker:
    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_billing = 0.0
        self._next_rollup = 0.0
        self._next_credits = 0.0
        self._next_forecast = 0.0
        self._next_housekeeping = 0.0
        self.payments = self._payments()

    def _payments(self) -> PaymentSync | None:
        """The payment provider's sync when one is configured; its outbox handlers are registered here."""
        from tollway.payment.handlers import register_handlers
        from tollway.payment.providers import configured_provider

        provider = configured_provider(self.settings)
        if provider is None:
            return None
        register_handlers(provider.name)
        return PaymentSync(self.factory, provider)

    def stop(self) -> None:
        self._stop.set()

    @property
    def billing_enabled(self) -> bool:
        """``TOLLWAY_BILLING_RUN_INTERVAL_SECONDS=0`` turns the scheduled billing run off."""
        return self.settings.billing_run_interval_seconds > 0

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def billing_step(self) -> int:
        result = run_billing(self.factory, until=utcnow(), as_of_lag=AS_OF_LAG)
        if result.created:
            log.info("billing run finalized %d invoices", len(result.created))
        return len(result.created)

    def rollup_step(self) -> int:
        """Add the events stored since the last step to the meters' hourly rollups."""
        total = 0
        while not self.stopping:
            with session_scope(self.factory) as session:
                applied = rollup.apply_pending(session)
            total += applied
            if applied == 0:
                break
        return total

    def credits_step(self) -> int:
        """Observe credit balances: credits.low_balance / credits.depleted once per crossing."""
        return credit_alerts.check_all(self.factory, now=utcnow())

    def forecast_step(self) -> int:
        """Refresh the stored upcoming-invoice totals of customers with new usage or a new period."""
        return forecast.refresh(self.factory, now=utcnow())

    def outbox_step(self) -> int:
        total = 0
        while not self.stopping:
            delivered, failed = drain(self.factory)
            total += delivered
            if delivered + failed == 0 or failed:
                break
        return total

    def housekeeping_step(self) -> int:
        """Delete expired Idempotency-Key records."""
        with session_scope(self.factory) as session:
            return purge_expired(session, utcnow())

    def payment_step(self) -> int:
        """Push due invoices to the payment provider (the loop runs this in its own thread)."""
        return self.payments.step().done if self.payments is not None else 0

    def run_once(self) -> None:
        now = time.monotonic()
        if now >= self._next_housekeeping:
            try:
                self.housekeeping_step()
            except Exception:
                log.exception("housekeeping failed; retrying")
            self._next_housekeeping = now + HOUSEKEEPING_INTERVAL_SECONDS
        if now >= self._next_rollup:
            try:
                self.rollup_step()
            except Exception:
                log.exception("rollup step failed; retrying")
            try:
                with session_scope(self.factory) as session:
                    purge_ended(session, utcnow())
            except Exception:
                log.exception("purging ended limit counters failed; retrying")
            self._next_rollup = now + self.settings.rollup_interval_seconds
        if self.billing_enabled and now >= self._next_billing:
            try:
                self.billing_step()
            except Exception:
                log.exception("billing run failed; retrying at the next interval")
            self._next_billing = now + self.settings.billing_run_interval_seconds
        if now >= self._next_credits:
            try:
                self.credits_step()
            except Exception:
                log.exception("credit balance check failed; retrying")
            self._next_credits = now + self.settings.credits_check_interval_seconds
        if self.settings.forecast_interval_seconds > 0 and now >= self._next_forecast:
            try:
                self.forecast_step()
            except Exception:
                log.exception("upcoming-totals refresh failed; retrying at the next interval")
            self._next_forecast = now + self.settings.forecast_interval_seconds
        try:
            self.outbox_step()
        except Exception:
            log.exception("outbox drain failed; retrying")

    def run(self) -> None:
        log.info(
            "worker started (billing every %s, outbox every %ss)",
            f"{self.settings.billing_run_interval_seconds}s" if self.billing_enabled else "- off",
            self.settings.outbox_poll_interval_seconds,
        )
        if self.payments is not None:  # a slow provider must never delay billing: its own thread
            self.payments.start_thread(self._stop, self.settings.outbox_poll_interval_seconds)
        while not self.stopping:
            self.run_once()
            self._stop.wait(min(self.settings.outbox_poll_interval_seconds, self.settings.rollup_interval_seconds))
        log.info("worker stopped")

    def start_thread(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="tollway-worker", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
