"""``/v1/api-keys``: list (never the key), create (the key shown once), revoke (refused at once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tollway.auth import keys
from tollway.auth.dependencies import require_admin
from tollway.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from tollway.deps import SessionDep
from tollway.kit.listing import ListParams, list_params
from tollway.kit.pagination import Page
from tollway.kit.time import utcnow
from tollway.models import ApiKey

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], dependencies=[Depends(require_admin)])


def to_schema(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        scope=row.scope,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.get("", response_model=Page[ApiKeyOut])
def list_api_keys(session: SessionDep, params: Annotated[ListParams, Depends(list_params)]) -> Page[ApiKeyOut]:
    rows = keys.list_keys(session, limit=params.limit, after=params.after)
    return Page[ApiKeyOut].of(rows, params.limit, "id", to_schema)


@router.post("", status_code=201, response_model=ApiKeyCreated)
def create_api_key(body: ApiKeyCreate, session: SessionDep) -> ApiKeyCreated:
    row, secret = keys.create_key(session, scope=body.scope, name=body.name)
    return ApiKeyCreated(**to_schema(row).model_dump(), key=secret)


@router.post("/{key_id}/revoke", response_model=ApiKeyOut)
def revoke_api_key(key_id: str, session: SessionDep) -> ApiKeyOut:
    return to_schema(keys.revoke_key(session, key_id, now=utcnow()))
