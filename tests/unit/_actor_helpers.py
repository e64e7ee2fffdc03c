"""Actors and a recorder shared by the actor, supervision and metrics tests."""

from __future__ import annotations

import asyncio
from typing import Any

from nexpo.actors import Actor


class Recorder:
    """An ordered log of lifecycle events, with a way to wait for a given number of them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def add(self, kind: str, name: str) -> None:
        self.events.append((kind, name))
        self._changed.set()

    async def wait_for(self, count: int) -> list[tuple[str, str]]:
        """Wait until at least ``count`` events were recorded (bounded by a generous timeout)."""
        async with asyncio.timeout(10):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return list(self.events)

    def since(self, start: int) -> list[tuple[str, str]]:
        return self.events[start:]


class Worker(Actor):
    """Logs start/stop; "crash" raises, "exit" stops normally, anything else is echoed."""

    def __init__(self, label: str, recorder: Recorder) -> None:
        self.label = label
        self.recorder = recorder

    async def on_start(self) -> None:
        self.recorder.add("start", self.label)

    async def on_stop(self) -> None:
        self.recorder.add("stop", self.label)

    async def receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.label} crashed")
        if message == "exit":
            self.stop()
            return None
        return (self.label, message)


class Probe(Actor):
    """Puts every message it receives on ``inbox`` (for watch/Terminated tests)."""

    def __init__(self, inbox: asyncio.Queue[Any]) -> None:
        self.inbox = inbox

    async def receive(self, message: Any) -> None:
        self.inbox.put_nowait(message)
