"""The transit domain: named, versioned ChaCha20-Poly1305 keys and the tokens they seal.

Token ``nexpo:v<N>:<base64>``, body = nonce (12 random bytes) ‖ ciphertext ‖ tag (16). The
associated data binds the key name and version (and the caller's optional context), so a token
cannot be replayed under another key or version.

Errors are ``TransitError``s that say what went wrong and nothing about HTTP: the router maps them
to problems (api/routers/transit.py).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# Matched with fullmatch: ``$`` would also accept a trailing newline.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TOKEN = re.compile(r"nexpo:v([1-9][0-9]{0,8}):([A-Za-z0-9+/=_-]+)")


class TransitError(Exception):
    """A transit operation that cannot be done; the message says why."""


class KeyNotFound(TransitError):
    """No key of that name."""


class KeyExists(TransitError):
    """``create`` of a name that is taken."""


class InvalidToken(TransitError):
    """A token that is malformed, of a retired or unknown version, altered, or sealed under
    another key or context."""


class KeysUnavailable(TransitError):
    """No usable keys: the keys file is unusable (and none was loaded before) or not configured."""


@dataclass(frozen=True)
class TransitKey:
    name: str
    versions: dict[int, bytes]
    min_decryption_version: int = 1

    @property
    def latest(self) -> int:
        return max(self.versions)

    @classmethod
    def generate(cls, name: str) -> TransitKey:
        """A new key with one version of fresh random material."""
        if not KEY_NAME.fullmatch(name):
            raise ValueError(f"transit key name {name!r} must match {KEY_NAME.pattern}")
        return cls(name, {1: secrets.token_bytes(KEY_BYTES)})

    def rotated(self) -> TransitKey:
        """This key with version ``latest + 1`` added for new tokens; older versions still decrypt."""
        versions = {**self.versions, self.latest + 1: secrets.token_bytes(KEY_BYTES)}
        return TransitKey(self.name, versions, self.min_decryption_version)


def _aad(name: str, version: int, context: bytes) -> bytes:
    return b"nexpo-transit\x00" + name.encode() + b"\x00v" + str(version).encode() + b"\x00" + context


class Keyring:
    def __init__(self, keys: dict[str, TransitKey]) -> None:
        self.keys = keys

    def key(self, name: str) -> TransitKey:
        found = self.keys.get(name)
        if found is None:
            raise KeyNotFound(f"no transit key named {name!r}")
        return found

    def encrypt(self, name: str, plaintext: bytes, context: bytes = b"") -> tuple[str, int]:
        """A token sealing ``plaintext`` with the key's latest version, and that version."""
        from nexpo.crypto import chacha20poly1305_encrypt

        key = self.key(name)
        version = key.latest
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = chacha20poly1305_encrypt(
            key.versions[version], nonce, plaintext, _aad(name, version, context)
        )
        return f"nexpo:v{version}:{base64.b64encode(nonce + sealed).decode()}", version

    def decrypt(self, name: str, token: str, context: bytes = b"") -> tuple[bytes, int]:
        """The plaintext ``token`` seals and the key version that sealed it."""
        from nexpo.crypto import chacha20poly1305_decrypt
        from nexpo.errors import AuthenticationError

        key = self.key(name)
        match = TOKEN.fullmatch(token)
        if match is None:
            raise InvalidToken("malformed token: expected 'nexpo:v<N>:<base64>'")
        version = int(match.group(1))
        try:
            body = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidToken("malformed token: the payload is not valid base64") from None
        if version not in key.versions:
            raise InvalidToken(f"key {name!r} has no version {version}")
        if version < key.min_decryption_version:
            raise InvalidToken(f"version {version} of {name!r} is below min_decryption_version")
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise InvalidToken("malformed token: too short")
        try:
            plaintext = chacha20poly1305_decrypt(
                key.versions[version], body[:NONCE_BYTES], body[NONCE_BYTES:], _aad(name, version, context)
            )
        except AuthenticationError:
            raise InvalidToken(
                "decryption failed: the token was altered or belongs to another key or context"
            ) from None
        return plaintext, version
