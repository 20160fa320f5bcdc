"""Request-scoped dependencies shared by every router: the database session."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the handler returns, rolled back on error.

    Routes depend on it with ``Depends(get_session, scope="function")``: the code after ``yield``
    then runs when the handler returns, before the response is sent (with the default scope,
    FastAPI 0.165 runs it after the response), so a failed commit becomes an error response,
    never a 2xx for data that was not stored, and a read right after a write sees it.
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
