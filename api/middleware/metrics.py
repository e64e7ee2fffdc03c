"""Request count, latency and in-flight gauge per route template, as pure ASGI.

Label children are cached per (method, route, status) so the hot path is two dict lookups,
one ``inc`` and one ``observe``. Routes are templates (``/v1/models/{name}/infer``), unmatched
paths collapse into one label: cardinality stays bounded.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nexpo.metrics import REGISTRY

# Registered with nexpo's registry, so /metrics (nexpo.metrics.exposition) shows them beside the
# runtime's metrics, in one process or aggregated over several workers.
REQUESTS = Counter(
    "nexpo_http_requests_total", "HTTP requests answered", ["method", "route", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "nexpo_http_request_duration_seconds",
    "Time from request start to the end of the response",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "nexpo_http_requests_in_flight", "Requests being served", multiprocess_mode="livesum", registry=REGISTRY
)

UNMATCHED = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """The per-request series, with their label children cached per (method, route, status)."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def record(self, scope: Scope, status: int, start: float) -> None:
        """One answered request: ``scope["route"]`` (set by routing or a hot path) names it."""
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        key = (method, template, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = REQUESTS.labels(method, template, str(status))
        counter.inc()
        hkey = (method, template)
        histogram = self._histograms.get(hkey)
        if histogram is None:
            histogram = self._histograms[hkey] = LATENCY.labels(method, template)
        histogram.observe(time.perf_counter() - start)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = RequestMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            IN_FLIGHT.dec()
            self.metrics.record(scope, status, start)
