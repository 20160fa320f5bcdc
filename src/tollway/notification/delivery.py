"""Sending webhook deliveries: at least once, signed per Standard Webhooks, on a retry schedule.

:func:`deliver_due` claims due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
serializes writers), leases them (``next_attempt_at`` moves past the timeout, so a worker that
dies mid-send leaves them to be retried, never lost), commits, then POSTs them in parallel
outside any transaction (endpoints in parallel, each endpoint's deliveries one after the other in
the order their messages were emitted), and records each outcome:

- a 2xx marks the delivery ``delivered`` and resets the endpoint's failure streak;
- anything else (non-2xx, 3xx included since redirects are not followed, timeout after
  ``TOLLWAY_WEBHOOK_TIMEOUT_SECONDS`` = 10 s, connection error, an address refused by the SSRF
  guard) is retried after :data:`RETRY_DELAYS` (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight
  attempts over 27.6 hours), then marked ``failed`` (``POST /v1/webhook-deliveries/{id}/retry``
  starts a fresh schedule).

Every attempt of a message carries the same ``webhook-id`` (``msg_<outbox id>``) and a fresh
``webhook-timestamp`` and signature (``standardwebhooks``). An endpoint whose attempts have all
failed for ``TOLLWAY_WEBHOOK_DISABLE_AFTER_SECONDS`` (24 h) and at least
``TOLLWAY_WEBHOOK_DISABLE_AFTER_FAILURES`` (20) times in a row is disabled; its pending
deliveries wait and resume when it is re-enabled (``PATCH {"status":"enabled"}``).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from tollway import __version__
from tollway.config import Settings
from tollway.db import is_postgres
from tollway.kit.time import utcnow
from tollway.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from tollway.notification.service import endpoint_secret, message_body, message_public_id
from tollway.notification.urls import UnsafeUrl, check_destination

log = logging.getLogger("tollway.webhooks")

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""Delay after the 1st, 2nd... failed attempt of a schedule; after the last one the delivery fails."""
PARALLEL_SENDS = 8
LEASE_SECONDS = 60.0
"""A claimed delivery is left alone by other workers for the timeout plus this long."""


def next_delay(failed_in_schedule: int) -> timedelta | None:
    """The delay after the n-th failed attempt of a schedule (1-based), None when it is over."""
    if failed_in_schedule < 1 or failed_in_schedule > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[failed_in_schedule - 1]


@dataclass
class Job:
    delivery_id: int
    endpoint_id: str
    url: str
    secret: str | None
    msg_id: str
    body: bytes
    problem: str | None = None  # set when the job cannot be attempted (e.g. the secret cannot be read)


@dataclass
class Outcome:
    delivery_id: int
    endpoint_id: str
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted: bool = True


