"""All tables, imported here so that Alembic and ``Base.metadata`` see every one."""

from tollway.models.api_key import ApiKey
from tollway.models.customer import Customer
from tollway.models.event import Event
from tollway.models.idempotency import IdempotencyRecord
from tollway.models.meter import Meter

__all__ = ["ApiKey", "Customer", "Event", "IdempotencyRecord", "Meter"]
