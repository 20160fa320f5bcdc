from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from tollway.auth.dependencies import require_admin
from tollway.deps import get_session
from tollway.settings import service
from tollway.settings.schemas import ProviderSettings

router = APIRouter(prefix="/v1/settings", tags=["settings"], dependencies=[Depends(require_admin)])
SessionDep = Annotated[Session, Depends(get_session)]


@router.get("", response_model=ProviderSettings)
def get_settings(session: SessionDep) -> ProviderSettings:
    return service.get_provider_settings(session)


@router.put("", response_model=ProviderSettings)
def put_settings(body: ProviderSettings, session: SessionDep) -> ProviderSettings:
    """Merge: sections and fields left out keep their values; a field given replaces its value."""
    return service.update_provider_settings(session, body)
