"""nexpo: native speed without leaving Python.

A Nim core (GEMM, crypto, lock-free channels, a work-stealing scheduler) compiled into one
extension, ``nexpo._core``, under small typed Python modules.
"""

from __future__ import annotations

from nexpo import kernels
from nexpo._info import info, package_version
from nexpo.actors import Actor, ActorRef, ActorSystem
from nexpo.channels import Channel, select
from nexpo.errors import (
    ActorDeadlock,
    ActorStopped,
    AuthenticationError,
    BulkheadFull,
    ChannelClosed,
    ChannelCorrupted,
    CircuitOpen,
    InvalidModel,
    MailboxFull,
    NexpoError,
    PendingLimitExceeded,
    RestartIntensityExceeded,
    StreamClosed,
    UnsupportedModel,
)
from nexpo.scheduler import get_num_threads, set_num_threads
from nexpo.streams import Stream
from nexpo.supervision import Bulkhead, ChildSpec, CircuitBreaker, Supervisor

__version__ = package_version()

__all__ = [
    "Actor",
    "ActorDeadlock",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AuthenticationError",
    "Bulkhead",
    "BulkheadFull",
    "Channel",
    "ChannelClosed",
    "ChannelCorrupted",
    "ChildSpec",
    "CircuitBreaker",
    "CircuitOpen",
    "InvalidModel",
    "MailboxFull",
    "NexpoError",
    "PendingLimitExceeded",
    "RestartIntensityExceeded",
    "Stream",
    "StreamClosed",
    "Supervisor",
    "UnsupportedModel",
    "__version__",
    "get_num_threads",
    "info",
    "kernels",
    "select",
    "set_num_threads",
]
