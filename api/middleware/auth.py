"""API keys on ``/v1/*``: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

Keys are kept only as SHA-256 digests and compared with ``hmac.compare_digest`` against every
configured key (no early exit), so neither timing nor length leaks which key, if any, was close.
Keys are never logged: the rest of the service sees a key id (a short fingerprint).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from ..problems import send_problem

log = logging.getLogger("api.auth")

KEY_ID_SCOPE = "nexpo.key_id"
_CHALLENGE = [(b"www-authenticate", b'Bearer realm="nexpo", charset="UTF-8"')]


class ApiKeys:
    """A set of API keys, held as digests."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [hashlib.sha256(key.encode()).digest() for key in keys]
        if not self._digests:
            raise ValueError("ApiKeys needs at least one key")
        self._ids = [f"key-{d[:4].hex()}" for d in self._digests]

    def __len__(self) -> int:
        return len(self._digests)

    def match(self, candidate: bytes) -> str | None:
        """The id of the key equal to ``candidate``, in time independent of where it differs."""
        digest = hashlib.sha256(candidate).digest()
        found = -1
        for index, known in enumerate(self._digests):
            if hmac.compare_digest(digest, known):
                found = index
        return self._ids[found] if found >= 0 else None


@dataclass(frozen=True)
class KeySource:
    keys: tuple[str, ...]
    origin: str  # where they came from, for the startup notice (never the keys)


def generated_key_file(state_dir: Path) -> Path:
    return state_dir / "api-key"


def ensure_generated_key(state_dir: Path) -> Path:
    """Create ``state_dir/api-key`` (mode 0600) with a random key unless it exists; race-safe."""
    path = generated_key_file(state_dir)
    if path.exists():
        return path
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = state_dir / f".api-key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # a concurrent worker published first
            os.link(tmp, path)  # atomic publish
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_key_file(path: Path) -> tuple[str, ...]:
    from ..safe_files import read_text_file  # regular files only, bounded: never a FIFO

    text = read_text_file(path, 1024 * 1024, what="API key file")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def resolve_keys(configured: tuple[str, ...], auth_disabled: bool, state_dir: Path) -> KeySource | None:
    """The keys to enforce: configured ones, else a generated one kept in ``state_dir``.

    ``None`` only when auth is explicitly disabled.
    """
    if auth_disabled:
        log.warning("NEXPO_AUTH_DISABLED=true: /v1/* is served WITHOUT authentication")
        return None
    if configured:
        return KeySource(configured, "NEXPO_API_KEYS / NEXPO_API_KEYS_FILE")
    path = ensure_generated_key(state_dir)
    return KeySource(read_key_file(path), str(path))


def find_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.strip()
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
    return None


class AuthMiddleware:
    """Rejects requests under ``prefix`` without a valid key (401 problem+json)."""

    def __init__(
        self,
        app: ASGIApp,
        keys: ApiKeys | None,
        prefix: str | tuple[str, ...] = "/v1/",
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.keys = keys
        self.prefix = prefix
        self.open_prefixes = open_prefixes  # under ``prefix`` but served without a key (probes)

    def _guarded(self, path: str) -> bool:
        opened = bool(self.open_prefixes) and path.startswith(self.open_prefixes)
        return path.startswith(self.prefix) and not opened

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.keys is None or scope["type"] != "http" or not self._guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        candidate = find_key(scope["headers"])
        if candidate is None:
            await send_problem(
                send,
                401,
                "missing API key: send 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
                _CHALLENGE,
            )
            return
        key_id = self.keys.match(candidate)
        if key_id is None:
            await send_problem(send, 401, "invalid API key", _CHALLENGE)
            return
        scope[KEY_ID_SCOPE] = key_id
        await self.app(scope, receive, send)
