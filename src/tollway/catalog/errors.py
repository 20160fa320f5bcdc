"""Catalog errors, named after the condition."""

from __future__ import annotations

from collections.abc import Iterable

from tollway.errors import Conflict, FieldError, NotFound, ValidationFailed
from tollway.pricing import PricingError


class ProductNotFound(NotFound):
    code = "product_not_found"

    def __init__(self, code: str) -> None:
        super().__init__(f"product '{code}' does not exist")


class ProductAlreadyExists(Conflict):
    code = "product_exists"

    def __init__(self, code: str) -> None:
        super().__init__(f"product '{code}' already exists")


class BundleNotFound(NotFound):
    code = "bundle_not_found"

    def __init__(self, code: str) -> None:
        super().__init__(f"bundle '{code}' does not exist")


class BundleAlreadyExists(Conflict):
    code = "bundle_exists"

    def __init__(self, code: str) -> None:
        super().__init__(f"bundle '{code}' already exists")


class BundleInUse(Conflict):
    """A product cannot leave a bundle while a published plan charges for it through the bundle."""

    code = "bundle_in_use"

    def __init__(self, bundle: str, reason: str) -> None:
        super().__init__(f"bundle '{bundle}' cannot change: {reason}", errors=[FieldError("products", reason)])


class PlanNotFound(NotFound):
    code = "plan_not_found"

    def __init__(self, code: str) -> None:
        super().__init__(f"plan '{code}' does not exist")


class PlanAlreadyExists(Conflict):
    code = "plan_exists"

    def __init__(self, code: str) -> None:
        super().__init__(f"plan '{code}' already exists")


class PlanAlreadyPublished(Conflict):
    """The operation is only for drafts (publish again, delete)."""

    code = "plan_already_published"

    def __init__(self, code: str, action: str) -> None:
        super().__init__(f"plan '{code}' is published and cannot be {action}")


class PublishedPlanImmutable(Conflict):
    """A published plan is frozen: only its ``end_date`` may change."""

    code = "plan_published"

    def __init__(self, code: str, fields: Iterable[str]) -> None:
        names = list(fields)
        message = "a published plan can change only its end_date"
        super().__init__(
            f"plan '{code}' is published: {', '.join(names)} cannot change ({message})",
            errors=[FieldError(name, message) for name in names],
        )


class PlanIncomplete(ValidationFailed):
    code = "plan_incomplete"

    def __init__(self, code: str, errors: Iterable[FieldError]) -> None:
        found = list(errors)
        super().__init__(
            f"plan '{code}' cannot be published: " + "; ".join(f"{e.field}: {e.message}" for e in found), found
        )


class PlanNotSubscribable(ValidationFailed):
    """The plan cannot take this new subscription (not published, not in its dates, not for this customer)."""

    code = "plan_not_subscribable"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", [FieldError(field, message)])


def invalid(errors: Iterable[FieldError], what: str = "invalid plan") -> ValidationFailed:
    found = list(errors)
    return ValidationFailed(f"{what}: " + "; ".join(f"{e.field}: {e.message}" for e in found), found)


def field_errors(exc: PricingError) -> list[FieldError]:
    """The pricing package's ``(field, message)`` pairs as API field errors."""
    return [FieldError(field or "body", message) for field, message in exc.errors]
