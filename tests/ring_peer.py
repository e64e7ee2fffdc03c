"""A hostile peer of a shared channel: writes a ring's memory the way another process could.

The layout is ring.nim's (``RingHeader`` then ``capacity`` slots of ``stride`` bytes, each
``[seq u64 | len u32 | kind u32 | payload]``). Writes go through the file descriptor
(pwrite), never through a mapping of our own, so truncating the file cannot fault the peer.
Used by tests/unit/test_channels_hostile.py and tests/fuzz_ring.py.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

HEADER_SPAN = 512
SLOT_HEADER = 16

HEADER_FIELDS: dict[str, tuple[int, str]] = {
    "magic": (0, "Q"),
    "version": (8, "I"),
    "mode": (12, "I"),
    "capacity": (16, "Q"),
    "mask": (24, "Q"),
    "stride": (32, "Q"),
    "inline_max": (40, "Q"),
    "max_message": (48, "Q"),
    "shared": (56, "I"),
    "tail": (64, "Q"),
    "producer_cached_head": (72, "Q"),
    "send_guard": (128, "I"),
    "head": (192, "Q"),
    "consumer_cached_tail": (200, "Q"),
    "recv_guard": (256, "I"),
    "closed": (320, "I"),
    "not_empty": (384, "I"),
    "recv_waiters": (388, "I"),
    "not_full": (448, "I"),
    "send_waiters": (452, "I"),
}
SLOT_FIELDS: dict[str, tuple[int, str]] = {"seq": (0, "Q"), "len": (8, "I"), "kind": (12, "I")}
KIND_HEAP = 1
KIND_REF = 2


class Peer:
    """Read-write access to the file of the shared channel ``name`` (as its creator's user)."""

    def __init__(self, name: str) -> None:
        self.path = Path("/dev/shm", name.removeprefix("/"))
        self.fd = os.open(self.path, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.capacity = self.get("capacity")
        self.stride = self.get("stride")

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, offset: int, fmt: str) -> int:
        value: int = struct.unpack("<" + fmt, os.pread(self.fd, struct.calcsize(fmt), offset))[0]
        return value

    def _write(self, offset: int, fmt: str, value: int) -> None:
        size = struct.calcsize(fmt)
        os.pwrite(self.fd, struct.pack("<" + fmt, value & ((1 << (8 * size)) - 1)), offset)

    def get(self, field: str) -> int:
        offset, fmt = HEADER_FIELDS[field]
        return self._read(offset, fmt)

    def set(self, field: str, value: int) -> None:
        offset, fmt = HEADER_FIELDS[field]
        self._write(offset, fmt, value)

    def slot_offset(self, position: int) -> int:
        return HEADER_SPAN + (position % self.capacity) * self.stride

    def get_slot(self, position: int, field: str) -> int:
        offset, fmt = SLOT_FIELDS[field]
        return self._read(self.slot_offset(position) + offset, fmt)

    def set_slot(self, position: int, field: str, value: int) -> None:
        offset, fmt = SLOT_FIELDS[field]
        self._write(self.slot_offset(position) + offset, fmt, value)

    def set_payload(self, position: int, data: bytes) -> None:
        os.pwrite(self.fd, data, self.slot_offset(position) + SLOT_HEADER)

    def write(self, offset: int, data: bytes) -> None:
        os.pwrite(self.fd, data, offset)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
