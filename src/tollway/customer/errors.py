from __future__ import annotations

from tollway.errors import Conflict, NotFound

EVENT_COUNT_CAP = 10_000


class CustomerNotFound(NotFound):
    code = "customer_not_found"

    def __init__(self, customer_id: str, events: int = 0) -> None:
        message = f"customer '{customer_id}' does not exist"
        if events:
            count = f"{events:,}+" if events >= EVENT_COUNT_CAP else f"{events:,}"
            message += (
                f"; {count} events were received for this id: they are kept, and bill once a customer"
                " with this id is created and subscribed"
            )
        super().__init__(message)


class CustomerAlreadyExists(Conflict):
    code = "customer_exists"

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer '{customer_id}' already exists")
