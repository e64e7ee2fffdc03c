"""Transit encryption in the manner of Vault's transit engine: the server holds named, versioned
ChaCha20-Poly1305 keys; clients send plaintext and get tokens ``nexpo:v<N>:<base64>``, or send
tokens back for plaintext. Rotating a key adds version N+1 for new tokens while older versions still
decrypt (down to ``min_decryption_version``).

Keys file (JSON, mode 0600)::

    {"keys": {"orders": {"versions": {"1": "<base64 32 bytes>", "2": "…"},
                         "min_decryption_version": 1}}}

Token body = nonce (12 random bytes) ‖ ciphertext ‖ tag (16). The associated data binds the key
name and version (and the caller's optional context), so a token cannot be replayed under another
key or version. Manage keys offline: ``python -m nexpo.api.transit {create,rotate,list} --file F NAME``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .problems import ProblemError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOKEN = re.compile(r"^nexpo:v([1-9][0-9]{0,8}):([A-Za-z0-9+/=_-]+)$")


class TransitError(ProblemError):
    """A transit request that cannot be served: 404 unknown key, 400 bad token."""


@dataclass(frozen=True)
class TransitKey:
    name: str
    versions: dict[int, bytes]
    min_decryption_version: int = 1

    @property
    def latest(self) -> int:
        return max(self.versions)


def _aad(name: str, version: int, context: bytes) -> bytes:
    return b"nexpo-transit\x00" + name.encode() + b"\x00v" + str(version).encode() + b"\x00" + context


class Keyring:
    def __init__(self, keys: dict[str, TransitKey]) -> None:
        self.keys = keys

    def key(self, name: str) -> TransitKey:
        found = self.keys.get(name)
        if found is None:
            raise TransitError(404, f"no transit key named {name!r}")
        return found

    def encrypt(self, name: str, plaintext: bytes, context: bytes = b"") -> tuple[str, int]:
        from nexpo.crypto import chacha20poly1305_encrypt

        key = self.key(name)
        version = key.latest
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = chacha20poly1305_encrypt(
            key.versions[version], nonce, plaintext, _aad(name, version, context)
        )
        return f"nexpo:v{version}:{base64.b64encode(nonce + sealed).decode()}", version

    def decrypt(self, name: str, token: str, context: bytes = b"") -> tuple[bytes, int]:
        from nexpo.crypto import chacha20poly1305_decrypt
        from nexpo.errors import AuthenticationError

        key = self.key(name)
        match = TOKEN.match(token)
        if match is None:
            raise TransitError(400, "malformed token: expected 'nexpo:v<N>:<base64>'")
        version = int(match.group(1))
        try:
            body = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise TransitError(400, "malformed token: the payload is not valid base64") from None
        if version not in key.versions:
            raise TransitError(400, f"key {name!r} has no version {version}")
        if version < key.min_decryption_version:
            raise TransitError(400, f"version {version} of {name!r} is below min_decryption_version")
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise TransitError(400, "malformed token: too short")
        try:
            plaintext = chacha20poly1305_decrypt(
                key.versions[version], body[:NONCE_BYTES], body[NONCE_BYTES:], _aad(name, version, context)
            )
        except AuthenticationError:
            raise TransitError(
                400, "decryption failed: the token was altered or belongs to another key or context"
            ) from None
        return plaintext, version


# --- the keys file ----------------------------------------------------------------------------


def parse_keys(data: object) -> dict[str, TransitKey]:
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise ValueError("transit keys file must be a JSON object with a 'keys' object")
    keys: dict[str, TransitKey] = {}
    for name, entry in data["keys"].items():
        if not KEY_NAME.match(name):
            raise ValueError(f"transit key name {name!r} must match {KEY_NAME.pattern}")
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("versions"), dict)
            or not entry["versions"]
        ):
            raise ValueError(f"transit key {name!r} needs a non-empty 'versions' object")
        versions: dict[int, bytes] = {}
        for version, encoded in entry["versions"].items():
            if not str(version).isdigit() or int(version) < 1:
                raise ValueError(f"transit key {name!r}: version {version!r} must be a positive integer")
            try:
                material = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise ValueError(f"transit key {name!r} v{version}: not base64") from None
            if len(material) != KEY_BYTES:
                raise ValueError(
                    f"transit key {name!r} v{version}: need {KEY_BYTES} bytes, got {len(material)}"
                )
            versions[int(version)] = material
        min_version = entry.get("min_decryption_version", 1)
        if not isinstance(min_version, int) or not 1 <= min_version <= max(versions):
            raise ValueError(f"transit key {name!r}: bad min_decryption_version {min_version!r}")
        keys[name] = TransitKey(name, versions, min_version)
    return keys


def dump_keys(keys: dict[str, TransitKey]) -> dict[str, object]:
    return {
        "keys": {
            key.name: {
                "versions": {str(v): base64.b64encode(m).decode() for v, m in sorted(key.versions.items())},
                "min_decryption_version": key.min_decryption_version,
            }
            for key in keys.values()
        }
    }


def read_keys(path: Path) -> dict[str, TransitKey]:
    return parse_keys(json.loads(path.read_text(encoding="utf-8")))


def write_keys(path: Path, keys: dict[str, TransitKey]) -> None:
    """Atomic replace, mode 0600 from the start (key material never hits a readable file)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dump_keys(keys), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def create_key(path: Path, name: str) -> TransitKey:
    keys = read_keys(path) if path.exists() else {}
    if name in keys:
        raise ValueError(f"transit key {name!r} already exists")
    if not KEY_NAME.match(name):
        raise ValueError(f"transit key name {name!r} must match {KEY_NAME.pattern}")
    keys[name] = TransitKey(name, {1: secrets.token_bytes(KEY_BYTES)})
    write_keys(path, keys)
    return keys[name]


