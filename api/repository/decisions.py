"""Explicit load/unload decisions, shared by the gateway's worker processes.

Each uvicorn worker holds its own ``ModelRepository``, and a load or unload request reaches one of
them. That worker applies it at once and records it here; every other worker reads the record
within ``FOLLOW_S`` (a ``stat`` per tick, the file only when it changed) and applies it too, so
all workers agree, and a worker the supervisor restarts starts from the same decisions.

The record is one small JSON file in the supervisor's runtime directory (``NEXPO_RUNTIME_DIR``,
mode 0700, api/workers.py): ``{"sequence": n, "models": {name: {"unloaded": bool, "sequence": k}}}``,
the latest decision per model, numbered so a worker applies each one once. Writers serialize on an
``flock``; the file is replaced atomically, so a reader never sees half of it. Its content is still
checked like any input: too large or malformed, it is logged and ignored (nothing is applied).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import orjson

from ..safe_files import locked, write_atomically

log = logging.getLogger("api.repository")

RUNTIME_DIR_ENV = "NEXPO_RUNTIME_DIR"  # set by api/workers.py
FILE_NAME = "repository-decisions.json"
MAX_BYTES = 1 << 20
MAX_MODELS = 10_000
MAX_NAME = 255  # a directory name
LOCK_TIMEOUT_S = 5.0
FOLLOW_S = 0.5  # how often a worker looks for decisions made by another one


class DecisionsError(OSError):
    """The decision could not be recorded (so it was not applied anywhere)."""


@dataclass(frozen=True)
class Decision:
    unloaded: bool
    sequence: int


def parse(data: bytes) -> tuple[int, dict[str, Decision]]:
    """(the last sequence number, the decision per model); ``ValueError`` on anything unexpected."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        raise ValueError("not an object with 'models'")
    sequence, models = doc.get("sequence"), doc["models"]
    if not _count(sequence) or len(models) > MAX_MODELS:
        raise ValueError("a bad 'sequence' or too many models")
    decisions: dict[str, Decision] = {}
    for name, entry in models.items():
        if not (0 < len(name) <= MAX_NAME and isinstance(entry, dict)):
            raise ValueError(f"a bad entry for {name[:64]!r}")
        unloaded, number = entry.get("unloaded"), entry.get("sequence")
        if not isinstance(unloaded, bool) or not _count(number) or number > sequence:
            raise ValueError(f"a bad entry for {name[:64]!r}")
        decisions[name] = Decision(unloaded, number)
    return sequence, decisions


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


class SharedDecisions:
    """The decisions file of one runtime directory. ``read``/``record`` block (call them in a
    worker thread); ``changed`` is one ``stat``."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self._seen_stamp: tuple[int, int, int] | None = None
        self._logged: str | None = None

    @classmethod
    def from_environment(cls) -> SharedDecisions | None:
        """The workers' shared decisions, when a supervisor prepared a runtime directory."""
        directory = os.environ.get(RUNTIME_DIR_ENV)
        return cls(Path(directory)) if directory else None

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def changed(self) -> bool:
        """Whether the file changed since the last ``read`` (or it cannot be checked)."""
        try:
            return self._stamp() != self._seen_stamp
        except OSError:
            return True

    def read(self) -> dict[str, Decision]:
        """The decision per model ({} when there is none yet, or the file is unusable: logged)."""
        try:
            stamp = self._stamp()
            if stamp is None:
                self._seen_stamp = None
                return {}
            with open(self.path, "rb") as file:
                data = file.read(MAX_BYTES + 1)
            self._seen_stamp = stamp
            decisions = parse(data)[1]
        except (OSError, ValueError) as exc:
            message = f"ignoring the shared repository decisions in {self.path}: {exc}"
            if message != self._logged:  # once, not every tick
                log.error("%s", message)
                self._logged = message
            return {}
        self._logged = None
        return decisions

    def record(self, name: str, *, unloaded: bool) -> int:
        """Record the latest decision for ``name``; its sequence number. ``DecisionsError``."""
        try:
            with locked(self.path, LOCK_TIMEOUT_S):
                try:
                    with open(self.path, "rb") as file:
                        sequence, decisions = parse(file.read(MAX_BYTES + 1))
                except FileNotFoundError:
                    sequence, decisions = 0, {}
                sequence += 1
                decisions[name] = Decision(unloaded, sequence)
                if len(decisions) > MAX_MODELS:
                    raise ValueError(f"more than {MAX_MODELS} models")
                models = {n: {"unloaded": d.unloaded, "sequence": d.sequence} for n, d in decisions.items()}
                write_atomically(self.path, orjson.dumps({"sequence": sequence, "models": models}))
                return sequence
        except (OSError, ValueError) as exc:
            raise DecisionsError(f"cannot record the decision in {self.path}: {exc}") from None
