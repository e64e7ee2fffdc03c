"""Log lines for operators: ``json`` (one object per line) or timestamped ``text``.

Both formats carry the request's trace id: ``TraceIdFilter`` reads the ``traceparent`` the
middleware (api/middleware/traceparent.py) keeps in a context variable, so uvicorn's access and
error logs and the gateway's own loggers name the trace of the request they were written for.
The configuration is a ``logging.config.dictConfig`` dict holding classes, not import strings, so
uvicorn can hand it to worker processes (pickled by reference).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from .middleware.traceparent import current_traceparent

TRACE_LEVEL = 5  # uvicorn's "trace"
# the gateway's own loggers; everything else reaches the root handler from WARNING up
APP_LOGGERS = ("api", "nexpo")
# uvicorn.access's message arguments: client, method, path with query, HTTP version, status
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def utc_timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds: ``2026-12-07T10:04:05.123Z``."""
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TraceIdFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (``None`` outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        header = current_traceparent.get()  # "00-<32 hex trace id>-<16 hex span id>-<flags>"
        record.trace_id = header[3:35] if header else None
        record.span_id = header[36:52] if header else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": utc_timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            line["trace_id"] = trace_id
            line["span_id"] = getattr(record, "span_id", None)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            line.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger>: <message> [trace_id=...]``."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{utc_timestamp(record.created)} {record.levelname:<8} {record.name}: {record.getMessage()}"
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            text += f" trace_id={trace_id}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _level(name: str) -> int:
    return TRACE_LEVEL if name.lower() == "trace" else int(logging.getLevelName(name.upper()))


def log_config(level: str, log_format: str) -> dict[str, Any]:
    """A dictConfig for uvicorn's loggers, the gateway's and the root, in ``log_format``."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter

    def handler(stream: str) -> dict[str, Any]:
        return {
            "class": "logging.StreamHandler",
            "stream": f"ext://sys.{stream}",
            "formatter": "line",
            "filters": ["trace"],
        }

    def own() -> dict[str, Any]:
        return {"handlers": ["stderr"], "level": _level(level), "propagate": False}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"trace": {"()": TraceIdFilter}},
        "formatters": {"line": {"()": formatter}},
        # as uvicorn does: the access log on stdout, everything else on stderr
        "handlers": {"stderr": handler("stderr"), "stdout": handler("stdout")},
        "loggers": {
            "uvicorn": own(),
            "uvicorn.error": {"level": _level(level)},
            "uvicorn.access": {"handlers": ["stdout"], "level": logging.INFO, "propagate": False},
            **{name: own() for name in APP_LOGGERS},
        },
        "root": {"handlers": ["stderr"], "level": logging.WARNING},
    }
