"""Secrets at rest: AES-GCM with keys derived from ``TOLLWAY_SECRET_KEY``, one key per purpose.

``TOLLWAY_SECRET_KEY`` is any string of at least 32 characters. Each use (``"webhook-secret"``,
``"stripe-api-key"``...) gets its own 256-bit key derived with HKDF-SHA256 (purpose as ``info``),
so a value encrypted for one purpose cannot be decrypted as another. Ciphertexts are text:
``v1.<base64url(nonce + ciphertext + tag)>``; the purpose is also bound as associated data.

    from tollway.kit.crypto import encrypt, decrypt
    token = encrypt("webhook-secret", "whsec_...")        # reads TOLLWAY_SECRET_KEY
    plain = decrypt("webhook-secret", token)

Without a key (or with a short one) both raise :class:`SecretKeyMissing` (a 503 problem if it
reaches an API response), whose message says what to set. A wrong key or a tampered value raises
:class:`DecryptionFailed`.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tollway.errors import TollwayError

MIN_SECRET_LENGTH = 32
_VERSION = "v1"
_SALT = b"tollway/kit/crypto/v1"
_NONCE_BYTES = 12


class SecretKeyMissing(TollwayError):
    status = 503
    code = "secret_key_missing"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail
            or "TOLLWAY_SECRET_KEY is not set: set it to a random string of at least 32 characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`); Tollway encrypts "
            "secrets at rest (webhook signing secrets, provider API keys) with keys derived from it"
        )


class DecryptionFailed(TollwayError):
    status = 500
    code = "decryption_failed"

    def __init__(self, purpose: str) -> None:
        super().__init__(
            f"cannot decrypt a stored {purpose}: it was encrypted with another TOLLWAY_SECRET_KEY or altered"
        )


class _FromEnvironment:
    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


FROM_ENVIRONMENT = _FromEnvironment()
"""Default of every ``secret=`` parameter: read ``TOLLWAY_SECRET_KEY`` (``config.get_settings()``).
Code holding a :class:`~tollway.config.Settings` passes ``secret=settings.secret_key`` instead."""

Secret = str | None | _FromEnvironment


def configured_secret(secret: Secret = FROM_ENVIRONMENT) -> str:
    """The master secret, checked: ``secret`` if given (``None`` = not configured), else
    ``TOLLWAY_SECRET_KEY``. Raises :class:`SecretKeyMissing` when absent or too short."""
    if isinstance(secret, _FromEnvironment):
        from tollway.config import get_settings

        secret = get_settings().secret_key
    if not secret:
        raise SecretKeyMissing()
    if len(secret) < MIN_SECRET_LENGTH:
        raise SecretKeyMissing(
            f"TOLLWAY_SECRET_KEY is too short ({len(secret)} characters): use at least {MIN_SECRET_LENGTH}"
        )
    return secret


def has_secret_key(secret: Secret = FROM_ENVIRONMENT) -> bool:
    try:
        configured_secret(secret)
    except SecretKeyMissing:
        return False
    return True


@lru_cache(maxsize=64)
def derive_key(secret: str, purpose: str) -> bytes:
    """The 256-bit key for ``purpose`` (HKDF-SHA256 of the master secret)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose.encode())
    return hkdf.derive(secret.encode())


def encrypt(purpose: str, plaintext: str, *, secret: Secret = FROM_ENVIRONMENT) -> str:
    key = derive_key(configured_secret(secret), purpose)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), purpose.encode())
    return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(purpose: str, token: str, *, secret: Secret = FROM_ENVIRONMENT) -> str:
    key = derive_key(configured_secret(secret), purpose)
    version, _, body = token.partition(".")
    if version != _VERSION or not body:
        raise DecryptionFailed(purpose)
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose.encode())
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed(purpose) from exc
    return plain.decode()
