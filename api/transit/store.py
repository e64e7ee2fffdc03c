"""The transit keys file: its format, atomic rewrites under a lock, and the server's reloading view.

Keys file (JSON, mode 0600)::

    {"keys": {"orders": {"versions": {"1": "<base64 32 bytes>", "2": "…"},
                         "min_decryption_version": 1}}}

Concurrent ``create``/``rotate`` runs serialise on a lock file beside the keys file and replace it
atomically, so no version is ever lost. The server reads the file as hostile input (bounded size,
regular files only) and, when a rewrite is unusable, keeps the keys it has and logs why.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
from pathlib import Path

from ..safe_files import describe_os_error, locked, parse_json, read_regular_file, write_atomically
from .keyring import KEY_BYTES, KEY_NAME, KeyExists, KeyNotFound, Keyring, KeysUnavailable, TransitKey

log = logging.getLogger("api")

MAX_KEYS_FILE_BYTES = 4 * 1024 * 1024  # ~60 bytes a version: room for tens of thousands


def parse_keys(data: object) -> dict[str, TransitKey]:
    """The keys of a parsed keys file; ``ValueError`` saying which rule it breaks."""
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
    write_atomically(path, (json.dumps(dump_keys(keys), indent=2) + "\n").encode(), 0o600)


def create_key(path: Path, name: str) -> TransitKey:
    """Add key ``name`` (version 1) to the keys file, creating the file if needed."""
    key = TransitKey.generate(name)
    with locked(path):
        keys = read_keys(path) if path.exists() else {}
        if name in keys:
            raise KeyExists(f"transit key {name!r} already exists")
        keys[name] = key
        write_keys(path, keys)
    return key


def rotate_key(path: Path, name: str) -> TransitKey:
    """Add the next version of key ``name``; returns the key as written."""
    with locked(path):  # read-modify-write: without the lock concurrent rotations lose versions
        keys = read_keys(path)
        if name not in keys:
            raise KeyNotFound(f"no transit key named {name!r}")
        keys[name] = keys[name].rotated()
        write_keys(path, keys)
    return keys[name]


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
    offline ``rotate`` takes effect without a restart.

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
