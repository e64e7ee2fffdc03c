"""Run the gateway under uvicorn (uvloop + httptools), one or several worker processes.

Options come from ``Settings`` (api/serve_options.py). Workers are separate interpreters that
build the app from the environment, so command-line overrides are exported as ``NEXPO_*`` first.
Several workers share Prometheus metrics through prometheus-client's multiprocess mode (a temporary
``PROMETHEUS_MULTIPROC_DIR`` when none is set).
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import shutil
import sys
from collections.abc import Sequence

from .http_limits import PROTOCOL_PATH, connection_limit_env
from .logs import log_config
from .safe_files import describe_os_error
from .serve_options import (
    ConfigError,
    add_arguments,
    export_overrides,
    load_settings,
    name_sources,
    overrides_from_args,
)
from .settings import Settings
from .workers import prepare_runtime_dir, prepare_supervisor, wait_until_bindable

log = logging.getLogger("api")

__all__ = ["ConfigError", "add_arguments", "main", "run_from_args", "serve"]


def _announce_keys(settings: Settings) -> None:
    from .middleware.auth import resolve_keys

    try:
        source = resolve_keys(settings.configured_keys, settings.auth_disabled, settings.state_dir)
    except OSError as exc:  # the generated key cannot be kept
        raise ConfigError(
            "NEXPO_STATE_DIR must be a writable directory for the generated API key "
            f"({describe_os_error(exc)})"
        ) from None
    except ValueError as exc:  # the generated key file is not a readable regular file
        raise ConfigError(f"NEXPO_STATE_DIR: {exc}") from None
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
            # read back by each worker's connection protocol (api/http_limits.py)
            **connection_limit_env(settings),
        }
    )
    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    _announce_keys(settings)
    wait_until_bindable(settings.host, settings.port)  # orphans of a killed supervisor: api/workers.py
    own_metrics_dir = prepare_supervisor(settings.workers)
    runtime_dir = prepare_runtime_dir(settings.workers)
    try:
        uvicorn.run(
            f"{__package__}.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http=PROTOCOL_PATH,  # httptools with connection limits
            lifespan="on",
            access_log=settings.access_log,
            log_config=log_config(settings.log_level, settings.log_format),
            # client addresses from X-Forwarded-For, only from the trusted proxies (off by default);
            # the root path is the app's (api/middleware/root_path.py), not uvicorn's
            proxy_headers=settings.proxy_headers,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            timeout_graceful_shutdown=max(1, round(settings.graceful_shutdown_s)),
            server_header=False,
        )
    finally:
        for own in (own_metrics_dir, runtime_dir):
            if own is not None:
                shutil.rmtree(own, ignore_errors=True)


def run_from_args(args: argparse.Namespace, prog: str = "python -m nexpo.api") -> int:
    """Serve; a bad setting is one line on stderr and exit status 2."""
    overrides = overrides_from_args(args)
    try:
        settings = load_settings(overrides)
        os.environ.update(export_overrides(settings, overrides))
        serve(settings)
    except ConfigError as exc:  # raised by serve() too, naming variables
        print(f"{prog}: {name_sources(str(exc), overrides)}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m nexpo.api") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        usage="%(prog)s [options]",
        allow_abbrev=False,  # 40 options: a prefix would pick one silently
        description="Run the nexpo gateway. Every option is also an environment variable (shown in "
        "brackets); an option given here overrides its variable.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv), prog)
