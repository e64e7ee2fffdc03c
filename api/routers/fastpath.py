"""Serve the hottest endpoints through plain Starlette routes.

FastAPI's per-request work for an ``APIRoute`` (dependency solving, parameter validation) measured
~140 µs here against ~70 µs for a plain Starlette ``Route`` with the same endpoint: more than the
whole inference call for a small model. Endpoints that take only ``request`` and path parameters
(and parse and validate their bodies themselves, see ``deps.json_body``) gain nothing from it.

``plain_routes`` builds a Starlette route per such APIRoute, calling the *same* endpoint function;
the app lists it first, so it serves the requests while the APIRoute keeps documenting the
operation in the OpenAPI schema (and would serve identically without the fast route).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _plain_endpoint(route: APIRoute) -> Callable[[Request], Awaitable[Response]]:
    parameters = set(inspect.signature(route.endpoint).parameters)
    allowed = {"request", *route.param_convertors}
    if not parameters <= allowed:
        raise TypeError(
            f"{route.path}: a plain route passes only request and path parameters, not {parameters - allowed}"
        )
    endpoint: Callable[..., Awaitable[Response]] = route.endpoint
    takes_request = "request" in parameters

    async def call(request: Request) -> Response:
        request.scope["route"] = route  # what metrics and tracing read, as on the APIRoute path
        kwargs: dict[str, Any] = dict(request.path_params)
        if takes_request:
            kwargs["request"] = request
        return await endpoint(**kwargs)

    return call


def plain_routes(routes: Iterable[Any], paths: set[str]) -> list[Route]:
    """Plain Starlette routes for the APIRoutes in ``routes`` whose path is in ``paths``."""
    out = [
        Route(
            route.path,
            _plain_endpoint(route),
            methods=sorted(route.methods or ()),
            name=f"{route.name}-plain",
        )
        for route in routes
        if isinstance(route, APIRoute) and route.path in paths
    ]
    missing = paths - {route.path for route in out}
    if missing:
        raise ValueError(f"no API routes for {sorted(missing)}")
    return out
