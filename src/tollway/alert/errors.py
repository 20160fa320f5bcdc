from __future__ import annotations

from tollway.errors import Conflict, NotFound


class AlertNotFound(NotFound):
    code = "alert_not_found"

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"alert '{alert_id}' does not exist")


class AlertExists(Conflict):
    code = "alert_exists"

    def __init__(self, alert_id: str) -> None:
        super().__init__(f"alert '{alert_id}' already exists")
