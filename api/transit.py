"""Transit encryption in the manner of Vault's transit engine: the server holds named, versioned
ChaCha20-Poly1305 keys; clients send plaintext and get tokens ``nexpo:v<N>:<base64>``, or send
tokens back for plaintext. Rotating a key adds version N+1 for new tokens while older versions still
decrypt (down to ``min_decryption_version``).

Keys file (JSON, mode 0600)::

    {"keys": {"orders": {"versions": {"1": "<base64 32 bytes>", "2": "…"},
                         "min_decryption_version": 1}}}

Token body = nonce (12 random bytes) ‖ ciphertext ‖ tag (16). The associated data binds the key
name and version (and the caller's optional context), so a token cannot be replayed under another
key or version. Manage keys offline: ``python -m nexpo.api.transit --file F {create,rotate,list} NAME``.

Concurrent ``create``/``rotate`` runs serialise on a lock file beside the keys file and replace it
atomically, so no version is ever lost. The server reads the file as hostile input (bounded size,
regular files only) and, when a rewrite is unusable, keeps the keys it has and logs why.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
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
from .safe_files import describe_os_error, locked, parse_json, read_regular_file
from .safe_files import write_atomically as _write_atomically

log = logging.getLogger("api")

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_KEYS_FILE_BYTES = 4 * 1024 * 1024  # ~60 bytes a version: room for tens of thousands
# Matched with fullmatch: ``$`` would also accept a trailing newline.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TOKEN = re.compile(r"nexpo:v([1-9][0-9]{0,8}):([A-Za-z0-9+/=_-]+)")


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
        match = TOKEN.fullmatch(token)
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
        if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
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
    """The keys in ``path``; ``ValueError`` (never a path in the message) when it is unusable."""
    return parse_keys(parse_json(read_regular_file(path, MAX_KEYS_FILE_BYTES)))


def write_keys(path: Path, keys: dict[str, TransitKey]) -> None:
    """Atomic replace, mode 0600 from the start (key material never hits a readable file)."""
    _write_atomically(path, (json.dumps(dump_keys(keys), indent=2) + "\n").encode(), 0o600)


def create_key(path: Path, name: str) -> TransitKey:
    if not KEY_NAME.fullmatch(name):
        raise ValueError(f"transit key name {name!r} must match {KEY_NAME.pattern}")
    with locked(path):
        keys = read_keys(path) if path.exists() else {}
        if name in keys:
            raise ValueError(f"transit key {name!r} already exists")
        keys[name] = TransitKey(name, {1: secrets.token_bytes(KEY_BYTES)})
        write_keys(path, keys)
    return keys[name]


def rotate_key(path: Path, name: str) -> TransitKey:
    with locked(path):  # read-modify-write: without the lock concurrent rotations lose versions
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
        with locked(path):  # workers starting together: the first creates it
            if not path.exists():
                write_keys(path, {"default": TransitKey("default", {1: secrets.token_bytes(KEY_BYTES)})})
    return path


class KeyringFile:
    """The keyring of a keys file, re-read (at most once a second) when the file changes, so an
    offline ``rotate`` takes effect without a restart.

    An unusable file (bad JSON, too deep, too big, a FIFO, a device, gone) keeps the last good
    ring and logs one error line per change of the file; with no good ring yet, ``current()``
    answers 503."""

    def __init__(self, path: Path, check_every_s: float = 1.0) -> None:
        self.path = path
        self.error: str | None = None
        self._check_every = check_every_s
        self._lock = threading.Lock()
        self._ring: Keyring | None = None
        self._seen: tuple[int, ...] | None = None  # identity of the file last read, good or bad
        self._reload()
        self._checked = time.monotonic()

    def _reload(self) -> None:
        problem: str | None = None
        try:
            st = os.stat(self.path)
            seen: tuple[int, ...] = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError as exc:
            seen, problem = (-1, exc.errno or 0), f"cannot stat: {describe_os_error(exc)}"
        if seen == self._seen:
            return
        self._seen = seen
        if problem is None:
            try:
                ring = Keyring(read_keys(self.path))
            except ValueError as exc:  # UnsafeFileError included
                problem = str(exc)
            else:
                if self._ring is not None:
                    log.info("transit keys reloaded from %s: %s", self.path, ", ".join(sorted(ring.keys)))
                self._ring, self.error = ring, None
                return
        self.error = problem
        outcome = "keeping the keys loaded before" if self._ring is not None else "/v1/transit answers 503"
        log.error("transit keys file %s is unusable (%s): %s", self.path, problem, outcome)

    @property
    def loaded(self) -> bool:
        return self._ring is not None

    def current(self) -> Keyring:
        now = time.monotonic()
        if now - self._checked >= self._check_every:
            with self._lock:
                self._checked = now
                self._reload()
        ring = self._ring
        if ring is None:
            raise TransitError(503, f"transit keys are unavailable: {self.error}")
        return ring


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexpo.api.transit", description="manage transit keys")
    parser.add_argument("action", choices=["create", "rotate", "list"])
    parser.add_argument("name", nargs="?", help="key name (create, rotate)")
    parser.add_argument("--file", type=Path, required=True, help="transit keys file (JSON)")
    args = parser.parse_intermixed_args(argv)  # 'rotate --file F NAME' as well as 'rotate NAME --file F'
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
    except (OSError, ValueError) as exc:  # TimeoutError (the lock) is an OSError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{key.name}: latest version v{key.latest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