def _claim(factory: sessionmaker[Session], settings: Settings, now: datetime, batch: int) -> list[Job]:
    lease = now + timedelta(seconds=settings.webhook_timeout_seconds + LEASE_SECONDS)
    jobs: list[Job] = []
    with factory() as session:
        stmt = (
            select(WebhookDelivery, WebhookEndpoint, OutboxMessage)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(OutboxMessage, OutboxMessage.id == WebhookDelivery.message_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.status == "enabled",
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(batch)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
        for delivery, endpoint, message in session.execute(stmt).all():
            delivery.next_attempt_at = lease
            job = Job(
                delivery.id,
                endpoint.id,
                endpoint.url,
                None,
                message_public_id(message.id),
                message_body(message.id, message.topic, message.created_at, message.payload),
            )
            try:
                job.secret = endpoint_secret(endpoint, secret_key=settings.secret_key)
            except Exception as exc:  # no key, or another key: recorded as the attempt's error
                job.problem = str(exc)
            jobs.append(job)
        session.commit()
    return jobs


def send(job: Job, settings: Settings, client: httpx.Client) -> Outcome:
    """One attempt: the SSRF check, then the signed POST."""
    started = time.perf_counter()

    def outcome(ok: bool, code: int | None, error: str | None) -> Outcome:
        return Outcome(job.delivery_id, job.endpoint_id, ok, code, error, int((time.perf_counter() - started) * 1000))

    if job.problem or job.secret is None:
        return outcome(False, None, job.problem or "no signing secret")
    try:
        check_destination(job.url, allow_private=settings.webhook_allow_private_urls)
    except UnsafeUrl as exc:
        return outcome(False, None, str(exc))
    sent_at = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": f"Tollway-Webhooks/{__version__}",
        "webhook-id": job.msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(job.secret).sign(job.msg_id, sent_at, job.body.decode()),
    }
    try:
        response = client.post(job.url, content=job.body, headers=headers)
    except httpx.TimeoutException:
        return outcome(False, None, f"timeout: no answer within {settings.webhook_timeout_seconds:g} s")
    except httpx.HTTPError as exc:
        return outcome(False, None, f"{type(exc).__name__}: {exc}"[:1000])
    if 200 <= response.status_code < 300:
        return outcome(True, response.status_code, None)
    snippet = response.text[:200].strip()
    return outcome(False, response.status_code, f"HTTP {response.status_code}" + (f": {snippet}" if snippet else ""))


def _record(factory: sessionmaker[Session], settings: Settings, outcomes: list[Outcome], now: datetime) -> None:
    with factory() as session:
        for o in outcomes:
            delivery = session.get(WebhookDelivery, o.delivery_id)
            endpoint = session.get(WebhookEndpoint, o.endpoint_id)
            if delivery is None or endpoint is None:  # deleted meanwhile
                continue
            if not o.attempted:
                delivery.next_attempt_at = now
                continue
            delivery.attempts += 1
            delivery.last_status_code = o.status_code
            delivery.last_error = o.error
            delivery.last_duration_ms = o.duration_ms
            delivery.last_attempt_at = now
            if o.ok:
                delivery.status = "delivered"
                delivery.delivered_at = now
                delivery.next_attempt_at = None
                endpoint.consecutive_failures = 0
                endpoint.failing_since = None
                continue
            delay = next_delay(delivery.attempts - delivery.schedule_start)
            if delay is None:
                delivery.status = "failed"
                delivery.next_attempt_at = None
            else:
                delivery.next_attempt_at = now + delay
            endpoint.consecutive_failures += 1
            endpoint.failing_since = endpoint.failing_since or now
            if (
                endpoint.status == "enabled"
                and endpoint.consecutive_failures >= settings.webhook_disable_after_failures
                and (now - endpoint.failing_since).total_seconds() >= settings.webhook_disable_after_seconds
            ):
                endpoint.status = "disabled"
                endpoint.disabled_reason = (
                    f"disabled after {endpoint.consecutive_failures} failed attempts in a row since "
                    f"{endpoint.failing_since.isoformat()} (last: {o.error})"
                )[:1000]
                log.warning("webhook endpoint %s disabled: %s", endpoint.id, endpoint.disabled_reason)
        session.commit()


def deliver_due(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None, batch: int = 200
) -> tuple[int, int]:
    """Attempt one batch of due deliveries. Returns (delivered, failed attempts)."""
    fixed_now = now
    jobs = _claim(factory, settings, now or utcnow(), batch)
    if not jobs:
        return 0, 0
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    by_endpoint: dict[str, list[Job]] = {}
    for job in jobs:  # claimed oldest first
        by_endpoint.setdefault(job.endpoint_id, []).append(job)

    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:

        def send_in_order(queue: list[Job]) -> list[Outcome]:
            """Stops at the endpoint's first failure, or when the lease runs short: the rest are
            released untouched (due at once, no attempt counted)."""
            out: list[Outcome] = []
            started = time.monotonic()
            for job in queue:
                if (out and not out[-1].ok) or time.monotonic() - started > LEASE_SECONDS / 2:
                    out.append(Outcome(job.delivery_id, job.endpoint_id, False, None, None, 0, attempted=False))
                    continue
                out.append(send(job, settings, client))
            return out

        queues = list(by_endpoint.values())
        if len(queues) == 1:
            results = [send_in_order(queues[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(PARALLEL_SENDS, len(queues))) as pool:
                results = list(pool.map(send_in_order, queues))
    outcomes = [o for result in results for o in result]
    _record(factory, settings, outcomes, fixed_now or utcnow())
    ok = sum(1 for o in outcomes if o.ok)
    return ok, sum(1 for o in outcomes if o.attempted) - ok
