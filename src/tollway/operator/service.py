"""Operators of the console and their browser sessions.

- Passwords are hashed with argon2id (``argon2-cffi``'s ``PasswordHasher``, its RFC 9106 low-memory
  profile); hashes are upgraded on sign-in when the parameters change.
- Guessing is slowed down per account: after ``MAX_FAILED_ATTEMPTS`` consecutive failures the
  account is locked for ``LOCKOUT`` (doubling with every further failure, capped at a day). A
  sign-in for an unknown e-mail still verifies a hash, so both answers take the same time.
- A session is a random token in an HttpOnly cookie; the database keeps its SHA-256 hash, the
  operator, an absolute expiry and the CSRF synchronizer token forms must echo.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tollway.errors import FieldError
from tollway.models import ConsoleSession, Operator
from tollway.operator.errors import InvalidOperatorInput, OperatorExists, SignInRefused

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=1)
MAX_LOCKOUT = timedelta(days=1)
SESSION_LIFETIME = timedelta(hours=12)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class SignedIn:
    operator_id: str
    email: str
    session_id: str
    csrf_token: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_operator(session: Session, *, email: str, password: str, now: datetime) -> Operator:
    address = normalize_email(email)
    errors: list[FieldError] = []
    if not _EMAIL.match(address) or len(address) > 320:
        errors.append(FieldError("email", "must be an e-mail address such as ops@example.com"))
    if len(password) < MIN_PASSWORD_LENGTH:
        errors.append(FieldError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters"))
    if len(password) > MAX_PASSWORD_LENGTH:
        errors.append(FieldError("password", f"must be at most {MAX_PASSWORD_LENGTH} characters"))
    if errors:
        raise InvalidOperatorInput("invalid operator", errors=errors)
    if session.scalar(select(Operator.id).where(Operator.email == address)) is not None:
        raise OperatorExists(f"an operator with e-mail {address} exists")
    operator = Operator(
        id=f"op_{secrets.token_hex(8)}",
        email=address,
        password_hash=_hasher.hash(password),
        created_at=now,
        failed_attempts=0,
    )
    session.add(operator)
    session.flush()
    return operator


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.email)))


def _lockout_for(failures: int) -> timedelta:
    extra = min(max(failures - MAX_FAILED_ATTEMPTS, 0), 20)
    lockout: timedelta = LOCKOUT * (1 << extra)
    return min(lockout, MAX_LOCKOUT)


def sign_in(session: Session, *, email: str, password: str, now: datetime) -> SignedIn:
    """Check the credentials and open a session; raises :class:`SignInRefused` otherwise.
    The caller commits (failed attempts are recorded too, so commit on failure as well)."""
    address = normalize_email(email)
    operator = session.scalar(select(Operator).where(Operator.email == address).with_for_update())
    if operator is None:
        try:
            _hasher.verify(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
        except VerificationError:
            pass
        raise SignInRefused("wrong e-mail or password")
    if operator.locked_until is not None and operator.locked_until > now:
        raise SignInRefused("too many failed sign-ins: try again later")
    try:
        _hasher.verify(operator.password_hash, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        operator.failed_attempts = (operator.failed_attempts or 0) + 1
        if operator.failed_attempts >= MAX_FAILED_ATTEMPTS:
            operator.locked_until = now + _lockout_for(operator.failed_attempts)
        raise SignInRefused("wrong e-mail or password") from None
    if _hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = _hasher.hash(password)
    operator.failed_attempts = 0
    operator.locked_until = None
    operator.last_sign_in_at = now
    return open_session(session, operator, now=now)


def open_session(session: Session, operator: Operator, *, now: datetime) -> SignedIn:
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id=f"cs_{secrets.token_hex(8)}",
        token_hash=_token_hash(token),
        operator_id=operator.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    # The token itself travels only in the cookie; SignedIn carries it once, here.
    return SignedIn(operator.id, operator.email, token, row.csrf_token, row.expires_at)


def current_session(session: Session, token: str | None, *, now: datetime) -> SignedIn | None:
    """The live session behind a cookie token, or ``None`` (unknown, expired or signed out)."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(ConsoleSession, Operator.email)
        .join(Operator, Operator.id == ConsoleSession.operator_id)
        .where(ConsoleSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    cs, email = row
    if cs.revoked_at is not None or cs.expires_at <= now:
        return None
    return SignedIn(cs.operator_id, email, cs.id, cs.csrf_token, cs.expires_at)


def sign_out(session: Session, token: str | None, *, now: datetime) -> None:
    if not token:
        return
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == _token_hash(token), ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def csrf_ok(signed_in: SignedIn, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(signed_in.csrf_token.encode(), submitted.encode())
