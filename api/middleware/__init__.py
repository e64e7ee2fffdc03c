"""Pure-ASGI middleware (no BaseHTTPMiddleware: it costs a task and a copy per request)."""

from .auth import ApiKeys, AuthMiddleware
from .body_limit import BodyLimitMiddleware, BodyTooLarge
from .metrics import MetricsMiddleware
from .rate_limit import RateLimitMiddleware
from .timeout import TimeoutMiddleware
from .traceparent import TraceparentMiddleware, current_traceparent

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
