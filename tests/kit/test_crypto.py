from __future__ import annotations

import pytest

from tollway.kit.crypto import DecryptionFailed, SecretKeyMissing, decrypt, derive_key, encrypt, has_secret_key

KEY = "k" * 32
OTHER = "o" * 40


def test_round_trip_and_fresh_nonce() -> None:
    a = encrypt("webhook-secret", "whsec_abc", secret=KEY)
    b = encrypt("webhook-secret", "whsec_abc", secret=KEY)
    assert a != b and a.startswith("v1.")
    assert "whsec_abc" not in a
    assert decrypt("webhook-secret", a, secret=KEY) == "whsec_abc"


def test_purposes_have_different_keys() -> None:
    assert derive_key(KEY, "a") != derive_key(KEY, "b")
    token = encrypt("webhook-secret", "x", secret=KEY)
    with pytest.raises(DecryptionFailed):
        decrypt("stripe-api-key", token, secret=KEY)


def test_wrong_key_or_tampering_fails() -> None:
    token = encrypt("p", "secret value", secret=KEY)
    with pytest.raises(DecryptionFailed):
        decrypt("p", token, secret=OTHER)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(DecryptionFailed):
        decrypt("p", tampered, secret=KEY)
    with pytest.raises(DecryptionFailed):
        decrypt("p", "garbage", secret=KEY)


def test_missing_or_short_key_is_a_clear_error() -> None:
    with pytest.raises(SecretKeyMissing, match="TOLLWAY_SECRET_KEY is not set"):
        encrypt("p", "x", secret=None)
    with pytest.raises(SecretKeyMissing, match="too short"):
        encrypt("p", "x", secret="short")
    assert not has_secret_key(None)
    assert has_secret_key(KEY)
