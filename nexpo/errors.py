"""Exceptions raised by nexpo. Bad arguments raise the built-in TypeError/ValueError."""

from __future__ import annotations

__all__ = ["AuthenticationError", "ChannelClosed", "NexpoError"]


class NexpoError(Exception):
    """Base class of every nexpo-specific exception."""


class AuthenticationError(NexpoError):
    """Authenticated decryption or verification failed; no plaintext is released."""


class ChannelClosed(NexpoError):
    """Send on a closed channel, or receive on a closed and drained one."""
