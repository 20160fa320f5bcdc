"""Console operators: argon2id hashes, sign-in, lockout, sessions, CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tollway.db import session_scope
from tollway.models import Operator
from tollway.operator import service
from tollway.operator.errors import InvalidOperatorInput, OperatorExists, SignInRefused

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


def _create(factory, email="ops@example.com", password=PASSWORD):  # type: ignore[no-untyped-def]
    with session_scope(factory) as s:
        return service.create_operator(s, email=email, password=password, now=NOW).id


def test_password_stored_as_argon2id(session_factory) -> None:  # type: ignore[no-untyped-def]
    _create(session_factory)
    with session_factory() as s:
        op = s.query(Operator).one()
        assert op.password_hash.startswith("$argon2id$")
        assert PASSWORD not in op.password_hash


def test_bad_input_names_the_field(session_factory) -> None:  # type: ignore[no-untyped-def]
    with session_scope(session_factory) as s, pytest.raises(InvalidOperatorInput) as err:
        service.create_operator(s, email="not-an-address", password="short", now=NOW)
    assert {e.field for e in err.value.errors} == {"email", "password"}
    _create(session_factory)
    with session_scope(session_factory) as s, pytest.raises(OperatorExists):
        service.create_operator(s, email="OPS@example.com ", password=PASSWORD, now=NOW)


def test_sign_in_session_and_sign_out(session_factory) -> None:  # type: ignore[no-untyped-def]
    _create(session_factory)
    with session_scope(session_factory) as s:
        signed = service.sign_in(s, email=" Ops@Example.com", password=PASSWORD, now=NOW)
    token = signed.session_id
    with session_factory() as s:
        live = service.current_session(s, token, now=NOW + timedelta(hours=1))
        assert live is not None and live.email == "ops@example.com"
        assert service.csrf_ok(live, live.csrf_token)
        assert not service.csrf_ok(live, "forged")
        assert not service.csrf_ok(live, None)
        # absolute expiry
        assert service.current_session(s, token, now=NOW + service.SESSION_LIFETIME) is None
        assert service.current_session(s, "unknown", now=NOW) is None
    with session_scope(session_factory) as s:
        service.sign_out(s, token, now=NOW)
    with session_factory() as s:
        assert service.current_session(s, token, now=NOW) is None


def test_lockout_after_repeated_failures(session_factory) -> None:  # type: ignore[no-untyped-def]
    _create(session_factory)
    for _ in range(service.MAX_FAILED_ATTEMPTS):
        with session_scope(session_factory) as s, pytest.raises(SignInRefused):
            service.sign_in(s, email="ops@example.com", password="wrong password!", now=NOW)
    # Locked: even the right password is refused until the lockout passes.
    with session_scope(session_factory) as s, pytest.raises(SignInRefused, match="try again later"):
        service.sign_in(s, email="ops@example.com", password=PASSWORD, now=NOW + timedelta(seconds=30))
    with session_scope(session_factory) as s:
        assert service.sign_in(s, email="ops@example.com", password=PASSWORD, now=NOW + service.LOCKOUT)
    with session_factory() as s:
        op = s.query(Operator).one()
        assert op.failed_attempts == 0 and op.locked_until is None


def test_unknown_email_refused_like_a_wrong_password(session_factory) -> None:  # type: ignore[no-untyped-def]
    with session_scope(session_factory) as s, pytest.raises(SignInRefused, match="wrong e-mail or password"):
        service.sign_in(s, email="nobody@example.com", password=PASSWORD, now=NOW)


def test_cli_users_create_and_list(db_url: str) -> None:
    env = {"TOLLWAY_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tollway", "users", *args], env=env, input=stdin, capture_output=True, text=True
        )

    made = run("create", "--email", "finance@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "finance@example.com" in made.stdout
    assert run("create", "--email", "x@example.com", "--password", "short").returncode == 2
    both = run("create", "--email", "y@example.com", "--password", PASSWORD, "--password-stdin", stdin=PASSWORD)
    assert both.returncode == 2
    listed = run("list")
    assert listed.returncode == 0
    assert "finance@example.com" in listed.stdout and "never" in listed.stdout
    assert PASSWORD not in listed.stdout
