"""The transit domain's errors: each says what went wrong and nothing about HTTP (the routers in
api/routers/transit*.py map them to problems)."""

from __future__ import annotations


class TransitError(Exception):
    """A transit operation that cannot be done; the message says why."""


class KeyNotFound(TransitError):
    """No key of that name."""


class KeyExists(TransitError):
    """``create`` of a name that is taken."""


class InvalidToken(TransitError):
    """A token, HMAC or signature that is malformed, of a retired or unknown version, altered, or
    sealed under another key or context."""


class InvalidRequest(TransitError):
    """A request the key cannot serve: an operation its type does not support, a key version out
    of range, a bad parameter (``bits``, an algorithm, a configuration)."""


class DeletionNotAllowed(TransitError):
    """``delete`` of a key whose ``deletion_allowed`` is false."""


class KeysUnavailable(TransitError):
    """No usable keys: the keys file is unusable (and none was loaded before) or not configured."""
