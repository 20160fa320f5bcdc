"""Logging of the ``tollway`` processes: one format, and quiet libraries.

Each start of ``tollway serve`` or ``tollway worker`` logs what matters (migrations applied,
the worker's schedule, one access line per request); libraries that narrate their routine work
(Alembic's context messages, fontTools' font subsetting for every PDF) log warnings only.
SQL statements are never logged with their parameters (``db.make_engine`` hides them, also in
error messages), so event payloads and secrets do not end up in logs.
"""

from __future__ import annotations

import logging

QUIET = ("alembic", "fontTools", "fpdf", "sqlalchemy.engine", "multipart")


def configure(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
