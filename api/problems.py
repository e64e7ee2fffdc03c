"""Every error is ``application/problem+json`` (RFC 9457): a ``Problem`` with no stack trace.

Handlers here turn HTTP, validation and unexpected exceptions into problems; ``problem_responses``
documents them in the OpenAPI schema; ``send_problem`` serves pure-ASGI middleware.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Send

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("api")


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(default="about:blank", description="URI identifying the problem type")
    title: str = Field(description="short summary of the problem type")
    status: int = Field(description="HTTP status code")
    detail: str = Field(description="what went wrong in this request")
    errors: list[dict[str, Any]] | None = Field(default=None, description="per-field validation errors")


class ProblemError(StarletteHTTPException):
    """Raise to answer with a problem; it travels through FastAPI's body parsing untouched."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=dict(headers) if headers else None)


def problem_body(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return json.dumps(body, separators=(",", ":")).encode()


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> Response:
    return Response(
        problem_body(status, detail, errors),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


async def send_problem(
    send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer from pure-ASGI middleware before the application ran."""
    body = problem_body(status, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: echoing the rejected input back could be large or sensitive.
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


def validation_problem_body(exc: RequestValidationError) -> bytes:
    errors = _validation_errors(exc)
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem_body(422, summary or "request validation failed", errors)


def install_handlers(app: FastAPI) -> None:
    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(exc.status_code, str(exc.detail), exc.headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return Response(validation_problem_body(exc), status_code=422, media_type=PROBLEM_MEDIA_TYPE)

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return problem_response(500, "internal error; the server log has the details")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)


_DESCRIPTIONS = {
    400: "Bad request (malformed body or token)",
    401: "Missing or invalid API key",
    404: "Not found",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input: the detail says what is wrong",
    429: "Rate limit exceeded: retry after `Retry-After` seconds",
    503: "Not ready",
    504: "Request deadline exceeded",
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json errors for ``codes``."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS.get(code, _title(code)),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
        }
        if code == 429:
            entry["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}
            }
        out[code] = entry
    return out


# What every /v1 endpoint can answer, whatever it does.
V1_ERRORS = problem_responses(401, 413, 422, 429, 504)
