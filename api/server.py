"""Run the gateway under uvicorn (uvloop + httptools), one or several worker processes.

Workers are separate interpreters that build the app from the environment, so command-line
overrides are exported as ``NEXPO_*`` first. Several workers share Prometheus metrics through
prometheus-client's multiprocess mode (a temporary ``PROMETHEUS_MULTIPROC_DIR`` when none is set).
"""

from __future__ import annotations

import argparse
import copy
import logging
import logging.config
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .settings import Settings

log = logging.getLogger("api")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to bind (NEXPO_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (NEXPO_PORT, default 8000; 0 picks a free one)")
    parser.add_argument("--workers", type=int, help="worker processes (NEXPO_WORKERS, default 1)")


def _log_config(level: str) -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["api"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def _announce_keys(settings: Settings) -> None:
    from .middleware.auth import resolve_keys

    source = resolve_keys(settings.configured_keys, settings.auth_disabled, settings.state_dir)
    if source is not None and not settings.configured_keys:
        log.warning(
            "no API key configured: using the generated key in %s (mode 0600). Send it as "
            "'X-API-Key: <key>'; set NEXPO_API_KEYS or NEXPO_API_KEYS_FILE to choose your own.",
            source.origin,
        )


def serve(settings: Settings) -> None:
    import uvicorn

    os.environ.update(
        {
            "NEXPO_HOST": settings.host,
            "NEXPO_PORT": str(settings.port),
            "NEXPO_WORKERS": str(settings.workers),
        }
    )
    logging.config.dictConfig(_log_config(settings.log_level))
    _announce_keys(settings)
    own_metrics_dir = None
    given_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given_dir:  # prometheus-client's rule: start from an empty directory
        for stale in Path(given_dir).glob("*.db"):
            stale.unlink(missing_ok=True)
    elif settings.workers > 1:
        own_metrics_dir = tempfile.mkdtemp(prefix="nexpo-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    try:
        uvicorn.run(
            f"{__package__}.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=settings.access_log,
            log_config=_log_config(settings.log_level),
            timeout_graceful_shutdown=max(1, round(settings.graceful_shutdown_s)),
            server_header=False,
        )
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


def run_from_args(args: argparse.Namespace) -> int:
    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k, None)) is not None}
    serve(Settings(**overrides))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexpo.api", description="run the nexpo gateway")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
