"""Bounded lock-free channels of byte messages, for threads, asyncio and processes.

A :class:`Channel` carries ``bytes`` messages (any bytes-like object in, ``bytes`` out; empty
messages allowed) through a native ring (Lamport's SPSC ring or Vyukov's bounded queue, see
``nim/nexpo_core/runtime/``). A call that can proceed at once keeps the GIL (one C call, see
``nexpo/_fastpath.c``); a call that has to wait releases it while it waits. ``asend``/``arecv``/``async for``
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

import asyncio
import contextlib
import math
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from nexpo._native import CData, check, error_for, fastpath, ffi, lib, read_buffer
from nexpo.errors import ChannelClosed

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Channel", "ChannelMode", "aselect", "select"]

ChannelMode = Literal["spsc", "mpsc", "spmc", "mpmc"]
_MODES: Final[dict[str, int]] = {"spsc": 0, "mpsc": 1, "spmc": 2, "mpmc": 3}
_MODE_NAMES: Final[tuple[ChannelMode, ...]] = ("spsc", "mpsc", "spmc", "mpmc")

DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
DEFAULT_SHARED_MAX_MESSAGE_SIZE: Final = 64 * 1024
MAX_CAPACITY: Final = 1 << 24
# Long blocking waits are cut into slices so signal handlers (Ctrl-C) run in between.
_WAIT_SLICE_NS: Final = 500_000_000
_SCRATCH_SIZE: Final = 1 << 16

_OK: Final = lib.NEXPO_OK
_EAGAIN: Final = lib.NEXPO_EAGAIN
_ETIMEOUT: Final = lib.NEXPO_ETIMEOUT
_ECLOSED: Final = lib.NEXPO_ECLOSED
_INTEREST_RECV: Final = 1
_INTEREST_SEND: Final = 2
_ON_BEHALF: Final = 4  # a helper thread's wait: does not hold an SPSC side (see runtime.h)

# Non-blocking attempts that keep the GIL (nexpo/_fastpath.c). Channel's per-message methods are
# C methods of its base class, _fastpath.ChannelCore: they make the attempt and call the Python
# method of the same name with a leading underscore (same arguments) only when it would block,
# when a timeout is given, or on any error. Those wait in native code with the GIL released
# (nexpo_channel_wait) and try again. In-process channels lend bytes messages (no copy).
_fast_send: Final = fastpath.send
_fast_recv: Final = fastpath.recv
_fast_send_many: Final = fastpath.send_many
_fast_recv_many: Final = fastpath.recv_many


class _Scratch(threading.local):
    """Per-thread output buffers, so a receive allocates nothing but its result."""

    def __init__(self) -> None:
        self.buf = ffi.new("char[]", _SCRATCH_SIZE)
        self.length = ffi.new("size_t *")
        self.heap = ffi.new("char **")
        self.index = ffi.new("size_t *")


_scratch = _Scratch()


def _deadline(timeout: float | None) -> int | None:
    """The time.monotonic_ns() at which a wait of ``timeout`` seconds ends (None: never)."""
    ns = _timeout_ns(timeout)
    return None if ns < 0 else time.monotonic_ns() + ns


def _timeout_ns(timeout: float | None) -> int:
    """None or infinity -> -1 (forever, waited in slices); seconds -> nanoseconds."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout}")
    if math.isinf(timeout):
        return -1
    return min(int(timeout * 1e9), 2**62)


def _take(buf: CData, length: int, heap: CData) -> bytes:
    """The received message: from the scratch buffer, or from a malloc'd block we free."""
    block = heap[0]
    if block:
        try:
            data: bytes = ffi.unpack(block, length)
        finally:
            lib.nexpo_free(block)
        return data
    out: bytes = ffi.unpack(buf, length)
    return out


