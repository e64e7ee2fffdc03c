"""Service settings from the environment (prefix ``NEXPO_``) via pydantic-settings.

Every field can be set as ``NEXPO_<FIELD>`` (``NEXPO_PORT=9000``, ``NEXPO_API_KEYS=k1,k2``).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODELS_DIR = Path(__file__).resolve().parent / "models"
MiB = 1024 * 1024


def default_state_dir() -> Path:
    """Where the generated API key lives when none is configured (XDG state dir)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "nexpo"


def usable_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def check_redis_url(url: str) -> str:
    """``url`` when redis-py can connect with it; ``ValueError`` otherwise (no I/O here)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise ValueError("no host")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError("the path must be a database number")
    elif parts.scheme == "unix":
        if not parts.path:
            raise ValueError("no socket path")
    else:
        raise ValueError("the scheme must be redis, rediss or unix")
    try:  # redis-py's own reading of the options in the query string (no I/O)
        from redis.connection import parse_url
    except ImportError:
        return url
    parse_url(url)  # type: ignore[no-untyped-call]  # ValueError naming the option
    return url


class Settings(BaseSettings):
    """The gateway's configuration; defaults start a secure service with the bundled model."""

    # inf/nan would pass ``gt=0`` checks and then break timers and rounding
    model_config = SettingsConfigDict(env_prefix="NEXPO_", extra="ignore", frozen=True, allow_inf_nan=False)

    # --- server
    host: str = Field(default="127.0.0.1", description="interface to bind")
    port: int = Field(default=8000, ge=0, le=65535, description="port to bind (0 picks a free one)")
    grpc_port: int = Field(
        default=8001, ge=0, le=65535, description="port of the v2 protocol over gRPC (0: no gRPC server)"
    )
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes")
    access_log: bool = Field(default=False, description="uvicorn access log (off: it costs throughput)")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        default="info", description="lowest level logged"
    )
    log_format: Literal["json", "text"] = Field(
        default="text", description="json: one object per line (time, level, logger, message, trace_id)"
    )
    graceful_shutdown_s: float = Field(default=20.0, gt=0, description="SIGTERM drain grace period")
    root_path: str = Field(
        default="",
        pattern=r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$",
        description="path prefix the gateway is served under behind a proxy (/docs links use it)",
        json_schema_extra={"expected": "a path prefix such as /nexpo (segments of URL path characters)"},
    )
    proxy_headers: bool = Field(
        default=False, description="client IPs from X-Forwarded-For, trusted from forwarded_allow_ips only"
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1", description="comma-separated proxy IPs or networks trusted for forwarded headers"
    )

    # --- connections (api/http_limits.py: enforced before any request reaches the app)
    max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="request line + headers limit (431 and close beyond)"
    )
    head_timeout_s: float = Field(
        default=10.0, gt=0, description="time from a request's first byte to its last header (408 beyond)"
    )
    idle_timeout_s: float = Field(
        default=5.0, gt=0, description="a connection with no request in progress is closed after this"
    )
    max_connections: int = Field(
        default=1000, ge=1, description="open connections per worker; beyond, 503 and close at once"
    )

    # --- auth
    api_keys: str | None = Field(
        default=None, description="comma-separated API keys (a flag shows in ps: prefer the file)", repr=False
    )
    api_keys_file: Path | None = Field(default=None, description="file with one API key per line")
    auth_disabled: bool = Field(default=False, description="serve /v1/* without API keys (explicit opt-out)")
    state_dir: Path = Field(default_factory=default_state_dir, description="where a generated key is kept")

    # --- limits
    max_body_bytes: int = Field(default=8 * MiB, ge=1024, description="request body limit (413 beyond)")
    max_stream_bytes: int = Field(
        default=4 * 1024 * MiB, ge=1024, description="body limit of /v1/hash/stream"
    )
    rate_limit_rps: float = Field(default=1000.0, ge=0, description="per-key token refill per second; 0: off")
    rate_limit_burst: int = Field(default=2000, ge=1, description="per-key bucket size")
    request_timeout_s: float = Field(default=30.0, gt=0, description="per-request deadline (504 beyond)")
    stream_timeout_s: float = Field(default=600.0, gt=0, description="deadline of /v1/hash/stream uploads")
    cpu_workers: int = Field(default_factory=usable_cores, ge=1, description="concurrent CPU-bound jobs")
    max_inline_cost: int = Field(
        default=64 * 1024,
        ge=0,
        description="CPU work of at most this many bytes (read and written) runs on the event loop, "
        "cheaper than a thread hop; more runs in the cpu_workers threads",
    )

    # --- shared rate limits (api/middleware/shared_rate_limit.py)
    redis_url: str | None = Field(
        default=None,
        description="Redis that every worker and replica share rate limits through "
        "(unset: limits are per worker); while it is unreachable, limits fall back to per worker",
        repr=False,  # may hold a password
        json_schema_extra={"expected": "a redis://[user:pass@]host[:port][/db], rediss:// or unix:// URL"},
    )
    redis_timeout_s: float = Field(
        default=0.1, gt=0, le=10, description="deadline of each Redis call (connection wait included)"
    )
    redis_pool_size: int = Field(default=16, ge=1, le=1024, description="Redis connections per worker")
    redis_key_prefix: str = Field(
        default="nexpo:ratelimit:", min_length=1, max_length=100, description="prefix of Redis bucket keys"
    )

    # --- inference
    models_dir: Path = Field(
        default=DEFAULT_MODELS_DIR,
        description="directory of *.safetensors MLP models and *.onnx models (each served as version 1)",
    )
    batching: bool = Field(default=True, description="merge concurrent infer requests into one batch")
    max_batch_size: int = Field(default=128, ge=1, le=65536, description="rows per merged batch")
    max_batch_wait_ms: float = Field(default=2.0, ge=0, le=1000, description="how long a batch waits to fill")
    max_infer_rows: int = Field(default=1024, ge=1, description="rows one request may send")
    model_repository: Path | None = Field(
        default=None, description="Triton-layout model repository <name>/<version>/model.* served on /v2"
    )
    repository_poll_s: float = Field(
        default=5.0, ge=0, le=3600, description="how often the model repository is rescanned (0: never)"
    )
    admin_api_keys: str | None = Field(
        default=None, description="comma-separated keys allowed to load/unload models on /v2", repr=False
    )
    allow_no_models: bool = Field(
        default=False, description="ready (/readyz 200) with no model loaded; a gateway for processing only"
    )

    # --- processing
    max_hash_items: int = Field(
        default=100_000, ge=1, description="items per /v1/hash, /v1/hmac or /v1/merkle request"
    )
    max_matmul_elements: int = Field(default=4_000_000, ge=1, description="per operand and result")
    max_json_matmul_elements: int = Field(
        default=65_536, ge=1, description="per operand and result of a JSON matmul (.npy beyond)"
    )
    transit_keys_file: Path | None = Field(default=None, description="JSON file of named transit keys")

    # --- observability
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP endpoint: switches OpenTelemetry on"
    )
    service_name: str = Field(default="nexpo-gateway", description="service.name of exported traces")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("root_path", mode="before")
    @classmethod
    def _no_trailing_slash(cls, value: object) -> object:
        return value.rstrip("/") if isinstance(value, str) else value  # "/" is no prefix

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            return check_redis_url(value) if value else None  # an empty variable means unset
        return value

    @cached_property
    def configured_keys(self) -> tuple[str, ...]:
        """The keys given by NEXPO_API_KEYS and NEXPO_API_KEYS_FILE (possibly none)."""
        keys: list[str] = []
        if self.api_keys:
            keys += [k.strip() for k in self.api_keys.split(",") if k.strip()]
        if self.api_keys_file is not None:
            from .safe_files import read_text_file  # regular files only, bounded: never a FIFO

            text = read_text_file(self.api_keys_file, MiB, what="NEXPO_API_KEYS_FILE")
            keys += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        return tuple(keys)

    @cached_property
    def admin_keys(self) -> tuple[str, ...]:
        """The keys given by NEXPO_ADMIN_API_KEYS (possibly none)."""
        return tuple(k.strip() for k in (self.admin_api_keys or "").split(",") if k.strip())
