"""Exceptions raised by nexpo. Bad arguments raise the built-in TypeError/ValueError."""

from __future__ import annotations

__all__ = [
    "ActorDeadlock",
    "ActorStopped",
    "AuthenticationError",
    "BulkheadFull",
    "ChannelClosed",
    "ChannelCorrupted",
    "CircuitOpen",
    "InvalidModel",
    "MailboxFull",
    "NexpoError",
    "PendingLimitExceeded",
    "RestartIntensityExceeded",
    "StreamClosed",
    "UnsupportedModel",
]


class NexpoError(Exception):
    """Base class of every nexpo-specific exception."""


class AuthenticationError(NexpoError):
    """Authenticated decryption or verification failed; no plaintext is released."""


class ChannelClosed(NexpoError):
    """Send on a closed channel, or receive on a closed and drained one."""


class ChannelCorrupted(NexpoError):
    """Another process wrote a shared channel's memory into a state no nexpo peer produces (or
    shrank its file). This process stops using the ring: every later call raises this too."""


class MailboxFull(NexpoError):
    """``ActorRef.tell``/``ask`` found the actor's bounded mailbox full (use ``send`` to wait)."""


class PendingLimitExceeded(NexpoError):
    """An actor already has its maximum number of unanswered asks."""


class ActorStopped(NexpoError):
    """The actor was stopped before it answered (or before the message was sent)."""


class ActorDeadlock(NexpoError, RuntimeError):
    """An actor asked itself and would have waited forever for its own reply."""


class RestartIntensityExceeded(NexpoError):
    """A supervisor restarted children more than ``max_restarts`` times within ``period`` seconds."""


class CircuitOpen(NexpoError):
    """The circuit breaker is open: the call was rejected without being tried."""


class BulkheadFull(NexpoError):
    """The bulkhead's concurrent slots and its waiting room are all taken."""


class StreamClosed(NexpoError):
    """Put on a closed stream."""


class UnsupportedModel(NexpoError):
    """An ONNX model uses an operator, attribute, opset or dtype the inference engine does not run.

    Raised when the model is loaded (or planned for new input shapes), naming the node, its
    operator and the opset: the engine refuses rather than risk a wrong answer.
    """


class InvalidModel(NexpoError, ValueError):
    """An ONNX model is malformed: a cycle, a missing initializer, inconsistent shapes, ..."""
