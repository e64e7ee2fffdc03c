"""Pure-ASGI middleware (no BaseHTTPMiddleware: it costs a task and a copy per request)."""

from api.middleware.auth import ApiKeys, AuthMiddleware
from api.middleware.body_limit import BodyLimitMiddleware, BodyTooLarge
from api.middleware.metrics import MetricsMiddleware
from api.middleware.rate_limit import RateLimitMiddleware
from api.middleware.timeout import TimeoutMiddleware
from api.middleware.traceparent import TraceparentMiddleware, current_traceparent

__all__ = [
    "ApiKeys",
    "AuthMiddleware",
    "BodyLimitMiddleware",
    "BodyTooLarge",
    "MetricsMiddleware",
    "RateLimitMiddleware",
    "TimeoutMiddleware",
    "TraceparentMiddleware",
    "current_traceparent",
]
