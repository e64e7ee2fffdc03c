"""The transit keys file: its format, atomic rewrites under a lock, and the server's reloading view.

Keys file (JSON, mode 0600), format 2::

    {"format": 2,
     "keys": {"orders": {"type": "aes256-gcm96",
                         "versions": {"1": {"key": "<base64 32 bytes>", "hmac_key": "<base64 32 bytes>",
                                            "created": 1765100000}},
                         "min_decryption_version": 1, "min_encryption_version": 0,
                         "deletion_allowed": false}}}

Files written before key types (format 1: no ``format``, ``type`` or HMAC keys, a version is its
base64 key) still load: their keys are ``chacha20-poly1305`` and their HMAC keys are derived; the
next rewrite stores them in format 2 with the same material.

Every change (create, rotate, configure, delete; from the CLI or the HTTP API in any worker)
serialises on a lock file beside the keys file and replaces it atomically, so none is lost. The
server reads the file as hostile input (bounded size, regular files only) and, when a rewrite is
unusable, keeps the keys it has and logs why.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..safe_files import describe_os_error, locked, parse_json, read_regular_file, write_atomically
from .errors import DeletionNotAllowed, KeyExists, KeyNotFound, KeysUnavailable, TransitError
from .keyring import KEY_NAME, Keyring, KeyVersion, TransitKey
from .keytypes import CHACHA20_POLY1305, DEFAULT_KEY_TYPE, KEY_BYTES, KEY_TYPES, derive_hmac_key

log = logging.getLogger("api")

MAX_KEYS_FILE_BYTES = 4 * 1024 * 1024  # ~150 bytes a version: room for tens of thousands
FORMAT = 2


def _secret(name: str, version: object, label: str, encoded: object) -> bytes:
    try:
        material = base64.b64decode(encoded, validate=True)  # type: ignore[arg-type]
    except (binascii.Error, ValueError, TypeError):
        raise ValueError(f"transit key {name!r} v{version}: {label} is not base64") from None
    if len(material) != KEY_BYTES:
        raise ValueError(f"transit key {name!r} v{version}: need {KEY_BYTES} bytes, got {len(material)}")
    return material


def _version(name: str, version: object, entry: object) -> KeyVersion:
    if isinstance(entry, str):  # format 1: the base64 key alone
        material = _secret(name, version, "key", entry)
        return KeyVersion(material, derive_hmac_key(material))
    if not isinstance(entry, dict):
        raise ValueError(f"transit key {name!r} v{version}: must be base64 or an object")
    created = entry.get("created", 0)
    if type(created) is not int or created < 0:
        raise ValueError(f"transit key {name!r} v{version}: bad 'created' {created!r}")
    return KeyVersion(
        _secret(name, version, "key", entry.get("key")),
        _secret(name, version, "hmac_key", entry.get("hmac_key")),
        created,
    )


def _setting(name: str, entry: dict[str, Any], field: str, default: object, kind: type) -> Any:
    value = entry.get(field, default)
    if type(value) is not kind:
        raise ValueError(f"transit key {name!r}: {field} must be {kind.__name__}, got {value!r}")
    return value


def parse_keys(data: object) -> dict[str, TransitKey]:
    """The keys of a parsed keys file (format 1 or 2); ``ValueError`` saying which rule it breaks."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise ValueError("transit keys file must be a JSON object with a 'keys' object")
    if data.get("format", 1) not in (1, FORMAT):
        raise ValueError(f"transit keys file format {data.get('format')!r} is not supported (1 or {FORMAT})")
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
        versions: dict[int, KeyVersion] = {}
        for version, value in entry["versions"].items():
            if not str(version).isdigit() or not 1 <= int(version) < 10**9:
                raise ValueError(f"transit key {name!r}: version {version!r} must be a positive integer")
            versions[int(version)] = _version(name, version, value)
        kind = _setting(name, entry, "type", CHACHA20_POLY1305, str)  # format 1 had only ChaCha20
        if kind not in KEY_TYPES:
            raise ValueError(f"transit key {name!r}: unknown type {kind!r}")
        min_dec = _setting(name, entry, "min_decryption_version", 1, int)
        min_enc = _setting(name, entry, "min_encryption_version", 0, int)
        latest = max(versions)
        if not 1 <= min_dec <= latest:
            raise ValueError(f"transit key {name!r}: bad min_decryption_version {min_dec!r}")
        if not 0 <= min_enc <= latest:
            raise ValueError(f"transit key {name!r}: bad min_encryption_version {min_enc!r}")
        allowed = _setting(name, entry, "deletion_allowed", False, bool)
        keys[name] = TransitKey(name, versions, min_dec, min_enc, allowed, kind)
    return keys


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def dump_keys(keys: dict[str, TransitKey]) -> dict[str, object]:
    return {
        "format": FORMAT,
        "keys": {
            key.name: {
                "type": key.type,
                "versions": {
                    str(number): {"key": _b64(v.material), "hmac_key": _b64(v.hmac_key), "created": v.created}
                    for number, v in sorted(key.versions.items())
                },
                "min_decryption_version": key.min_decryption_version,
                "min_encryption_version": key.min_encryption_version,
                "deletion_allowed": key.deletion_allowed,
            }
            for key in keys.values()
        },
    }


