"""Bounded lock-free channels of byte messages, for threads, asyncio and processes.

A :class:`Channel` carries ``bytes`` messages (any bytes-like object in, ``bytes`` out; empty
messages allowed) through a native ring (Lamport's SPSC ring or Vyukov's bounded queue, see
``nim/nexpo_core/runtime/``). Every method is one C call of the type ``nexpo._channel.Channel``
(``nexpo/_channel/``): a call that can proceed at once keeps the GIL; a call that has to wait
releases it around a bounded native wait. ``asend``/``arecv``/``async for`` (``nexpo/_channels/``)
are woken by the native side through an event fd registered with the event loop, never by
polling, and a cancelled wait takes nothing from the channel. :func:`select` receives from
whichever channel is ready first. :meth:`Channel.create_shared` puts the ring in POSIX shared
memory so processes exchange messages without pickling.

Within one process a ``bytes`` message is not copied: the ring holds a reference and the receiver
gets the very same (immutable) object back, as with ``queue.Queue``. Other bytes-like messages
(``bytearray``, ``memoryview``, ``bytes`` subclasses) are copied when sent, and every message of a
shared channel is copied.

Modes: ``"spsc"`` (one sending thread and one receiving thread at a time; a second one at the
same time gets ValueError), ``"mpsc"``, ``"spmc"``, ``"mpmc"`` (the default).

Shared channels: asyncio waits on a channel shared with another process use a helper thread
blocked in a native wait (the event fd only hears senders of this process). A process that
crashes mid-send can leave one slot unpublished; receivers in the other processes then time out
(``TimeoutError``) instead of waiting forever when they pass a timeout. Messages still in the ring
when every process has closed it are lost.

Threat model of shared channels: any process of the same user can open the name and write the
ring's memory at any time, or shrink its file. Such a peer can lose, reorder, forge or duplicate
messages of that ring, close it, or keep it looking empty or full (then calls time out); it
cannot crash this process, make it hang past a timeout or hold the GIL while it waits, make it
read or write outside the ring, or hand it a pointer or object: a shared ring carries inline
bytes only (no lent references, no heap pointers), its geometry is checked at open and kept in
process-local memory, and every slot is checked before it is read. A ring found in a state no
nexpo peer produces (or whose file shrank) raises :class:`nexpo.ChannelCorrupted` from then on in
this process. ``nim/nexpo_core/runtime/ring.nim`` has the details.
"""

from __future__ import annotations

from typing import Final, Literal

from nexpo import _channel
from nexpo._channels import aio
from nexpo._channels.select import aselect, select

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Channel", "ChannelMode", "aselect", "select"]

ChannelMode = Literal["spsc", "mpsc", "spmc", "mpmc"]

DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
DEFAULT_SHARED_MAX_MESSAGE_SIZE: Final = 64 * 1024
MAX_CAPACITY: Final = 1 << 24


class Channel(_channel.Channel):
    """A bounded channel of byte messages.

    ``capacity`` is rounded up to a power of two (at least 2). Messages longer than
    ``max_message_size`` raise ValueError. ``send``/``recv`` block (releasing the GIL) until they
    can proceed or ``timeout`` seconds pass (``TimeoutError``); after ``close()``, sends raise
    :class:`nexpo.ChannelClosed` at once and receives drain what is left, then raise it.

    The methods are the C type's (nexpo/_channel/); this subclass adds asyncio
    (nexpo/_channels/aio.py), whose per-loop watches it keeps.
    """

    __slots__ = ("_loops",)

    _loops: dict[int, aio.LoopWatch]

    def close(self) -> None:
        """Close the channel for every user (every process, for a shared one). Idempotent."""
        super().close()
        aio.wake_all(self)

    def __del__(self) -> None:
        if getattr(self, "_loops", None):
            aio.detach_all(self)

    # The asyncio methods are aio's functions themselves (no extra coroutine per call).
    arecv = aio.arecv
    asend = aio.asend
    __aiter__ = aio.aiter
