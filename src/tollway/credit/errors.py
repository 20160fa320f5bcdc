"""Credit errors, named after the condition."""

from __future__ import annotations

from tollway.errors import Conflict, FieldError, NotFound


class CreditGrantNotFound(NotFound):
    code = "credit_grant_not_found"

    def __init__(self, grant_id: str) -> None:
        super().__init__(f"credit grant '{grant_id}' does not exist")


class CreditGrantConflict(Conflict):
    """A grant id that exists with another body (or for another customer)."""

    code = "credit_grant_conflict"

    def __init__(self, grant_id: str, fields: list[str]) -> None:
        names = ", ".join(fields)
        super().__init__(
            f"credit grant '{grant_id}' already exists with another {names}",
            errors=[FieldError(name, "differs from the existing grant with this id") for name in fields],
        )


class CreditGrantAlreadyVoided(Conflict):
    code = "credit_grant_already_voided"

    def __init__(self, grant_id: str) -> None:
        super().__init__(f"credit grant '{grant_id}' is already voided")
