"""The event backends the conformance suite runs against, each in every mode it reads in.

A backend is a factory from the test's database URL (``db_url``: a fresh, migrated database per
test; a backend that keeps events elsewhere ignores it or keeps only its bookkeeping there) and
``use_rollups`` to an :class:`tollway.event.backend.EventBackend`. To run the suite against a new
backend, add its factory to :data:`FACTORIES` under a name in ``tests.conftest.BACKENDS`` (the
``backend`` parameter), then ``pytest tests/conformance --backend <name>``.

Modes: ``settled`` brings the aggregates up to date after every write (``settle()``), ``pending``
never does (reads combine aggregates with what is not aggregated yet), ``raw`` reads only the raw
events (as while a meter's rollups are being built).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import pytest

from tollway.db import make_engine
from tollway.event.backend import EventBackend, SqlEventBackend
from tollway.event.ingest import IncomingEvent, IngestResult, ingest
from tollway.kit.time import utcnow
from tollway.meter.definition import MeterDefinition

Factory = Callable[[str, bool], tuple[EventBackend, Callable[[], None]]]


def _sql(db_url: str, use_rollups: bool) -> tuple[EventBackend, Callable[[], None]]:
    engine = make_engine(db_url)
    return SqlEventBackend(engine, use_rollups=use_rollups), engine.dispose


FACTORIES: dict[str, Factory] = {"sqlite": _sql, "postgresql": _sql}

MODES = {"settled": (True, True), "pending": (True, False), "raw": (False, False)}


@dataclass
class Harness:
    """The backend under test, written to as the application writes (through ``ingest``), and
    settled after every write in the ``settled`` mode."""

    backend: EventBackend
    settles: bool

    def store(self, events: Sequence[IncomingEvent], ingested_at: datetime) -> int:
        stored = self.backend.store(events, ingested_at)
        if self.settles:
            self.backend.settle()
        return stored

    def ingest(self, raw: Sequence[object]) -> IngestResult:
        return ingest(self, raw, now=utcnow())

    def void(self, *event_ids: str) -> list[datetime | None]:
        at = [self.backend.void(event_id) for event_id in event_ids]
        if self.settles:
            self.backend.settle()
        return at

    def register(self, *meters: MeterDefinition) -> None:
        for meter in meters:
            self.backend.register_meter(meter)
        self.backend.settle()  # a backend may build a new meter's aggregates over older events


@pytest.fixture(params=list(MODES))
def event_backend(request: pytest.FixtureRequest, backend: str, db_url: str) -> Iterator[Harness]:
    use_rollups, settles = MODES[request.param]
    made, close = FACTORIES[backend](db_url, use_rollups)
    try:
        yield Harness(made, settles)
    finally:
        close()
