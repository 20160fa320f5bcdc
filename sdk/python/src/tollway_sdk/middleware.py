"""What the ASGI and WSGI middlewares share: turning one finished request into one event.

The rule for everything here: Tollway must never break or slow the host API.
Every failure — a hook raising, a hook returning nonsense, ``track`` refusing
the event — is logged (throttled) and counted in ``client.stats.errors``, and
the request goes on untouched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tollway_sdk._json import dumps
from tollway_sdk._log import Throttle
from tollway_sdk.client import Stats
from tollway_sdk.limits import Decision, LimitChecker

__all__ = ["ResponseInfo", "Tracker"]


class Tracker(Protocol):
    """A :class:`~tollway_sdk.Client` or :class:`~tollway_sdk.AsyncClient`."""

    @property
    def stats(self) -> Stats: ...

    def track(
        self,
        customer: str,
        type: str,
        properties: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> str | None: ...

    @property
    def limits(self) -> LimitChecker: ...


@dataclass(frozen=True)
class ResponseInfo:
    """What the ``properties(request, response)`` hook is given as ``response``."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased names
    request_bytes: int = 0
    response_bytes: int = 0
    duration_ms: float = 0.0
    #: True when the application raised instead of finishing the response.
    error: bool = False


Identify = Callable[[Any], "str | None"]
PropertiesHook = Callable[[Any, ResponseInfo], "Mapping[str, Any] | None"]
RouteHook = Callable[[Any], "str | None"]


class Metering:
    def __init__(
        self,
        client: Tracker,
        identify: Identify,
        properties: PropertiesHook | None,
        event_type: str,
        route: RouteHook | None,
    ) -> None:
        if not callable(identify):
            raise TypeError("identify must be a callable: identify(request) -> customer id or None")
        if properties is not None and not callable(properties):
            raise TypeError("properties must be a callable: properties(request, response) -> dict")
        if route is not None and not callable(route):
            raise TypeError("route must be a callable: route(request) -> route template or None")
        if not isinstance(event_type, str) or not event_type:
            raise ValueError("event_type must be a non-empty string")
        self.client = client
        self.identify = identify
        self.properties = properties
        self.event_type = event_type
        self.route = route
        self.throttle = Throttle()
        self.enforce_limits = False
        self.limits_meter: str | None = None

    def enforce(self, enforce_limits: bool, limits_meter: str | None) -> None:
        if limits_meter is not None and (not isinstance(limits_meter, str) or not limits_meter):
            raise ValueError("limits_meter must be a meter key")
        self.enforce_limits = bool(enforce_limits)
        self.limits_meter = limits_meter

    def customer_of(self, request: Any) -> str | None:
        """``identify(request)`` for enforcement: None when it fails or names nobody."""
        try:
            customer = self.identify(request)
        except Exception:
            self.failed("identify hook raised (limits not enforced for this request)")
            return None
        return customer if isinstance(customer, str) and customer else None

    def refusal(self, decision: Decision) -> tuple[int, list[tuple[str, str]], bytes]:
        """The answer to a request refused by Tollway: 429 with Retry-After (seconds to the
        reset of the limit), or 503 when Tollway could not be reached and the client fails
        closed."""
        if decision.reason == "unreachable":
            body = {
                "type": "urn:tollway:problem:limits_unavailable",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "usage limits could not be checked",
            }
            status, retry = 503, 1
        else:
            body, status, retry = decision.problem(), 429, decision.retry_after()
        data = dumps(body)
        headers = [
            ("content-type", "application/problem+json"),
            ("retry-after", str(retry)),
            ("content-length", str(len(data))),
        ]
        return status, headers, data

    def failed(self, what: str) -> None:
        """Log (with traceback, throttled) and count a swallowed failure."""
        # Logging itself failing must not escape either.
        with contextlib.suppress(Exception):
            self.client.stats.add(errors=1)
            self.throttle.log(what, logging.ERROR, "Tollway middleware: %s (request not affected)", what, exc_info=True)

    def custom_route(self, request: Any) -> str | None:
        if self.route is None:
            return None
        try:
            value = self.route(request)
        except Exception:
            self.failed("route hook raised")
            return None
        return value if isinstance(value, str) and value else None

    def emit(
        self,
        request: Any,
        *,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        request_bytes: int,
        response_bytes: int,
        headers: Callable[[], Mapping[str, str]],
        error: bool,
    ) -> None:
        """Identify the customer and track the event. Never raises."""
        try:
            try:
                customer = self.identify(request)
            except Exception:
                self.failed("identify hook raised")
                return
            if customer is None or customer == "":
                self.client.stats.add(unidentified=1)
                return
            if not isinstance(customer, str):
                self.client.stats.add(errors=1)
                self.throttle.log(
                    "identify-type",
                    logging.ERROR,
                    "Tollway middleware: identify returned %s, not a str; request not metered",
                    type(customer).__name__,
                )
                return
            props: dict[str, Any] = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration_ms, 3),
                "request_bytes": request_bytes,
                "response_bytes": response_bytes,
            }
            if self.properties is not None:
                try:
                    extra = self.properties(
                        request,
                        ResponseInfo(
                            status=status,
                            headers=headers(),
                            request_bytes=request_bytes,
                            response_bytes=response_bytes,
                            duration_ms=duration_ms,
                            error=error,
                        ),
                    )
                except Exception:
                    # The event is still sent with the standard properties: an
                    # undercounted request is worse than one missing extras.
                    self.failed("properties hook raised")
                    extra = None
                if isinstance(extra, Mapping):
                    props.update(extra)
                elif extra is not None:
                    self.client.stats.add(errors=1)
                    self.throttle.log(
                        "properties-type",
                        logging.ERROR,
                        "Tollway middleware: properties hook returned %s, not a mapping; ignored",
                        type(extra).__name__,
                    )
            self.client.track(customer, self.event_type, props)
        except Exception:
            self.failed("tracking the request failed")
