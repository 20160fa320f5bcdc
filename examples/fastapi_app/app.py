"""A small weather API metered with Tollway.

Every request made with a known API key becomes one ``api_call`` event for the
customer who owns the key, with the route template, status, duration and sizes;
the forecast endpoint also reports how many days it returned. Requests without
a valid key are answered 401 and are not metered.

Configuration (environment):
    TOLLWAY_URL                 Tollway server, default http://127.0.0.1:8080
    TOLLWAY_INGEST_KEY          a key created with `tollway keys create --scope ingest`
    TOLLWAY_ENCRYPTION_KEY      optional: encrypt the `user` property in the SDK
                                (generate one with `python -c "from tollway_sdk.crypto
                                import generate_key; print(generate_key())"`)

Run:  uvicorn app:app --port 8000      (from this directory)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from tollway_sdk import Client, ResponseInfo, TollwayASGIMiddleware

# Demo API keys of the provider's own customers. A real API looks them up in its database.
API_KEYS = {
    "demo-key-acme": {"customer": "acme", "user": "ops@acme.test"},
    "demo-key-globex": {"customer": "globex", "user": "dev@globex.test"},
}

encryption_key = os.environ.get("TOLLWAY_ENCRYPTION_KEY")
tollway = Client(
    os.environ.get("TOLLWAY_URL", "http://127.0.0.1:8080"),
    os.environ.get("TOLLWAY_INGEST_KEY", "missing-ingest-key"),
    flush_interval=1.0,
    encrypt_fields=("user",) if encryption_key else (),
    encryption_key=encryption_key,
)


def authenticate(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> dict[str, str]:
    account = API_KEYS.get(x_api_key or "")
    if account is None:
        raise HTTPException(status_code=401, detail="missing or unknown X-API-Key")
    request.state.account = account  # read by identify() after the response
    return account


def identify(request: Request) -> str | None:
    account = getattr(request.state, "account", None)
    return account["customer"] if account else None


def extra_properties(request: Request, response: ResponseInfo) -> Mapping[str, Any]:
    props: dict[str, Any] = {"user": request.state.account["user"]}
    days = response.headers.get("x-forecast-days")
    if days is not None:
        props["days"] = int(days)
    return props


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    tollway.close()  # deliver what is still queued before the process exits


app = FastAPI(title="Weather API (metered with Tollway)", lifespan=lifespan)
app.add_middleware(TollwayASGIMiddleware, client=tollway, identify=identify, properties=extra_properties)

Account = Annotated[dict[str, str], Depends(authenticate)]


@app.get("/v1/forecast/{city}")
def forecast(city: str, account: Account, days: Annotated[int, Query(ge=1, le=14)] = 3) -> JSONResponse:
    base = sum(map(ord, city)) % 15  # a made-up but stable forecast
    body = {"city": city, "days": [{"day": d, "celsius": base + d % 4} for d in range(days)]}
    return JSONResponse(body, headers={"X-Forecast-Days": str(days)})


@app.get("/v1/cities/{city}")
def city_info(city: str, account: Account) -> dict[str, str]:
    return {"city": city, "timezone": "Europe/Rome"}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}  # no key: not metered (counted as unidentified)
