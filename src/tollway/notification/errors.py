from __future__ import annotations

from tollway.errors import Conflict, NotFound


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"webhook endpoint '{endpoint_id}' does not exist")


class WebhookEndpointExists(Conflict):
    code = "webhook_endpoint_exists"

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"webhook endpoint '{endpoint_id}' already exists")


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"webhook delivery '{delivery_id}' does not exist")
