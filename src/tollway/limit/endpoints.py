"""``POST /v1/limits/check``: may this customer use this much more, now?"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from tollway.auth.dependencies import require_ingest
from tollway.auth.gate import admitted
from tollway.deps import SessionDep
from tollway.errors import Forbidden
from tollway.kit.time import utcnow
from tollway.limit.schemas import LimitCheck, LimitCheckResult, LimitStatus

router = APIRouter(prefix="/v1/limits", tags=["limits"])


@router.post(
    "/check",
    response_model=LimitCheckResult,
    dependencies=[Depends(require_ingest)],
    summary="Check a customer's limits (admin or ingest key)",
)
def check(body: LimitCheck, request: Request, session: SessionDep) -> Response:
    scoped = admitted(request).customer
    if scoped is not None and scoped != body.customer:
        raise Forbidden(f"this API key may only check the limits of customer '{scoped}'")
    return answer(request, session, body)


def answer(request: Request, session: Session, body: LimitCheck) -> Response:
    """The decision for ``body`` as the check's JSON answer (the portal's limits use it too)."""
    decision = request.app.state.limits.decide(session, body.customer, body.meter, body.quantity, utcnow())
    result = LimitCheckResult(
        allowed=decision.allowed,
        reason=decision.reason,
        limits=[
            LimitStatus(
                meter=s.entry.meter,
                window=s.entry.window,
                max=s.entry.max,
                used=s.used,
                remaining=s.remaining,
                window_start=s.start,
                resets_at=s.end,
                action=s.entry.action,
                subscription=s.entry.subscription,
            )
            for s in decision.limits
        ],
    )
    # Serialized once (the response model documents it): a gateway calls this on every request.
    return Response(result.model_dump_json().encode(), media_type="application/json")
