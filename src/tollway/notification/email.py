"""E-mail: alert notifications to the customer (``TOLLWAY_SMTP_URL``), text and HTML parts.

``TOLLWAY_SMTP_URL`` is ``smtp://[user:password@]host[:port]`` (port 25; STARTTLS when the server
offers it) or ``smtps://…`` (TLS from the first byte, port 465). Sender: ``TOLLWAY_SMTP_FROM``,
else the provider's company e-mail from the settings (``GET /v1/settings``), else
``tollway@localhost``.

The outbox handler :class:`AlertMailer` (topic ``email.alert``, emitted when a threshold with the
``email`` channel fires) sends one message to the customer's ``email``, with a blind copy to the
provider's company e-mail when the settings have one; without an SMTP URL, or with neither
address, it does nothing. A failure (server down, refused) is retried by the outbox on
its own, without re-running the webhook fan-out. Sending uses the standard library's
``smtplib`` with a 10 s timeout.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.orm import object_session

from tollway.config import Settings
from tollway.models import Customer, Meter, OutboxMessage
from tollway.settings.service import get_provider_settings

SMTP_TIMEOUT_SECONDS = 10.0
DEFAULT_FROM = "tollway@localhost"


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("TOLLWAY_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://...")
    tls = parts.scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def send_message(url: str, message: EmailMessage) -> None:
    target = parse_smtp_url(url)
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if target.tls:
        client = smtplib.SMTP_SSL(target.host, target.port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        client.ehlo()
        if not target.tls and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        if target.username:
            client.login(target.username, target.password or "")
        client.send_message(message)


def _template(name: str) -> Template:
    return Template(resources.files("tollway.notification").joinpath("templates", name).read_text("utf-8"))


def _date(value: str, tz: ZoneInfo) -> str:
    return datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def alert_email(
    data: dict[str, Any], *, customer: Customer, meter_name: str | None, sender: str, sender_name: str
) -> EmailMessage:
    """The e-mail for an ``alert.triggered`` payload (meter name, threshold, value, period)."""
    tz = ZoneInfo(customer.timezone or "UTC")
    what = meter_name or ("spend" if data["metric"] == "spend" else data["meter"] or "usage")
    if data["source"] == "plan_notification":
        threshold_text = f"{data['threshold']}% of the target ({data['threshold_value']})"
        headline = f"Your {what} usage has reached {data['threshold']}% of your plan's target"
    else:
        threshold_text = data["threshold_value"]
        headline = f"Your {what} has reached {data['threshold_value']}"
    fields = {
        "customer_name": customer.name or customer.id,
        "headline": headline,
        "meter_name": what,
        "threshold_text": threshold_text,
        "value_text": data["value"],
        "period_text": f"{_date(data['period_start'], tz)} to {_date(data['period_end'], tz)}",
        "sender_name": sender_name,
    }
    subject = f"Usage alert: {headline}"
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    if customer.email:
        message["To"] = customer.email
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(_template("alert_email.txt").substitute(fields))
    escaped = {k: html.escape(str(v)) for k, v in {**fields, "subject": subject}.items()}
    message.add_alternative(_template("alert_email.html").substitute(escaped), subtype="html")
    return message


class AlertMailer:
    """Outbox handler for ``email.alert``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, message: OutboxMessage) -> None:
        if not self.settings.smtp_url:
            return
        session = object_session(message)
        assert session is not None
        data = message.payload
        customer = session.get(Customer, data["customer"])
        company = get_provider_settings(session).company
        if customer is None or not (customer.email or company.email):
            return
        meter = session.get(Meter, data["meter"]) if data.get("meter") else None
        meter_name = (meter.name or meter.key) if meter is not None else None
        sender = self.settings.smtp_from or company.email or DEFAULT_FROM
        email = alert_email(
            data, customer=customer, meter_name=meter_name, sender=sender, sender_name=company.name or "Tollway"
        )
        if company.email and company.email != customer.email:
            email["Bcc"] = company.email  # send_message() delivers to it and drops the header
        send_message(self.settings.smtp_url, email)
