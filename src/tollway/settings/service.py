"""Read and merge the provider settings. The caller commits."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.errors import ValidationFailed, validation_errors_from_pydantic
from tollway.kit.time import utcnow
from tollway.models import ProviderSettingsRow
from tollway.models.provider_settings import SINGLETON_ID
from tollway.settings.schemas import ProviderSettings


def get_provider_settings(session: Session) -> ProviderSettings:
    """The settings in force: the stored fields over the defaults."""
    row = session.get(ProviderSettingsRow, SINGLETON_ID)
    return ProviderSettings.model_validate(row.document if row is not None else {})


def merge(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` over ``current``, section by section: sections and fields left out keep their
    values; a field given (null included) replaces the stored one."""
    merged = {name: dict(section) for name, section in current.items() if isinstance(section, dict)}
    for name, fields in changes.items():
        merged.setdefault(name, {}).update(fields)
    return merged


def update_provider_settings(session: Session, changes: ProviderSettings) -> ProviderSettings:
    """Merge the fields the caller set in ``changes`` onto the stored settings (the row is locked
    for the transaction, so two concurrent updates of different fields both land)."""
    stmt = select(ProviderSettingsRow).where(ProviderSettingsRow.id == SINGLETON_ID).with_for_update()
    row = session.scalars(stmt).first()
    if row is None:  # a database whose migration row was deleted by hand
        row = ProviderSettingsRow(id=SINGLETON_ID, document={})
        session.add(row)
    document = merge(row.document or {}, changes.model_dump(mode="json", exclude_unset=True))
    try:
        result = ProviderSettings.model_validate(document)
    except ValidationError as exc:  # a stored value no longer valid; name it like a bad body
        errors = validation_errors_from_pydantic(exc.errors())
        raise ValidationFailed("; ".join(f"{e.field}: {e.message}" for e in errors), errors) from exc
    row.document = result.model_dump(mode="json", exclude_unset=True)  # only what was ever set
    row.updated_at = utcnow()
    session.flush()
    return result
