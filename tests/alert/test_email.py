"""Alert e-mails through a real SMTP server (aiosmtpd) on loopback: text and HTML parts with the
meter name, threshold, value and period; login; a server that is down is retried, alone."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import free_port
from tollway.alert.evaluate import evaluate_changed
from tollway.config import Settings
from tollway.meter import fold
from tollway.models import OutboxMessage
from tollway.notification import outbox
from tollway.notification.email import parse_smtp_url
from tollway.worker import register_handlers

from .conftest import events, now_in_period, setup_plan


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


def _auth(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"mailer" and auth_data.password == b"s3cr:t"
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=_auth, auth_require_tls=False
    )
    controller.start()
    yield inbox, port
    controller.stop()


def test_smtp_urls() -> None:
    t = parse_smtp_url("smtps://user%40x:p%3Ass@mail.example.com")
    assert (t.host, t.port, t.tls, t.username, t.password) == ("mail.example.com", 465, True, "user@x", "p:ss")
    assert parse_smtp_url("smtp://localhost:2525").port == 2525
    with pytest.raises(ValueError, match="TOLLWAY_SMTP_URL"):
        parse_smtp_url("http://mail.example.com")


def test_alert_email_reaches_the_customer(api: TestClient, session_factory, settings: Settings, smtp):  # type: ignore[no-untyped-def]
    inbox, port = smtp
    setup_plan(api, notification_target=10)
    events(api, 6)
    with session_factory() as session:
        fold.apply_pending(session)
        session.commit()
    assert evaluate_changed(session_factory, now=now_in_period())[1] == 1
    r = api.put("/v1/settings", json={"company": {"name": "Weather Co", "email": "billing@weather.example.com"}})
    assert r.status_code == 200, r.text
    mail_settings = settings.model_copy(update={"smtp_url": f"smtp://mailer:s3cr%3At@127.0.0.1:{port}"})
    register_handlers(mail_settings)
    try:
        outbox.drain(session_factory)
    finally:
        register_handlers(settings)
    (message,) = inbox.messages
    # From the provider's settings (no TOLLWAY_SMTP_FROM), with a blind copy to the provider.
    assert inbox.envelopes == [("billing@weather.example.com", ["ops@acme.example.com", "billing@weather.example.com"])]
    assert message["To"] == "ops@acme.example.com" and message["From"] == "billing@weather.example.com"
    assert message["Bcc"] is None
    assert "50%" in message["Subject"] and "API calls" in message["Subject"]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert "API calls" in part and "Acme" in part and "Weather Co" in part
        assert "50% of the target (5)" in part  # threshold
        assert "6" in part  # current value
        # the period in the customer's zone (the first one starts with the subscription, 00:00 UTC)
        assert "2026-11-01 01:00 CET to 2026-12-01 00:00 CET" in part
    assert "<table" in html


def test_smtp_down_is_retried_without_rerunning_the_webhook_fan_out(api, session_factory, settings):  # type: ignore[no-untyped-def]
    setup_plan(api, notification_target=10)
    events(api, 6)
    with session_factory() as session:
        fold.apply_pending(session)
        session.commit()
    evaluate_changed(session_factory, now=now_in_period())
    down = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"})
    register_handlers(down)
    try:
        now = datetime.now(UTC) + timedelta(seconds=1)
        # subscription.created and alert.triggered went; the e-mail waits
        assert outbox.drain(session_factory, now=now) == (2, 1)
        with session_factory() as session:
            mail = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "email.alert")).one()
            assert mail.delivered_at is None and mail.attempts == 1 and "email.alert" in (mail.last_error or "")
    finally:
        register_handlers(settings)
