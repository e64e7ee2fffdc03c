"""Per-request deadline: a request still unanswered after ``seconds`` gets 504 problem+json.

CPU jobs already running in a worker thread finish (threads cannot be interrupted) but their result
is dropped; queued work (the capacity limiter, the micro-batcher) is cancelled.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import send_problem

log = logging.getLogger("api")


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, seconds: float, per_path: dict[str, float] | None = None) -> None:
        self.app = app
        self.seconds = seconds
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seconds = self.per_path.get(scope["path"], self.seconds)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:  # headers are out: all we can do is end the stream
                log.warning("deadline hit mid-response on %s", scope["path"])
                return
            await send_problem(send, 504, f"request not completed within {seconds:g} s")