def _check_int(value: object, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


class _LoopWatch:
    """One event loop's view of one channel: an event fd the native side writes to when the
    channel may have become readable or writable, and the futures waiting for that."""

    def __init__(self, channel: Channel, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.recv_waiters: list[asyncio.Future[None]] = []
        self.send_waiters: list[asyncio.Future[None]] = []
        self.rfd, self.wfd = _event_fd()
        ids = ffi.new("int32_t[2]")
        try:
            check(lib.nexpo_channel_watch(channel._h, self.wfd, _INTEREST_RECV, ids))
            check(lib.nexpo_channel_watch(channel._h, self.wfd, _INTEREST_SEND, ids + 1))
        except BaseException:
            _close_fds(self.rfd, self.wfd)
            raise
        self.recv_id, self.send_id = int(ids[0]), int(ids[1])
        loop.add_reader(self.rfd, self._on_ready)

    def _on_ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.rfd, 4096)
        self.wake_all()

    def wake_all(self) -> None:
        waiters = self.recv_waiters + self.send_waiters
        self.recv_waiters.clear()
        self.send_waiters.clear()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def detach(self, channel: Channel) -> None:
        if not self.loop.is_closed():
            self.loop.remove_reader(self.rfd)
        lib.nexpo_channel_unwatch(channel._h, self.recv_id)
        lib.nexpo_channel_unwatch(channel._h, self.send_id)
        _close_fds(self.rfd, self.wfd)
        self.wake_all()


def _event_fd() -> tuple[int, int]:
    """(read end, write end): one eventfd on Linux, a non-blocking pipe elsewhere."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def _close_fds(rfd: int, wfd: int) -> None:
    os.close(rfd)
    if wfd != rfd:
        os.close(wfd)


Message = bytes | bytearray | memoryview

if TYPE_CHECKING:

    class _ChannelCore:
        """The methods nexpo/_fastpath.c implements (documented there and on Channel)."""

        _addr: int
        _lend: bool

        def send(self, msg: Message, timeout: float | None = None) -> None: ...
        def recv(self, timeout: float | None = None) -> bytes: ...
        def try_send(self, msg: Message) -> bool: ...
        def try_recv(self) -> bytes | None: ...
        def send_many(self, msgs: Iterable[Message], timeout: float | None = None) -> int: ...
        def recv_many(self, max_n: int, timeout: float | None = None) -> list[bytes]: ...
        def _bind(self, addr: int, lend: bool, /) -> None: ...

else:
    _ChannelCore = fastpath.ChannelCore


class Channel(_ChannelCore):
    """A bounded channel of byte messages.

    ``capacity`` is rounded up to a power of two (at least 2). Messages longer than
    ``max_message_size`` raise ValueError. ``send``/``recv`` block (releasing the GIL) until they
    can proceed or ``timeout`` seconds pass (``TimeoutError``); after ``close()``, sends raise
    :class:`nexpo.ChannelClosed` at once and receives drain what is left, then raise it.
    """

    __slots__ = ("__weakref__", "_creator", "_loops", "_name", "_shared")

    _name: str | None
    _shared: bool
    _creator: bool
    _loops: dict[int, _LoopWatch]

    def __init__(
        self,
        capacity: int,
        *,
        mode: ChannelMode = "mpmc",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        _check_int(capacity, "capacity", 1, MAX_CAPACITY)
        code = _mode_code(mode)
        _check_int(max_message_size, "max_message_size", 0, 2**31 - 1)
        out = ffi.new("nexpo_channel **")
        check(lib.nexpo_channel_new(code, capacity, max_message_size, out))
        self._adopt(out[0], None, creator=False)

    def _adopt(self, handle: CData, name: str | None, *, creator: bool) -> None:
        # The C base class owns the handle from here on (released with this object); its
        # address is read-only and checked by the runtime, so no attribute a caller can set
        # reaches native code. Bytes are lent, not copied, within one process.
        try:
            self._bind(int(ffi.cast("uintptr_t", handle)), name is None)
        except BaseException:
            lib.nexpo_channel_release(handle)
            raise
        self._name = name
        self._shared = name is not None
        self._creator = creator
        self._loops = {}

    @property
    def _h(self) -> CData:
        """The native handle for cffi calls (borrowed: the caller keeps this Channel alive while
        the call runs, e.g. by passing the Channel, not the handle, to another thread)."""
        if not self._addr:
            raise ValueError("this Channel was not initialised (no native channel)")
        return ffi.cast("nexpo_channel *", self._addr)

    # --- shared memory ------------------------------------------------------------------

    @classmethod
    def create_shared(
        cls,
        name: str,
        capacity: int,
        *,
        mode: ChannelMode = "mpmc",
        max_message_size: int = DEFAULT_SHARED_MAX_MESSAGE_SIZE,
    ) -> Channel:
        """Create a channel in POSIX shared memory (``/dev/shm/<name>``, mode 0600).

        Other processes attach with :meth:`open_shared`. Every message is stored inline, so
        the segment is ``capacity * max_message_size`` bytes of address space (pages are only
        backed once written). ``close()`` on the creator (or the creator object being
        garbage-collected) unlinks the name; processes that opened it keep their mapping.
        """
        name_b = _check_name(name)
        _check_int(capacity, "capacity", 1, MAX_CAPACITY)
        code = _mode_code(mode)
        _check_int(max_message_size, "max_message_size", 0, 1 << 24)
        out = ffi.new("nexpo_channel **")
        check(lib.nexpo_channel_create_shared(name_b, code, capacity, max_message_size, out))
        self = cls.__new__(cls)
        self._adopt(out[0], name, creator=True)
        return self

    @classmethod
    def open_shared(cls, name: str) -> Channel:
        """Attach to a channel another process created with :meth:`create_shared`."""
        name_b = _check_name(name)
        out = ffi.new("nexpo_channel **")
        check(lib.nexpo_channel_open_shared(name_b, out))
        self = cls.__new__(cls)
        self._adopt(out[0], name, creator=False)
        return self

    # --- properties ---------------------------------------------------------------------

    def _info(self) -> list[int]:
        out = ffi.new("uint64_t[6]")
        check(lib.nexpo_channel_info(self._h, out, 6))
        return [int(v) for v in out]

    @property
    def capacity(self) -> int:
        return self._info()[1]

    @property
    def mode(self) -> ChannelMode:
        return _MODE_NAMES[self._info()[0]]

    @property
    def max_message_size(self) -> int:
        return self._info()[2]

    @property
    def closed(self) -> bool:
        return bool(self._info()[4])

    @property
    def shared(self) -> bool:
        return bool(self._info()[5])

    @property
    def name(self) -> str | None:
        """The shared-memory name, or None for an in-process channel."""
        return self._name

    def __len__(self) -> int:
        return int(lib.nexpo_channel_len(self._h))

    def __repr__(self) -> str:
        mode, cap, _, n, closed, shared = self._info()
        where = f" shared={self._name!r}" if shared else ""
        state = " closed" if closed else ""
        return f"<nexpo.Channel {_MODE_NAMES[mode]} {n}/{cap}{where}{state}>"

    # --- blocking API -------------------------------------------------------------------
    # send, recv, try_send, try_recv, send_many and recv_many are ChannelCore's C methods; they
    # fall back to these.

    def _send(self, msg: Message, timeout: float | None = None) -> None:
        deadline = _deadline(timeout)  # a bad timeout fails even when there is room
        status = self._attempt_send(msg)
        while status == _EAGAIN:
            if not self._wait_turn(_INTEREST_SEND, deadline):
                raise _failure(_ETIMEOUT, "send")
            status = self._attempt_send(msg)
        if status != _OK:
            raise _failure(status, "send")

    def _attempt_send(self, msg: object) -> int:
        try:
            return _fast_send(self, msg)
        except (TypeError, BufferError):
            read_buffer(msg, "msg")  # raises the precise TypeError
            raise

    def _try_send(self, msg: Message) -> bool:
        status = self._attempt_send(msg)
        if status == _OK:
            return True
        if status == _EAGAIN:
            return False
        raise _failure(status, "send")

    def _recv(self, timeout: float | None = None) -> bytes:
        deadline = _deadline(timeout)  # a bad timeout fails even when a message is ready
        got = _fast_recv(self)
        while got == _EAGAIN:
            if not self._wait_turn(_INTEREST_RECV, deadline):
                raise _failure(_ETIMEOUT, "recv")
            got = _fast_recv(self)
        if isinstance(got, bytes):
            return got
        raise _failure(got, "recv")

    def _try_recv(self) -> bytes | None:
        got = _fast_recv(self)
        if isinstance(got, bytes):
            return got
        if got == _EAGAIN:
            return None
        raise _failure(got, "recv")

    def _send_many(self, msgs: Iterable[Message], timeout: float | None = None) -> int:
        _deadline(timeout)  # a bad timeout fails before anything is sent
        return self._send_many_from(tuple(msgs), 0, timeout)

    def _send_many_from(self, items: list[Any] | tuple[Any, ...], start: int, timeout: float | None) -> int:
        """Send items[start:] (items[:start] went already); the count of all that went. A tuple
        snapshot: another thread may change a list while we wait."""
        items = tuple(items)
        deadline = _deadline(timeout)
        # start > 0: the fast path stopped there (having checked every item's type).
        sent, status = (start, _EAGAIN) if start else _fast_send_many(self, items, 0)
        if sent < 0:
            bad = -1 - sent
            read_buffer(items[bad], f"msgs[{bad}]")  # raises the precise TypeError
            raise TypeError(f"msgs[{bad}] must be a bytes-like object")
        while status == _EAGAIN:
            if not self._wait_turn(_INTEREST_SEND, deadline):
                status = _ETIMEOUT
                break
            sent, status = _fast_send_many(self, items, sent)
        if status == _OK or (sent > 0 and status in (_ECLOSED, _ETIMEOUT)):
            return sent
        raise _failure(status, "send_many")

    def _recv_many(self, max_n: int, timeout: float | None = None) -> list[bytes]:
        _check_int(max_n, "max_n", 1, 1 << 24)
        deadline = _deadline(timeout)
        got = _fast_recv_many(self, max_n)
        while got == _EAGAIN:
            if not self._wait_turn(_INTEREST_RECV, deadline):
                raise _failure(_ETIMEOUT, "recv_many")
            got = _fast_recv_many(self, max_n)
        if isinstance(got, list):
            return got
        raise _failure(got, "recv_many")

    def _wait_turn(self, interest: int, deadline: int | None) -> bool:
        """Wait in native code, with the GIL released, until the channel may be ready for
        ``interest`` (or closed), for one slice at most; False once ``deadline`` has passed.
        The caller then tries again with the GIL held (the attempt that runs last when the
        deadline passes is the last look)."""
        if deadline is None:
            step = _WAIT_SLICE_NS
        else:
            step = min(deadline - time.monotonic_ns(), _WAIT_SLICE_NS)
            if step <= 0:
                return False
        status = lib.nexpo_channel_wait(self._h, interest, step)
        if status not in (_OK, _ETIMEOUT):
            raise error_for(status)
        return True

    def close(self) -> None:
        """Close the channel for every user (every process, for a shared one). Idempotent."""
        check(lib.nexpo_channel_close(self._h))
        fastpath.release_pending()
        for watch in list(self._loops.values()):
            watch.wake_all()

    # --- protocols ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        """Receive until the channel is closed and drained."""
        while True:
            try:
                yield self.recv()
            except ChannelClosed:
                return

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        loops = getattr(self, "_loops", None)
        if loops:
            for watch in loops.values():
                watch.detach(self)
            loops.clear()

    # --- asyncio ------------------------------------------------------------------------

    def _watch(self) -> _LoopWatch:
        loop = asyncio.get_running_loop()
        watch = self._loops.get(id(loop))
        if watch is None or watch.loop is not loop:
            for key, old in list(self._loops.items()):
                if old.loop.is_closed():
                    old.detach(self)
                    del self._loops[key]
            watch = _LoopWatch(self, loop)
            self._loops[id(loop)] = watch
            weakref.finalize(loop, _forget_loop, weakref.ref(self), id(loop))
        return watch

    async def arecv(self) -> bytes:
        """Receive one message without blocking the event loop. Cancelling takes nothing."""
        if self._shared:
            msg: bytes = await self._shared_wait_then(self.try_recv, _INTEREST_RECV)
            return msg
        got = _fast_recv(self)
        if isinstance(got, bytes):
            return got
        watch = self._watch()
        s = _scratch
        while True:
            status = lib.nexpo_channel_try_recv_arm(
                self._h, watch.recv_id, s.buf, _SCRATCH_SIZE, s.length, s.heap
            )
            if status == _OK:
                return _take(s.buf, s.length[0], s.heap)
            if status != _EAGAIN:
                raise _failure(status, "recv")
            fut: asyncio.Future[None] = watch.loop.create_future()
            watch.recv_waiters.append(fut)
            try:
                await fut
            finally:
                if fut in watch.recv_waiters:
                    watch.recv_waiters.remove(fut)

    async def asend(self, msg: bytes | bytearray | memoryview) -> None:
        """Send one message without blocking the event loop. Cancelling sends nothing."""
        data, n = read_buffer(msg, "msg")
        if self._shared:
            await self._shared_wait_then(lambda: self.try_send(msg) or None, _INTEREST_SEND)
            return
        if _fast_send(self, msg) == _OK:
            return
        watch = self._watch()
        while True:
            status = lib.nexpo_channel_try_send_arm(self._h, watch.send_id, data, n)
            if status == _OK:
                return
            if status != _EAGAIN:
                raise _failure(status, "send")
            fut: asyncio.Future[None] = watch.loop.create_future()
            watch.send_waiters.append(fut)
            try:
                await fut
            finally:
                if fut in watch.send_waiters:
                    watch.send_waiters.remove(fut)

    async def _shared_wait_then(self, attempt: Any, interest: int) -> Any:
        """Shared rings: another process's send cannot write our event fd, so a helper thread
        waits natively (taking nothing), then we try; cancellation leaves the ring intact."""
        loop = asyncio.get_running_loop()
        while True:
            result = attempt()
            if result is not None:
                return result
            # The helper gets the Channel, not its handle: a cancelled wait returns at once, and
            # the Channel must outlive the native call still running in the helper thread.
            await loop.run_in_executor(None, _wait_on_behalf, self, interest, _WAIT_SLICE_NS)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[bytes]:
        while True:
            try:
                msg = await self.arecv()
            except ChannelClosed:
                return
            yield msg


def _wait_on_behalf(channel: Channel, interest: int, timeout_ns: int) -> int:
    """A helper thread's native wait (taking nothing, not holding an SPSC side)."""
    return int(lib.nexpo_channel_wait(channel._h, interest | _ON_BEHALF, timeout_ns))


def _forget_loop(ref: weakref.ReferenceType[Channel], key: int) -> None:
    channel = ref()
    if channel is not None:
        watch = channel._loops.pop(key, None)
        if watch is not None:
            watch.detach(channel)


def _mode_code(mode: object) -> int:
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    return _MODES[mode]


def _check_name(name: object) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")
    bare = name.removeprefix("/")
    if not bare or "/" in bare or "\0" in bare or len(bare) > 200:
        raise ValueError(f"name must be 1..200 characters without '/' or NUL, got {name!r}")
    return bare.encode()


def _failure(status: int, op: str) -> Exception:
    if status == _ETIMEOUT:
        return TimeoutError(f"channel {op} timed out")
    if status == _EAGAIN:
        return TimeoutError(f"channel {op} would block")
    if status == _ECLOSED:
        if op.startswith("send"):
            return ChannelClosed("send on a closed channel")
        return ChannelClosed("the channel is closed and drained")
    return error_for(status)


# --- select -------------------------------------------------------------------------------


def _check_channels(channels: Sequence[Channel]) -> list[Channel]:
    chans = list(channels)
    if not chans:
        raise ValueError("channels must not be empty")
    for i, ch in enumerate(chans):
        if not isinstance(ch, Channel):
            raise TypeError(f"channels[{i}] must be a nexpo.Channel, not {type(ch).__name__}")
    return chans


def select(channels: Sequence[Channel], timeout: float | None = None) -> tuple[Channel, bytes]:
    """Receive from whichever channel has a message first (Go's select on receive).

    Channels are tried round robin, so none is starved. Raises TimeoutError after ``timeout``
    seconds, ChannelClosed when every channel is closed and drained.
    """
    chans = _check_channels(channels)
    handles = ffi.new("nexpo_channel *[]", [c._h for c in chans])
    s = _scratch
    total = _timeout_ns(timeout)
    left = total
    while True:
        step = _WAIT_SLICE_NS if left < 0 else min(left, _WAIT_SLICE_NS)
        status = lib.nexpo_channel_select(
            handles, len(chans), step, s.index, s.buf, _SCRATCH_SIZE, s.length, s.heap
        )
        if status == _OK:
            return chans[s.index[0]], _take(s.buf, s.length[0], s.heap)
        if status != _ETIMEOUT:
            raise _failure(status, "recv")
        if left >= 0:
            left -= step
            if left <= 0:
                raise _failure(_ETIMEOUT, "select")


_rotor = 0


async def aselect(
    channels: Sequence[Channel],
    timeout: float | None = None,  # noqa: ASYNC109 - mirrors select(); asyncio.timeout() works too
) -> tuple[Channel, bytes]:
    """The asyncio form of :func:`select`. Cancelling takes nothing from any channel."""
    global _rotor
    chans = _check_channels(channels)
    total = _timeout_ns(timeout)
    loop = asyncio.get_running_loop()
    deadline = None if total < 0 else loop.time() + total / 1e9
    start = _rotor % len(chans)
    _rotor += 1
    order = chans[start:] + chans[:start]
    if any(c._shared for c in order):
        return await _aselect_shared(order, deadline)
    s = _scratch
    while True:
        closed = 0
        fut: asyncio.Future[None] = loop.create_future()
        watches = []
        try:
            for ch in order:
                watch = ch._watch()
                status = lib.nexpo_channel_try_recv_arm(
                    ch._h, watch.recv_id, s.buf, _SCRATCH_SIZE, s.length, s.heap
                )
                if status == _OK:
                    return ch, _take(s.buf, s.length[0], s.heap)
                if status == _ECLOSED:
                    closed += 1
                elif status != _EAGAIN:
                    raise _failure(status, "recv")
                watch.recv_waiters.append(fut)
                watches.append(watch)
            if closed == len(order):
                raise ChannelClosed("every channel is closed and drained")
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                raise TimeoutError("select timed out")
            await asyncio.wait_for(asyncio.shield(fut), left) if left is not None else await fut
        finally:
            for watch in watches:
                if fut in watch.recv_waiters:
                    watch.recv_waiters.remove(fut)
            if not fut.done():
                fut.cancel()


async def _aselect_shared(order: list[Channel], deadline: float | None) -> tuple[Channel, bytes]:
    loop = asyncio.get_running_loop()
    while True:
        closed = 0
        for ch in order:
            try:
                msg = ch.try_recv()
            except ChannelClosed:
                closed += 1
                continue
            if msg is not None:
                return ch, msg
        if closed == len(order):
            raise ChannelClosed("every channel is closed and drained")
        if deadline is not None and loop.time() >= deadline:
            raise TimeoutError("select timed out")
        # Wait (taking nothing) on the first channel for at most 1 ms, then re-scan: a native
        # wait cannot span rings of several processes, so this one case re-checks periodically.
        await loop.run_in_executor(None, _wait_on_behalf, order[0], _INTEREST_RECV, 1_000_000)
