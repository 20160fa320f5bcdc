"""The background worker: meter rollups, the scheduled billing run, the outbox drain and webhook
deliveries, in one loop.

Runs alone (``tollway worker``) or as a thread inside ``tollway serve``. Several workers may run
against one PostgreSQL: billing periods, outbox messages and the customers whose alerts are due
are claimed with row locks (``FOR UPDATE`` / ``SKIP LOCKED``), so each invoice is written once,
each message delivered by one worker at a time and each alert batch evaluated by one worker.
``stop()`` (wired to SIGTERM/SIGINT by the CLI) lets the current step finish and returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from tollway.alert.evaluate import evaluate_changed
from tollway.config import Settings
from tollway.credit import alerts as credit_alerts
from tollway.db import is_postgres, session_scope
from tollway.event import store as event_store
from tollway.invoice import forecast
from tollway.invoice.finalize import run_billing
from tollway.kit.idempotency import purge_expired
from tollway.kit.time import utcnow
from tollway.limit.counters import purge_ended
from tollway.limit.keeper import LimitKeeper
from tollway.meter import fold, rollup
from tollway.notification import outbox
from tollway.notification.delivery import deliver_due
from tollway.payment.sync import PaymentSync

log = logging.getLogger("tollway.worker")

AS_OF_LAG = timedelta(seconds=30)
"""Scheduled runs cut invoices off 30 s before they are computed, so an event whose ingestion is
still committing is billed as a late event (an adjustment) instead of being missed."""
HOUSEKEEPING_INTERVAL_SECONDS = 3600.0


def register_handlers(settings: Settings) -> None:
    """Every outbox consumer, registered explicitly when a worker starts (never as an import side
    effect). Add yours here: ``outbox.register(topic, handler, name=...)`` (a stable name: it is
    recorded on each message the handler has processed)."""
    from tollway.alert.evaluate import EMAIL_TOPIC
    from tollway.notification.email import AlertMailer
    from tollway.notification.service import fan_out

    outbox.register("*", fan_out, name="webhooks.fan_out")
    outbox.register(EMAIL_TOPIC, AlertMailer(settings), name="email.alert")


# Events per fold transaction. Each fold upserts a rollup row per customer, hour and group it
# meets, whatever the number of events behind the row, and plans its statement once: the more
# events per fold, the less each costs, until the fold's hash tables outgrow memory
# (bench/fold.py, 400,000 events of 1,000 customers: 4.7-4.95 us of database CPU per event by
# 20,000, 2.7-3.2 by 100,000, 3.8-4.6 by 200,000). A fold of 100,000 takes about 0.3 s.
ROLLUP_BATCH = 100_000
# SQLite has one writer: a fold holds up every batch being stored meanwhile, so folds stay short
# there (200,000 events folded as fast in folds of 100,000, but the longest took 1.1 s against
# 0.2-0.3 s in folds of 20,000).
ROLLUP_BATCH_SQLITE = 20_000
ALERT_BATCH = 100


class Worker:
    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        self.factory = factory
        self.settings = settings
        register_handlers(settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_billing = 0.0
        self._next_rollup = 0.0
        self._next_credits = 0.0
        self._next_forecast = 0.0
        self._next_housekeeping = 0.0
        self.payments = self._payments()
        self.limits = LimitKeeper.from_settings(settings)

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
        """Add the events stored since the last step to the meters' hourly rollups, and to the
        limits' counters in the same transactions (``LimitKeeper.fold``): full batches
        until a partial one (the backlog as of now), so that under continuous ingestion the step
        ends and the alerts, the outbox and the webhooks get their turn."""
        total = 0
        while not self.stopping:
            undo: list[Callable[[], None]] = []
            try:
                with session_scope(self.factory) as session:
                    batch = ROLLUP_BATCH if is_postgres(session) else ROLLUP_BATCH_SQLITE
                    applied = fold.apply_pending(session, limit=batch, fold=self.limits.folding(undo))
            except BaseException:
                for step in undo:  # the fold did not commit: take it off the counters again (Redis)
                    step()
                raise
            total += applied
            if applied < batch:
                break
        with session_scope(self.factory) as session:
            event_store.summarize_new_pages(session)  # the new pages' ingestion times, for as-of reads
        return total

    def build_step(self, budget_seconds: float = 2.0) -> bool:
        """Build the rollups of meters created or changed, a chunk of customers per transaction,
        for at most about ``budget_seconds``. True while a build is left for the next step (which
        then comes without waiting for the rollup interval)."""
        with self.factory() as session:
            keys = rollup.building(session)
        deadline = time.monotonic() + budget_seconds
        for key in keys:
            done = False
            while not done and not self.stopping and time.monotonic() < deadline:
                with session_scope(self.factory) as session:
                    done = rollup.build_step(session, key)
            if not done:
                return True
        return False

    def distinct_step(self) -> int:
        """Build the distinct-value sets of the billing periods the subscriptions want (and drop
        those they no longer do), a few sets per transaction; returns the sets built."""
        total = 0
        while not self.stopping:
            with session_scope(self.factory) as session:
                built = rollup.distinct_step(session, utcnow())
            total += built
            if built < rollup.DISTINCT_BUDGET:
                break
        return total

    def credits_step(self) -> int:
        """Observe credit balances: credits.low_balance / credits.depleted once per crossing."""
        return credit_alerts.check_all(self.factory, now=utcnow())

    def forecast_step(self) -> int:
        """Refresh the stored upcoming-invoice totals of customers with new usage or a new period."""
        return forecast.refresh(self.factory, now=utcnow())

    def notify_step(self) -> int:
        """Alerts, then the outbox, then webhooks, in rounds of ``ALERT_BATCH`` customers: the
        alerts a round fires go out before the next round, so the first alerts of a burst are
        sent while later customers are still being evaluated. A round that fires nothing sends
        nothing; the outbox and webhooks are drained once after the last round in any case (a
        fold notes every customer with new usage, most of them crossing nothing). Returns the
        thresholds fired."""
        fired = 0
        while not self.stopping:
            evaluated = n = 0
            try:
                evaluated, n = evaluate_changed(self.factory, limit=ALERT_BATCH)
                fired += n
            except Exception:
                log.exception("alert evaluation failed; retrying")
            last = evaluated < ALERT_BATCH
            if n or last:
                self._drain()
            if last:
                break
        return fired

    def _drain(self) -> None:
        """The outbox, then the webhook deliveries due."""
        try:
            self.outbox_step()
        except Exception:
            log.exception("outbox drain failed; retrying")
        try:
            self.webhooks_step()
        except Exception:
            log.exception("webhook deliveries failed; retrying")

    def outbox_step(self) -> int:
        total = 0
        while not self.stopping:
            delivered, failed = outbox.drain(self.factory)
            total += delivered
            if delivered + failed == 0 or failed:
                break
        return total

    def webhooks_step(self) -> int:
        """Send the due webhook deliveries (each endpoint's failures retried on their own schedule)."""
        total = 0
        while not self.stopping:
            delivered, failed = deliver_due(self.factory, self.settings)
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

    def scheduled_step(self) -> None:
        """The rollups and the billing run, each when its interval has passed."""
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
            building = False
            try:
                building = self.build_step()
            except Exception:
                log.exception("building meter rollups failed; retrying")
            try:
                self.distinct_step()
            except Exception:
                log.exception("building the billing periods' distinct values failed; retrying")
            try:
                with session_scope(self.factory) as session:
                    purge_ended(session, utcnow())
            except Exception:
                log.exception("purging ended limit counters failed; retrying")
            # A meter's rollups being built: the next chunks at the next pass, not an interval later.
            self._next_rollup = now if building else now + self.settings.rollup_interval_seconds
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

    def run_once(self) -> None:
        """One pass of everything, in order (``tollway worker --once``)."""
        self.scheduled_step()
        self.notify_step()

    def _notify_loop(self) -> None:
        while not self.stopping:
            self.notify_step()
            self._stop.wait(self.settings.outbox_poll_interval_seconds)

    def run(self) -> None:
        log.info(
            "worker started (billing every %s, outbox every %ss)",
            f"{self.settings.billing_run_interval_seconds}s" if self.billing_enabled else "- off",
            self.settings.outbox_poll_interval_seconds,
        )
        if self.payments is not None:  # a slow provider must never delay billing: its own thread
            self.payments.start_thread(self._stop, self.settings.outbox_poll_interval_seconds)
        # Alerts, the outbox and webhooks in their own thread: a long billing run or rollup never
        # delays a notification, and a slow receiver never delays billing.
        notifier = threading.Thread(target=self._notify_loop, name="tollway-notify", daemon=True)
        notifier.start()
        while not self.stopping:
            self.scheduled_step()
            self._stop.wait(min(self.settings.outbox_poll_interval_seconds, self.settings.rollup_interval_seconds))
        notifier.join(timeout=30)
        log.info("worker stopped")

    def start_thread(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, name="tollway-worker", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
