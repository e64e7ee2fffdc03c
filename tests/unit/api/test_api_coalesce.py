"""``CoalescingTransport`` (api/coalesce.py): a response head leaves with its body in one write,
alone on the loop's next turn when no body follows, and before the connection closes."""

from __future__ import annotations

import asyncio
from typing import Any

from nexpo.api.coalesce import JOIN_MAX_BYTES, CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_a_head_and_its_body_leave_in_one_write() -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    assert inner.writes == []
    transport.write(b"{}")
    assert inner.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing held
    assert inner.writes == [HEAD + b"{}"]
    transport.write(b"more")  # not a head: written at once
    assert inner.writes[-1] == b"more"


async def test_a_head_without_a_body_leaves_on_the_next_turn_or_at_close() -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert inner.writes == [HEAD]
    transport.write(HEAD)
    transport.close()
    assert inner.writes == [HEAD, HEAD] and inner.closed
    assert transport.get_extra_info("peername") == "info:peername"  # the rest is the transport's


async def test_a_large_body_is_not_copied_into_its_heads_write() -> None:
    inner = FakeTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
    body = memoryview(bytearray(JOIN_MAX_BYTES + 1))
    transport.write(HEAD)
    transport.write(body)
    assert inner.writes == [HEAD, bytes(body)]
    transport.write(HEAD)
    transport.write(b"x" * JOIN_MAX_BYTES)  # at the limit: still one write
    assert inner.writes[-1] == HEAD + b"x" * JOIN_MAX_BYTES
