from __future__ import annotations

from tollway.errors import Conflict, TollwayError


class OperatorExists(Conflict):
    code = "operator_exists"


class SignInRefused(TollwayError):
    """Wrong e-mail or password, or the account is locked. One message for all three, so the
    answer does not tell which e-mail addresses have accounts."""

    status = 401
    code = "sign_in_refused"


class InvalidOperatorInput(TollwayError):
    status = 422
    code = "validation_failed"
