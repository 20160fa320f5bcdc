"""Payment errors, named after the condition."""

from __future__ import annotations

from tollway.errors import FieldError, NotFound, TollwayError


class PaymentsNotConfigured(NotFound):
    code = "payments_not_configured"

    def __init__(self, provider: str) -> None:
        super().__init__(f"payments through {provider} are not configured on this server")


class InvalidWebhookSignature(TollwayError):
    status = 400
    code = "invalid_webhook_signature"

    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"{header}: {reason}", errors=[FieldError(header, reason)])
