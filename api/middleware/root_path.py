"""Serve under a path prefix (``NEXPO_ROOT_PATH``) behind a proxy that may or may not strip it.

Outermost, so every middleware inside sees the application's own path (``/v1/...``): auth, limits
and the hot paths match on ``scope["path"]``. ``scope["root_path"]`` tells FastAPI the prefix, so
``/docs`` loads ``<prefix>/openapi.json``. uvicorn's own ``root_path`` is not used: it prepends the
prefix to every path, which the middleware would then not recognise.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..problems import send_problem


class RootPathMiddleware:
    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path.rstrip("/")

    def _under_root(self, path: str) -> bool:
        return path == self.root_path or path.startswith(self.root_path + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"} or not self.root_path:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        scope = dict(scope, root_path=self.root_path)
        if self._under_root(path):  # the proxy kept the prefix
            scope["path"] = path[len(self.root_path) :] or "/"
            raw: bytes | None = scope.get("raw_path")
            prefix = self.root_path.encode()
            if raw is not None and raw.startswith(prefix):
                scope["raw_path"] = raw[len(prefix) :] or b"/"
        if self._under_root(scope["path"]):
            # Starlette's router would strip the prefix once more, routing a path the middleware
            # inside checked as another (``/p/p/v1/x`` as ``/v1/x`` past an auth check of ``/p/v1/x``).
            if scope["type"] == "http":
                await send_problem(send, 404, "not found")
            return
        await self.app(scope, receive, send)
