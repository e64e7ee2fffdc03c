"""What the transit routers share: the domain's errors as problems, the keyring dependency, and
the admin check of key management.

The domain (api/transit/) raises ``TransitError``s; ``PROBLEMS`` maps them to problems here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Path, Request

from ..deps import GatewayDep
from ..middleware.auth import find_key
from ..problems import ProblemError
from ..state import Gateway
from ..transit import (
    DeletionNotAllowed,
    InvalidRequest,
    InvalidToken,
    KeyExists,
    KeyNotFound,
    Keyring,
    KeyringFile,
    KeysUnavailable,
    TransitError,
)

KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
KeyName = Path(pattern=KEY_NAME_PATTERN, description="transit key name")  # for parameters called ``name``

Problems = tuple[tuple[type[TransitError], int], ...]
PROBLEMS: Problems = (
    (KeyNotFound, 404),
    (InvalidToken, 400),
    (InvalidRequest, 400),
    (DeletionNotAllowed, 400),  # as Vault answers it
    (KeysUnavailable, 503),
)
KEY_PROBLEMS: Problems = (*PROBLEMS, (KeyExists, 409))  # only key management creates keys


@contextmanager
def as_problems(problems: Problems = PROBLEMS) -> Iterator[None]:
    """Answer the domain's errors as problems (any other ``TransitError`` is a bug: a 500)."""
    try:
        yield
    except TransitError as exc:
        for kind, status in problems:
            if isinstance(exc, kind):
                raise ProblemError(status, str(exc)) from None
        raise


def keyring_file(gateway: Gateway) -> KeyringFile:
    with as_problems():
        if gateway.keyring is None:
            raise KeysUnavailable(
                f"transit keys are unavailable: {gateway.keyring_error or 'not configured'}"
            )
        return gateway.keyring


async def get_keyring(gateway: GatewayDep) -> Keyring:
    """The current keyring (a dependency: 503 comes before the body is looked at)."""
    with as_problems():
        return keyring_file(gateway).current()


KeyringDep = Annotated[Keyring, Depends(get_keyring)]


def require_admin(request: Request) -> None:
    """Key management changes what every client can decrypt, so it needs an admin key
    (``NEXPO_ADMIN_API_KEYS``, as /v2 repository control); with none configured it is refused."""
    gateway: Gateway = request.app.state.gateway
    if gateway.admin_keys is None:
        raise ProblemError(403, "transit key management is disabled: set NEXPO_ADMIN_API_KEYS to allow it")
    candidate = find_key(request.scope["headers"])
    if candidate is None or gateway.admin_keys.match(candidate) is None:
        raise ProblemError(403, "transit key management needs an admin API key")


AdminDep = Depends(require_admin)
