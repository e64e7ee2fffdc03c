"""Supervision trees (Erlang/OTP semantics) and the circuit breaker and bulkhead patterns.

    tree = system.spawn(
        Supervisor,
        [ChildSpec(Database, "db"), ChildSpec(Cache, "cache", restart=TRANSIENT)],
        strategy=REST_FOR_ONE, max_restarts=3, period=5.0, backoff=Backoff(initial=0.05, cap=2.0),
        name="root",
    )

A nested tree is a ChildSpec whose factory is ``Supervisor`` (with its children as args).
"""

from __future__ import annotations

from nexpo._actors.policy import Backoff, Restart
from nexpo._supervision.breaker import CircuitBreaker, CircuitState
from nexpo._supervision.bulkhead import Bulkhead
from nexpo._supervision.supervisor import WHICH_CHILDREN, ChildSpec, Strategy, Supervisor
from nexpo.errors import BulkheadFull, CircuitOpen, RestartIntensityExceeded

PERMANENT = Restart.PERMANENT
TRANSIENT = Restart.TRANSIENT
TEMPORARY = Restart.TEMPORARY
ONE_FOR_ONE = Strategy.ONE_FOR_ONE
ONE_FOR_ALL = Strategy.ONE_FOR_ALL
REST_FOR_ONE = Strategy.REST_FOR_ONE

__all__ = [
    "ONE_FOR_ALL",
    "ONE_FOR_ONE",
    "PERMANENT",
    "REST_FOR_ONE",
    "TEMPORARY",
    "TRANSIENT",
    "WHICH_CHILDREN",
    "Backoff",
    "Bulkhead",
    "BulkheadFull",
    "ChildSpec",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitState",
    "Restart",
    "RestartIntensityExceeded",
    "Strategy",
    "Supervisor",
]
