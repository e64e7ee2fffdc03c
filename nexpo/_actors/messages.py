"""Messages the runtime itself delivers, and the records it keeps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexpo._actors.ref import ActorRef


@dataclass(frozen=True, slots=True)
class Terminated:
    """Delivered to watchers once ``ref`` has stopped for good; ``reason`` is None for a normal stop."""

    ref: ActorRef
    reason: BaseException | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be delivered (``reason``: "stopped", "mailbox full", ...)."""

    recipient: str
    message: Any
    reason: str


class Ask:
    """A mailbox entry that expects a reply through ``future``."""

    __slots__ = ("future", "message")

    def __init__(self, message: Any, future: asyncio.Future[Any]) -> None:
        self.message = message
        self.future = future


class _Stop:
    """Mailbox entry asking the actor to stop once it has processed what came before."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<stop>"


STOP = _Stop()
