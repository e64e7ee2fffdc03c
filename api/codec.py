"""Strict base64 in request bodies, with errors that name the field."""

from __future__ import annotations

import base64
import binascii

from .problems import ProblemError


def b64decode(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProblemError(422, f"{field} is not valid base64 (standard alphabet, with padding)") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()
