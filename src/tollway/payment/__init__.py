"""Payments: finalized invoices collected through a payment provider (Stripe first), payment status
back through the provider's signed webhooks. See docs/payments.md."""
