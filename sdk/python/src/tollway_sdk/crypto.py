"""Client-side encryption of event properties (AES-256-GCM).

Properties named in ``Client(encrypt_fields=...)`` are replaced, inside the
provider's process and before the event is queued, by an opaque envelope::

    tw1:<base64url(nonce || ciphertext || tag)>

- ``tw1`` is the format version (AES-256-GCM, 96-bit random nonce, 128-bit tag,
  JSON-encoded plaintext so numbers, lists and objects round-trip with their type);
- numbers with a fraction decrypt as ``decimal.Decimal`` (exact digits);
- the associated data is ``b"tollway:tw1:" + <dotted field path>``: a ciphertext
  only decrypts under the field it was written for, so an envelope copied from
  ``user.email`` into ``user.name`` fails authentication;
- the 256-bit key stays with the provider. The Tollway server stores the
  envelope as an opaque string: meters cannot filter, group or aggregate on it.

Requires the ``cryptography`` package (``pip install 'tollway-sdk[encryption]'``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tollway_sdk._json import dumps

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "PREFIX",
    "DecryptionError",
    "FieldEncryptor",
    "decrypt_properties",
    "decrypt_value",
    "encrypt_value",
    "generate_key",
    "is_encrypted",
    "load_key",
]

PREFIX = "tw1:"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_AAD_PREFIX = b"tollway:tw1:"

KeyLike = bytes | bytearray | memoryview | str


class DecryptionError(ValueError):
    """The value is not a tw1 envelope, or it does not authenticate under the key and field."""


def _aesgcm_class() -> type[AESGCM]:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "field encryption needs the 'cryptography' package: pip install 'tollway-sdk[encryption]'"
        ) from exc
    return AESGCM


def generate_key() -> str:
    """A fresh random 256-bit key, base64url-encoded (store it in your secret manager)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def load_key(key: KeyLike) -> bytes:
    """Accept 32 raw bytes, 64 hex characters, or base64/base64url of 32 bytes."""
    if isinstance(key, (bytes, bytearray, memoryview)):
        raw = bytes(key)
    elif isinstance(key, str):
        text = key.strip()
        raw = b""
        if len(text) == 2 * KEY_BYTES:
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
        if not raw:
            try:
                raw = base64.urlsafe_b64decode(_pad(text.replace("+", "-").replace("/", "_")))
            except (binascii.Error, ValueError):
                raw = b""
    else:
        raise TypeError("encryption key must be bytes or a hex/base64 string")
    if len(raw) != KEY_BYTES:
        raise ValueError("encryption key must be 32 bytes (AES-256): raw, hex or base64")
    return raw


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def _aad(field: str) -> bytes:
    return _AAD_PREFIX + field.encode("utf-8")


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _encrypt(aead: AESGCM, value: Any, field: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = aead.encrypt(nonce, dumps(value), _aad(field))
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")


def _aeads(key: KeyLike | Sequence[KeyLike]) -> list[AESGCM]:
    aesgcm = _aesgcm_class()
    if isinstance(key, (bytes, bytearray, memoryview, str)):
        return [aesgcm(load_key(key))]
    keys = [aesgcm(load_key(k)) for k in key]
    if not keys:
        raise ValueError("no decryption key given")
    return keys


def _decrypt(aeads: Sequence[AESGCM], token: Any, field: str) -> Any:
    from cryptography.exceptions import InvalidTag

    if not is_encrypted(token):
        raise DecryptionError(f"field {field!r}: not a {PREFIX} envelope")
    try:
        raw = base64.b64decode(_pad(token[len(PREFIX) :]), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError(f"field {field!r}: malformed envelope") from exc
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError(f"field {field!r}: envelope too short")
    nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
    for aead in aeads:
        try:
            plaintext = aead.decrypt(nonce, sealed, _aad(field))
        except InvalidTag:
            continue
        return json.loads(plaintext, parse_float=Decimal)
    raise DecryptionError(f"field {field!r}: authentication failed (wrong key, wrong field, or the value was altered)")


def encrypt_value(value: Any, key: KeyLike, *, field: str = "") -> str:
    """Encrypt one JSON-serialisable value; ``field`` is bound as associated data."""
    return _encrypt(_aeads(key)[0], value, field)


def decrypt_value(token: str, key: KeyLike | Sequence[KeyLike], *, field: str = "") -> Any:
    """Decrypt one envelope written for ``field`` (the dotted path it was tracked under).

    ``key`` may be a list of keys (newest first) while rotating keys.
    Raises :class:`DecryptionError` when the value does not authenticate.
    """
    return _decrypt(_aeads(key), token, field)


def decrypt_properties(
    properties: Mapping[str, Any],
    key: KeyLike | Sequence[KeyLike],
    fields: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Return a copy of ``properties`` with envelopes replaced by their plaintext.

    With ``fields`` (dotted paths), exactly those are decrypted and each must be an
    envelope when present. Without it, every string starting with ``tw1:`` in
    nested objects is decrypted under its own dotted path.
    """
    aeads = _aeads(key)
    if fields is None:
        return _decrypt_all(aeads, properties, "")
    out = _copy(properties)
    for path in _parse_paths(fields):
        parent = _walk_for_write(out, path)
        if parent is not None and path[-1] in parent:
            parent[path[-1]] = _decrypt(aeads, parent[path[-1]], ".".join(path))
    return out


def _decrypt_all(aeads: Sequence[AESGCM], node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in node.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            out[name] = _decrypt_all(aeads, value, path + ".")
        elif is_encrypted(value):
            out[name] = _decrypt(aeads, value, path)
        else:
            out[name] = value
    return out


def _parse_paths(fields: Iterable[str]) -> list[tuple[str, ...]]:
    if isinstance(fields, str):
        fields = [fields]
    paths: list[tuple[str, ...]] = []
    for field in fields:
        if not isinstance(field, str):
            raise TypeError(f"field paths must be strings, got {field!r}")
        parts = tuple(field.split("."))
        if not all(parts):
            raise ValueError(f"invalid field path {field!r}")
        if parts not in paths:
            paths.append(parts)
    return paths


def _copy(node: Mapping[str, Any]) -> dict[str, Any]:
    return dict(node)


def _walk_for_write(root: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """Parent dict of ``path``'s leaf, copying each nested mapping on the way so the
    caller's objects are never modified; None when the path does not exist."""
    node = root
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, Mapping):
            return None
        child = dict(child)
        node[part] = child
        node = child
    return node


class FieldEncryptor:
    """Encrypts the configured dotted paths of a properties mapping."""

    def __init__(self, key: KeyLike, fields: Iterable[str]) -> None:
        self._aead = _aesgcm_class()(load_key(key))
        self._paths = _parse_paths(fields)
        if not self._paths:
            raise ValueError("FieldEncryptor needs at least one field path")

    @property
    def fields(self) -> list[str]:
        return [".".join(p) for p in self._paths]

    def encrypt(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``properties`` with every configured path present encrypted.

        Missing paths (or paths through non-objects) are left alone; ``None`` and
        other JSON values are encrypted as they are.
        """
        out = _copy(properties)
        for path in self._paths:
            parent = _walk_for_write(out, path)
            if parent is not None and path[-1] in parent:
                parent[path[-1]] = _encrypt(self._aead, parent[path[-1]], ".".join(path))
        return out
