"""Reading and rewriting the operator's files (transit keys, models, API keys) as hostile input.

A path can name a FIFO (``open`` blocks forever), a device (``/dev/zero`` never ends), a directory
or a file far larger than expected. ``read_regular_file`` opens without blocking, checks the opened
descriptor (so a swap between check and read cannot fool it) and reads at most ``limit + 1``
bytes. Error messages never contain the path: callers add the file's name in their log lines,
while HTTP answers stay free of filesystem paths.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK_TIMEOUT_S = 30.0
_LOCK_POLL_S = 0.01

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnsafeFileError(ValueError):
    """A file that is not a regular file of acceptable size, or cannot be opened or parsed."""


def describe_os_error(exc: OSError) -> str:
    """``exc`` without the file name ``str(exc)`` would include: 'Permission denied'."""
    if exc.strerror:
        return exc.strerror
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: Path, limit: int) -> bytes:
    """The content of ``path`` if it is a regular file of at most ``limit`` bytes, else
    ``UnsafeFileError`` (symlinks are followed: mounted secrets are symlinks; the target is checked)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UnsafeFileError(f"cannot open: {describe_os_error(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(f"not a regular file ({_kind(info.st_mode)})")
        if info.st_size > limit:
            raise UnsafeFileError(f"file is {info.st_size} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:  # the file may grow after fstat: never read past limit + 1
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise UnsafeFileError(f"file grew past the limit of {limit} bytes while being read")
        return b"".join(chunks)
    except OSError as exc:
        raise UnsafeFileError(f"cannot read: {describe_os_error(exc)}") from None
    finally:
        os.close(fd)


def read_text_file(path: Path, limit: int, *, what: str) -> str:
    """UTF-8 text of a regular file read at startup; ``ValueError`` naming ``what`` and the path
    (a startup error for the operator's log, never part of an HTTP answer)."""
    try:
        return read_regular_file(path, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path}: not UTF-8 text") from None
    except UnsafeFileError as exc:
        raise ValueError(f"{what} {path}: {exc}") from None


def parse_json(raw: bytes) -> Any:
    """JSON from ``raw``; bad UTF-8, bad JSON and absurd nesting are all ``UnsafeFileError``."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UnsafeFileError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UnsafeFileError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise UnsafeFileError("JSON nested too deeply") from None


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a part:
    a temporary file beside it (created with ``mode``), fsync, rename, fsync of the directory."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # durability of the rename; not every filesystem allows it
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def locked(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``.<name>.lock`` beside ``path`` (a read-modify-write of
    ``path`` by several processes then loses no update). ``TimeoutError`` after ``timeout_s``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"another process held the lock on {path.name} for over {timeout_s:g} s"
                    ) from None
                time.sleep(_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock
