"""All tables, imported here so that Alembic and ``Base.metadata`` see every one."""

from tollway.models.alert import Alert
from tollway.models.alert_event import AlertEvent
from tollway.models.api_key import ApiKey
from tollway.models.bundle import Bundle
from tollway.models.bundle_product import BundleProduct
from tollway.models.credit_alert_state import CreditAlertState
from tollway.models.credit_grant import CreditGrant
from tollway.models.credit_ledger import CreditLedgerEntry
from tollway.models.customer import Customer
from tollway.models.distinct_period import DistinctPeriod, DistinctValue
from tollway.models.event import Event
from tollway.models.idempotency import IdempotencyRecord
from tollway.models.invoice import Invoice
from tollway.models.invoice_line import InvoiceLine
from tollway.models.invoice_sequence import InvoiceSequence
from tollway.models.limit_counter import LimitCounter
from tollway.models.limit_notice import LimitNotice
from tollway.models.limit_profile import LimitProfile
from tollway.models.meter import Meter
from tollway.models.meter_rollup import MeterRollup
from tollway.models.operator import ConsoleSession, Operator
from tollway.models.outbox import OutboxMessage
from tollway.models.payment_inbox import PaymentInboxEvent
from tollway.models.payment_link import PaymentLink
from tollway.models.plan import Plan
from tollway.models.plan_meter import PlanMeter
from tollway.models.portal_session import PortalSession
from tollway.models.product import Product
from tollway.models.provider_settings import ProviderSettingsRow
from tollway.models.rollup_watermark import RollupWatermark
from tollway.models.subscription import Subscription
from tollway.models.upcoming_total import UpcomingTotal
from tollway.models.usage_change import UsageChange
from tollway.models.webhook_delivery import WebhookDelivery
from tollway.models.webhook_endpoint import WebhookEndpoint

__all__ = [
    "Alert",
    "AlertEvent",
    "ApiKey",
    "Bundle",
    "BundleProduct",
    "ConsoleSession",
    "CreditAlertState",
    "CreditGrant",
    "CreditLedgerEntry",
    "Customer",
    "DistinctPeriod",
    "DistinctValue",
    "Event",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceLine",
    "InvoiceSequence",
    "LimitCounter",
    "LimitNotice",
    "LimitProfile",
    "Meter",
    "MeterRollup",
    "Operator",
    "OutboxMessage",
    "PaymentInboxEvent",
    "PaymentLink",
    "Plan",
    "PlanMeter",
    "PortalSession",
    "Product",
    "ProviderSettingsRow",
    "RollupWatermark",
    "Subscription",
    "UpcomingTotal",
    "UsageChange",
    "WebhookDelivery",
    "WebhookEndpoint",
]
