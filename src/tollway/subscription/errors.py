"""Subscription errors, named after the condition."""

from __future__ import annotations

from tollway.errors import Conflict, FieldError, NotFound, ValidationFailed


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"subscription '{subscription_id}' does not exist")


class SubscriptionAlreadyExists(Conflict):
    code = "subscription_exists"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"subscription '{subscription_id}' already exists")


class SubscriptionEnded(Conflict):
    """The subscription is already cancelled, changed to another plan, or over."""

    code = "subscription_ended"

    def __init__(self, subscription_id: str, reason: str) -> None:
        super().__init__(f"subscription '{subscription_id}' {reason}")


class InvalidSubscriptionTime(ValidationFailed):
    code = "invalid_subscription_time"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", [FieldError(field, message)])
