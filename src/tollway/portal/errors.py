from __future__ import annotations

from tollway.errors import Conflict, Forbidden, NotFound

PORTAL_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tollway-portal"'}


class PortalResourceNotFound(NotFound):
    """Another customer's resource (or none): the portal never says which."""

    code = "not_found"

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} '{ident}' does not exist")


class PortalTokenNotAllowed(Forbidden):
    code = "portal_token_not_allowed"

    def __init__(self) -> None:
        super().__init__("a portal token may only call the /v1/portal/ routes")


class SelfServiceDisabled(Forbidden):
    code = "self_service_disabled"


class AlreadySubscribed(Conflict):
    code = "already_subscribed"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(
            f"the customer already has the active subscription '{subscription_id}': change its plan instead"
        )
