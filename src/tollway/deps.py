"""Request-scoped dependencies shared by every router: the database session.

Every endpoint takes its session as ``session: SessionDep`` (imported from here; never define
another). Durability contract: a 2xx is sent only after the transaction committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from tollway.db import session_scope


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the handler returns, rolled back on error.

    Used only through :data:`SessionDep`, whose ``scope="function"`` makes FastAPI (>= 0.121)
    close this dependency when the path operation returns, before the response is sent. With
    the default scope ("request") the code after ``yield`` runs after the response was sent, so
    a client could read 201 and then not find what it created, or get a 2xx for a failed commit.
    A failed commit raises here and becomes a 5xx (or the mapped 4xx for a conflict).

    The unit of work itself is :func:`tollway.db.session_scope`, which jobs, the worker and the
    CLI use directly; this is its FastAPI dependency form, bound to the app's sessionmaker (an
    exception raised by the handler is thrown in at the ``yield`` and rolls the session back).
    """
    with session_scope(request.app.state.sessionmaker) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
"""The request's session; committed before the response is sent."""
