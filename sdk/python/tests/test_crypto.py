from __future__ import annotations

import base64
import json
import os
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tollway_sdk.crypto import (
    PREFIX,
    DecryptionError,
    FieldEncryptor,
    decrypt_properties,
    decrypt_value,
    encrypt_value,
    generate_key,
    is_encrypted,
    load_key,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def _raw(token: str) -> bytes:
    body = token[len(PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


@pytest.mark.parametrize(
    "value",
    ["alice@example.com", "", "ünïcødé ✓", 42, True, None, [1, "two"], {"a": {"b": [3]}}, Decimal("12.50")],
)
def test_round_trip_keeps_json_types(value):
    token = encrypt_value(value, KEY, field="f")
    assert is_encrypted(token)
    back = decrypt_value(token, KEY, field="f")
    assert back == value and type(back) is type(value)
    if isinstance(value, Decimal):
        assert str(back) == "12.50"


def test_fractional_numbers_decrypt_as_exact_decimals():
    assert decrypt_value(encrypt_value(0.1, KEY, field="f"), KEY, field="f") == Decimal("0.1")


def test_envelope_is_nonce_then_aes_gcm_ciphertext_bound_to_the_field():
    token = encrypt_value({"plan": "pro"}, KEY, field="user.plan")
    assert token.startswith("tw1:") and "=" not in token
    raw = _raw(token)
    nonce, sealed = raw[:12], raw[12:]
    # Independent check with cryptography's primitive: 96-bit nonce, 16-byte tag,
    # associated data naming the field, JSON plaintext.
    assert len(sealed) == len(b'{"plan":"pro"}') + 16
    plaintext = AESGCM(KEY).decrypt(nonce, sealed, b"tollway:tw1:user.plan")
    assert json.loads(plaintext) == {"plan": "pro"}


def test_nonces_are_fresh_for_every_encryption():
    tokens = {encrypt_value("same", KEY, field="f") for _ in range(50)}
    assert len(tokens) == 50
    assert len({_raw(t)[:12] for t in tokens}) == 50


def test_any_altered_byte_is_detected():
    token = encrypt_value("secret", KEY, field="f")
    raw = bytearray(_raw(token))
    for position in (0, 11, 12, len(raw) - 17, len(raw) - 1):  # nonce, ciphertext, tag
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        forged = PREFIX + base64.urlsafe_b64encode(bytes(tampered)).decode().rstrip("=")
        with pytest.raises(DecryptionError, match="authentication failed"):
            decrypt_value(forged, KEY, field="f")
    truncated = PREFIX + base64.urlsafe_b64encode(bytes(raw[:20])).decode()
    with pytest.raises(DecryptionError, match="too short"):
        decrypt_value(truncated, KEY, field="f")
    with pytest.raises(DecryptionError, match="not a tw1"):
        decrypt_value("tw2:" + token[4:], KEY, field="f")
    with pytest.raises(DecryptionError, match="malformed"):
        decrypt_value("tw1:***", KEY, field="f")


def test_wrong_key_or_wrong_field_fails_and_rotation_lists_work():
    token = encrypt_value("secret", KEY, field="user.email")
    with pytest.raises(DecryptionError):
        decrypt_value(token, OTHER_KEY, field="user.email")
    with pytest.raises(DecryptionError):
        decrypt_value(token, KEY, field="user.name")  # copied into another field
    assert decrypt_value(token, [OTHER_KEY, KEY], field="user.email") == "secret"


def test_key_formats():
    hex_key = KEY.hex()
    b64 = base64.b64encode(KEY).decode()
    b64url = base64.urlsafe_b64encode(KEY).decode().rstrip("=")
    assert load_key(KEY) == load_key(hex_key) == load_key(b64) == load_key(b64url) == KEY
    assert len(load_key(generate_key())) == 32
    with pytest.raises(ValueError, match="32 bytes"):
        load_key(os.urandom(16))
    with pytest.raises(ValueError, match="32 bytes"):
        load_key("not a key")


def test_field_encryptor_encrypts_dotted_paths_without_touching_the_input():
    props = {"user": {"email": "alice@example.com", "name": "Alice"}, "amount": 5, "endpoint": "/v1/x"}
    encryptor = FieldEncryptor(KEY, ["user.email", "amount", "missing.path", "endpoint.deeper"])
    out = encryptor.encrypt(props)
    assert props == {"user": {"email": "alice@example.com", "name": "Alice"}, "amount": 5, "endpoint": "/v1/x"}
    assert is_encrypted(out["user"]["email"]) and is_encrypted(out["amount"])
    assert out["user"]["name"] == "Alice" and out["endpoint"] == "/v1/x"
    assert "missing" not in out
    assert decrypt_properties(out, KEY) == props
    assert decrypt_properties(out, KEY, fields=["user.email"])["amount"] == out["amount"]
    with pytest.raises(ValueError, match="invalid field path"):
        FieldEncryptor(KEY, ["user..email"])


def test_client_sends_only_ciphertext_and_the_provider_can_decrypt(server, make_client):
    key = generate_key()
    client = make_client(encrypt_fields=("user.email", "note"), encryption_key=key)
    client.track("acme", "api_call", {"user": {"email": "alice@example.com", "id": 7}, "note": "vip", "status": 200})
    assert client.flush(timeout=5)
    (request,) = server.requests
    assert b"alice@example.com" not in request.body and b"vip" not in request.body
    stored = server.events()[0]["properties"]
    assert stored["status"] == 200 and stored["user"]["id"] == 7
    assert stored["user"]["email"].startswith("tw1:") and stored["note"].startswith("tw1:")
    assert decrypt_properties(stored, key) == {
        "user": {"email": "alice@example.com", "id": 7},
        "note": "vip",
        "status": 200,
    }
