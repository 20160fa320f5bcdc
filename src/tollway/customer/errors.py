from __future__ import annotations

from tollway.errors import Conflict, NotFound


class CustomerNotFound(NotFound):
    code = "customer_not_found"

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer '{customer_id}' does not exist")


class CustomerAlreadyExists(Conflict):
    code = "customer_exists"

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer '{customer_id}' already exists")