def read_keys(path: Path) -> dict[str, TransitKey]:
    """The keys in ``path``; ``ValueError`` (never a path in the message) when it is unusable."""
    return parse_keys(parse_json(read_regular_file(path, MAX_KEYS_FILE_BYTES)))


def write_keys(path: Path, keys: dict[str, TransitKey]) -> None:
    """Atomic replace, mode 0600 from the start (key material never hits a readable file)."""
    write_atomically(path, (json.dumps(dump_keys(keys), indent=2) + "\n").encode(), 0o600)


def _change(path: Path, name: str, change: Callable[[TransitKey], TransitKey | None]) -> TransitKey:
    """Read-modify-write of key ``name`` under the lock (without it concurrent changes are lost);
    ``change`` returns the new key, or ``None`` to delete it. Returns the key as it was changed."""
    with locked(path):
        keys = read_keys(path)
        if name not in keys:
            raise KeyNotFound(f"no transit key named {name!r}")
        before = keys[name]
        after = change(before)
        if after is None:
            del keys[name]
        else:
            keys[name] = after
        write_keys(path, keys)
    return after or before


def create_key(path: Path, name: str, type: str = DEFAULT_KEY_TYPE) -> TransitKey:
    """Add key ``name`` (version 1, of ``type``) to the keys file, creating the file if needed."""
    key = TransitKey.generate(name, type)
    with locked(path):
        keys = read_keys(path) if path.exists() else {}
        if name in keys:
            raise KeyExists(f"transit key {name!r} already exists")
        keys[name] = key
        write_keys(path, keys)
    return key


def rotate_key(path: Path, name: str) -> TransitKey:
    """Add the next version of key ``name``; returns the key as written."""
    return _change(path, name, TransitKey.rotated)


def configure_key(
    path: Path,
    name: str,
    min_decryption_version: int | None = None,
    min_encryption_version: int | None = None,
    deletion_allowed: bool | None = None,
) -> TransitKey:
    """Change the settings of key ``name`` (``None``: unchanged); ``InvalidRequest`` if out of range."""
    return _change(
        path,
        name,
        lambda key: key.configured(min_decryption_version, min_encryption_version, deletion_allowed),
    )


def _deletable(key: TransitKey) -> None:
    if not key.deletion_allowed:
        raise DeletionNotAllowed(f"deletion is not allowed for {key.name!r}: set deletion_allowed first")


def delete_key(path: Path, name: str) -> None:
    """Remove key ``name`` and every version of it, if its ``deletion_allowed`` is set."""
    _change(path, name, _deletable)


def ensure_default_keys_file(state_dir: Path) -> Path:
    """``state_dir/transit-keys.json`` with a key named ``default``, created on first start."""
    path = state_dir / "transit-keys.json"
    if not path.exists():
        with locked(path):  # workers starting together: the first creates it
            if not path.exists():
                write_keys(path, {"default": TransitKey.generate("default")})
    return path


class KeyringFile:
    """The keyring of a keys file, re-read (at most once a second) when the file changes, so an
    offline ``rotate`` or one made by another worker takes effect without a restart.

    An unusable file (bad JSON, too deep, too big, a FIFO, a device, gone) keeps the last good
    ring and logs one error line per change of the file; with no good ring yet, ``current()``
    raises ``KeysUnavailable``."""

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
            raise KeysUnavailable(f"transit keys are unavailable: {self.error}")
        return ring

    def change(self, operation: Callable[..., Any], *args: Any) -> Any:
        """``operation(path, *args)`` (``create_key``, ``rotate_key``, …), then the new keys at
        once in this process (other workers see them within ``check_every_s``). Blocking: the
        lock may be held by another process for up to its timeout."""
        try:
            result = operation(self.path, *args)
        except TransitError:
            raise
        except TimeoutError as exc:  # the lock: its message names the file, not the directory
            raise KeysUnavailable(f"transit keys cannot be changed now: {exc}") from None
        except OSError as exc:  # e.g. a read-only secret mount
            raise KeysUnavailable(f"transit keys cannot be changed: {describe_os_error(exc)}") from None
        except ValueError as exc:  # the file on disk is unusable
            raise KeysUnavailable(f"transit keys cannot be changed: {exc}") from None
        with self._lock:
            self._checked = time.monotonic()
            self._reload()
        return result