def rotate_key(path: Path, name: str) -> TransitKey:
    keys = read_keys(path)
    if name not in keys:
        raise ValueError(f"no transit key named {name!r}")
    old = keys[name]
    keys[name] = TransitKey(
        name, {**old.versions, old.latest + 1: secrets.token_bytes(KEY_BYTES)}, old.min_decryption_version
    )
    write_keys(path, keys)
    return keys[name]


def ensure_default_keys_file(state_dir: Path) -> Path:
    """``state_dir/transit-keys.json`` with a key named ``default``, created on first start."""
    path = state_dir / "transit-keys.json"
    if not path.exists():
        with contextlib.suppress(ValueError):  # a concurrent worker created it first
            create_key(path, "default")
    return path


class KeyringFile:
    """The keyring of a keys file, re-read (at most once a second) when the file changes, so an
    offline ``rotate`` takes effect without a restart. A broken rewrite keeps the last good ring."""

    def __init__(self, path: Path, check_every_s: float = 1.0) -> None:
        self.path = path
        self._check_every = check_every_s
        self._lock = threading.Lock()
        self._mtime = path.stat().st_mtime_ns
        self._ring = Keyring(read_keys(path))
        self._checked = time.monotonic()

    def current(self) -> Keyring:
        now = time.monotonic()
        if now - self._checked >= self._check_every:
            with self._lock:
                self._checked = now
                try:
                    mtime = self.path.stat().st_mtime_ns
                    if mtime != self._mtime:
                        self._ring = Keyring(read_keys(self.path))
                        self._mtime = mtime
                except (OSError, ValueError):
                    pass
        return self._ring


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexpo.api.transit", description="manage transit keys")
    parser.add_argument("action", choices=["create", "rotate", "list"])
    parser.add_argument("name", nargs="?", help="key name (create, rotate)")
    parser.add_argument("--file", type=Path, required=True, help="transit keys file (JSON)")
    args = parser.parse_args(argv)
    try:
        if args.action == "list":
            for key in read_keys(args.file).values():
                print(
                    f"{key.name}\tlatest=v{key.latest}\tmin_decryption_version={key.min_decryption_version}"
                )
            return 0
        if not args.name:
            parser.error("a key name is required")
        key = (
            create_key(args.file, args.name) if args.action == "create" else rotate_key(args.file, args.name)
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{key.name}: latest version v{key.latest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
