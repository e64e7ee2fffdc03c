"""Per-request deadline: a request still unanswered after ``seconds`` gets 504 problem+json.

One timer for all requests instead of an ``asyncio.timeout`` per request (which costs a timer
handle per request, the most expensive thing in the middleware chain): in-flight requests are kept
as task → deadline, and while any are in flight a sweep every ``tick`` seconds cancels the overdue
ones. Deadlines are thus honoured to within one tick (≤ 50 ms). The cancellation is told apart
from others the way ``asyncio.timeout`` does it (``Task.uncancel``).

CPU jobs already running in a worker thread finish (threads cannot be interrupted) but their result
is dropped; queued work (the capacity limiter, the micro-batcher) is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..problems import send_problem

log = logging.getLogger("api")


AnswerTimeout = Callable[[Send, int, str], Awaitable[None]]  # sends the 504 in the path's shape


class Deadlines:
    """The deadlines of the requests in flight, swept by one timer (see the module doc)."""

    def __init__(self, seconds: float, per_path: dict[str, float] | None = None) -> None:
        self.seconds = seconds
        self.per_path = per_path or {}
        self.tick = min(0.05, seconds / 10, *(s / 10 for s in self.per_path.values()))
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def run(
        self,
        scope: Scope,
        send: Send,
        call: Callable[[Send], Awaitable[None]],
        answer: AnswerTimeout = send_problem,
    ) -> None:
        """``call(send)`` under this request's deadline; past it, ``answer`` sends the 504."""
        task = asyncio.current_task()
        if task is None:
            await call(send)
            return
        seconds = self.per_path.get(scope["path"], self.seconds)
        loop = asyncio.get_running_loop()
        self._deadlines[task] = loop.time() + seconds
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._sweep, loop)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await call(tracking_send)
        except asyncio.CancelledError:
            if task in self._expired:
                self._expired.discard(task)
                if task.uncancel() == 0:  # only ours: the deadline, not a shutdown or disconnect
                    if started:  # headers are out: all we can do is end the stream
                        log.warning("deadline hit mid-response on %s", scope["path"])
                        return
                    await answer(send, 504, f"request not completed within {seconds:g} s")
                    return
            raise
        finally:
            del self._deadlines[task]
            if task in self._expired:  # expired, but the app swallowed the cancellation and finished
                self._expired.discard(task)
                task.uncancel()

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in self._deadlines.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = loop.call_later(self.tick, self._sweep, loop) if self._deadlines else None


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, seconds: float, per_path: dict[str, float] | None = None) -> None:
        self.app = app
        self.deadlines = Deadlines(seconds, per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.deadlines.run(scope, send, lambda timed_send: self.app(scope, receive, timed_send))
