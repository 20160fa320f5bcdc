"""Errors raised by the pricing engine.

Both carry ``errors``: a tuple of ``(field, message)`` pairs whose field names
follow the contract's JSON paths (``"charges[0].tiers[1].up_to"``), so that an
endpoint can turn them into the problem+json ``errors`` list as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PricingError", "PricingInputError", "PricingValidationError"]


class PricingError(ValueError):
    """Base class: something given to the pricing engine is not acceptable."""

    def __init__(self, errors: Iterable[tuple[str, str]], title: str | None = None) -> None:
        self.errors: tuple[tuple[str, str], ...] = tuple(errors)
        summary = "; ".join(f"{field}: {message}" if field else message for field, message in self.errors)
        super().__init__(f"{title}: {summary}" if title else summary)


class PricingValidationError(PricingError):
    """A charge, fee or revenue-share definition is invalid (bad plan JSON)."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        super().__init__(errors, "invalid pricing definition")


class PricingInputError(PricingError):
    """The usage given to price a charge or a plan does not fit it (bad quantities or values)."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        super().__init__(errors, "invalid pricing input")
