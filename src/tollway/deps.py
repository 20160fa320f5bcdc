"""Request-scoped dependencies shared by every router: the database session.

Every endpoint takes its session as ``session: SessionDep`` (imported from here; never define
another). Durability contract: a 2xx is sent only after the transaction committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the handler returns, rolled back on error.

    Used only through :data:`SessionDep`, whose ``scope="function"`` makes FastAPI (>= 0.121)
    close this dependency when the path operation returns, before the response is sent. With
    the default scope ("request") the code after ``yield`` runs after the response was sent, so
    a client could read 201 and then not find what it created, or get a 2xx for a failed commit.
    A failed commit raises here and becomes a 5xx (or the mapped 4xx for a conflict).
    """
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
"""The request's session; committed before the response is sent."""
