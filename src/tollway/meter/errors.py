from __future__ import annotations

from tollway.errors import Conflict, NotFound


class MeterNotFound(NotFound):
    code = "meter_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"meter '{key}' does not exist")


class MeterAlreadyExists(Conflict):
    code = "meter_exists"

    def __init__(self, key: str) -> None:
        super().__init__(f"meter '{key}' already exists")


class MeterInUse(Conflict):
    code = "meter_in_use"

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"meter '{key}' cannot be changed: {reason}")
