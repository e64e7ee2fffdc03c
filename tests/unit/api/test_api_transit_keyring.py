"""api/transit/keyring.py: the transit domain raises its own errors and knows nothing of HTTP."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from nexpo.api.transit import InvalidToken, KeyNotFound, Keyring, TransitError, TransitKey


def test_the_domain_raises_domain_errors_not_http() -> None:
    from starlette.exceptions import HTTPException

    ring = Keyring({})
    with pytest.raises(KeyNotFound, match="no transit key named 'nope'"):
        ring.encrypt("nope", b"")
    ring = Keyring({"orders": TransitKey.generate("orders")})
    with pytest.raises(InvalidToken, match="malformed"):
        ring.decrypt("orders", "vault:v1:abc")
    assert not issubclass(TransitError, HTTPException)
    code = "import sys, nexpo.api.transit; sys.exit('starlette' in sys.modules or 'fastapi' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_tokens_open_only_with_their_key_version_and_context() -> None:
    key = TransitKey.generate("orders")
    ring = Keyring({"orders": key})
    token, version = ring.encrypt("orders", b"payload", b"tenant-1")
    assert (version, ring.decrypt("orders", token, b"tenant-1")) == (1, (b"payload", 1))
    with pytest.raises(InvalidToken, match="altered or belongs to another key or context"):
        ring.decrypt("orders", token, b"tenant-2")
    rotated = Keyring({"orders": key.rotated()})
    assert rotated.encrypt("orders", b"")[1] == 2
    assert rotated.decrypt("orders", token, b"tenant-1") == (b"payload", 1)
    retired = Keyring({"orders": TransitKey("orders", key.rotated().versions, min_decryption_version=2)})
    with pytest.raises(InvalidToken, match="below min_decryption_version"):
        retired.decrypt("orders", token, b"tenant-1")
    prefix, body = token.rsplit(":", 1)
    short = base64.b64encode(base64.b64decode(body)[:20]).decode()
    with pytest.raises(InvalidToken, match="too short"):
        ring.decrypt("orders", f"{prefix}:{short}")
    with pytest.raises(ValueError, match="must match"):
        TransitKey.generate("bad name")
