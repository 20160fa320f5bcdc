"""Tollway SDK: meter your API's usage and send it to a Tollway server.

from tollway_sdk import Client
client = Client("http://127.0.0.1:8080", "tw_ingest_...")
client.track("acme", "api_call", {"endpoint": "/v1/forecast", "status": 200})
"""

from __future__ import annotations

__version__ = "0.1.0"

from tollway_sdk.aio import AsyncClient
from tollway_sdk.asgi import TollwayASGIMiddleware
from tollway_sdk.client import Client, Stats
from tollway_sdk.limits import Decision, LimitChecker
from tollway_sdk.middleware import ResponseInfo
from tollway_sdk.wsgi import TollwayWSGIMiddleware

__all__ = [
    "AsyncClient",
    "Client",
    "Decision",
    "LimitChecker",
    "ResponseInfo",
    "Stats",
    "TollwayASGIMiddleware",
    "TollwayWSGIMiddleware",
    "__version__",
]
