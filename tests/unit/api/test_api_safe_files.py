"""api/safe_files.py: operator files read as hostile input, atomic rewrites, the rewrite lock."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from nexpo.api.safe_files import (
    UnsafeFileError,
    describe_os_error,
    locked,
    parse_json,
    read_regular_file,
    write_atomically,
)


def test_regular_files_and_symlinks_to_them_are_read(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_bytes(b"x" * 100)
    link = tmp_path / "link.json"  # mounted secrets are symlinks
    link.symlink_to(target)
    assert read_regular_file(target, 100) == b"x" * 100
    assert read_regular_file(link, 100) == b"x" * 100


def test_a_fifo_is_refused_at_once_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "keys.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(UnsafeFileError, match="a FIFO"):
        read_regular_file(fifo, 1 << 20)
    assert time.monotonic() - started < 5  # no writer ever comes: open must not wait for one


def test_devices_directories_and_sockets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFileError, match="character device"):
        read_regular_file(Path("/dev/zero"), 1 << 20)  # endless: memory would grow without bound
    link = tmp_path / "model.safetensors"
    link.symlink_to("/dev/zero")
    with pytest.raises(UnsafeFileError, match="character device"):
        read_regular_file(link, 1 << 20)
    with pytest.raises(UnsafeFileError, match="a directory"):
        read_regular_file(tmp_path, 1 << 20)
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(UnsafeFileError, match=r"cannot open|a socket"):
            read_regular_file(path, 1 << 20)


def test_size_limit_and_messages_without_the_path(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b"1" * 101)
    with pytest.raises(UnsafeFileError, match="101 bytes; the limit is 100") as too_big:
        read_regular_file(big, 100)
    with pytest.raises(UnsafeFileError, match="No such file") as missing:
        read_regular_file(tmp_path / "absent.json", 100)
    for error in (too_big.value, missing.value):
        assert str(tmp_path) not in str(error)
    assert describe_os_error(PermissionError(13, "Permission denied", "/secret/path")) == "Permission denied"


def test_absurd_json_nesting_is_a_clean_error() -> None:
    with pytest.raises(UnsafeFileError, match="nested too deeply"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(UnsafeFileError, match="not JSON"):
        parse_json(b"{")
    with pytest.raises(UnsafeFileError, match="UTF-8"):
        parse_json(b"\xff")
    assert parse_json(b'{"a": [1]}') == {"a": [1]}


def test_write_atomically_is_private_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "keys.json"
    write_atomically(path, b"one")
    write_atomically(path, b"two")
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys.json"]


def test_the_lock_excludes_and_its_wait_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with locked(path):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"held the lock on keys\.json"), locked(path, timeout_s=0.2):
            pass
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join(10)
    with locked(path, timeout_s=1):  # released when the holder left
        assert (tmp_path / ".keys.json.lock").exists()
