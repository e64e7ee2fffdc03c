"""`nexpo serve` for operators: options from the settings, one-line config errors, log lines,
the root path and readiness (api/server.py, api/serve_options.py, api/logs.py,
api/middleware/root_path.py, api/routers/health.py)."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.logs import JsonFormatter, TextFormatter, TraceIdFilter, log_config
from nexpo.api.main import create_app
from nexpo.api.serve_options import (
    ConfigError,
    add_arguments,
    env_name,
    export_overrides,
    flag_name,
    load_settings,
    name_sources,
    overrides_from_args,
)
from nexpo.api.settings import Settings
from starlette.types import Message, Receive, Scope, Send

from nexpo import cli

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXPO_")}
    return {**env, "NEXPO_STATE_DIR": str(tmp_path / "state"), **extra}


def _serve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nexpo.cli", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


# --- options


def test_help_lists_every_setting_with_its_variable_and_default(tmp_path: Path) -> None:
    proc = _serve(["--help"], _clean_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    for field, info in Settings.model_fields.items():
        assert flag_name(field) in text, field
        assert f"[{env_name(field)}; default: " in text, field
        assert info.description and " ".join(info.description.split()) in text, field
    assert "--max-header-bytes N request line + headers limit" in text
    assert "[NEXPO_MAX_HEADER_BYTES; default: 65536]" in text
    assert "--log-format json|text" in text


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXPO_WORKERS", "3")
    monkeypatch.setenv("NEXPO_MAX_HEADER_BYTES", "2048")
    monkeypatch.setenv("NEXPO_BATCHING", "true")
    args = _parse(
        ["--max-header-bytes", "4096", "--no-batching", "--log-format", "JSON", "--root-path", "/p/"]
    )
    overrides = overrides_from_args(args)
    settings = load_settings(overrides)
    assert settings.workers == 3  # from the environment
    assert settings.max_header_bytes == 4096  # the flag wins
    assert settings.batching is False
    assert settings.log_format == "json"
    assert settings.root_path == "/p"
    # what uvicorn's workers read back: the same settings
    exported = export_overrides(settings, overrides)
    assert exported == {
        "NEXPO_MAX_HEADER_BYTES": "4096",
        "NEXPO_BATCHING": "false",
        "NEXPO_LOG_FORMAT": "json",
        "NEXPO_ROOT_PATH": "/p",
    }
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        ({"NEXPO_WORKERS": "0"}, [], "NEXPO_WORKERS must be an integer from 1 to 64 (got '0')"),
        ({"NEXPO_WORKERS": "0"}, ["--workers", "x"], "--workers must be an integer from 1 to 64 (got 'x')"),
        ({}, ["--request-timeout-s", "inf"], "--request-timeout-s must be a finite number > 0 (got 'inf')"),
        ({"NEXPO_LOG_FORMAT": "yaml"}, [], "NEXPO_LOG_FORMAT must be one of json, text (got 'yaml')"),
        ({"NEXPO_PROXY_HEADERS": "maybe"}, [], "NEXPO_PROXY_HEADERS must be true or false (got 'maybe')"),
        ({}, ["--root-path", "no slash"], "--root-path must be a path prefix such as /nexpo"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_source(
    env: dict[str, str], argv: list[str], message: str
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("NEXPO_")]:
            mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        with pytest.raises(ConfigError) as excinfo:
            load_settings(overrides_from_args(_parse(argv)))
    assert str(excinfo.value).startswith(message)
    assert "\n" not in str(excinfo.value)


def test_bad_configuration_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    proc = _serve([], _clean_env(tmp_path, NEXPO_WORKERS="0"))
    assert proc.returncode == 2
    assert proc.stderr == "nexpo serve: NEXPO_WORKERS must be an integer from 1 to 64 (got '0')\n"
    assert proc.stdout == ""
    proc = _serve(["--port", "http", "--api-keys-file", str(tmp_path)], _clean_env(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("nexpo serve: --port must be an integer from 0 to 65535 (got 'http')")


def test_an_unusable_state_dir_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    proc = _serve(["--port", "0", "--state-dir", str(not_a_dir)], _clean_env(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("nexpo serve: --state-dir must be a writable directory")


def test_messages_name_the_flags_given() -> None:
    message = "NEXPO_API_KEYS_FILE is bad; NEXPO_API_KEYS too"
    assert name_sources(message, {"api_keys": "k"}) == "NEXPO_API_KEYS_FILE is bad; --api-keys too"


def test_an_unreadable_keys_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--api-keys-file", str(tmp_path)]) == 2  # a directory
    err = capsys.readouterr().err
    assert err.startswith("nexpo serve: --api-keys-file ") and "not a regular file" in err
    assert err.count("\n") == 1


# --- log lines


class _SendLogsAccess:
    """What uvicorn does: log the access line from inside the app's ``send``."""

    def __init__(self, app: object) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_and_log(message: Message) -> None:
            if message["type"] == "http.response.start":
                logging.getLogger("uvicorn.access").info(
                    '%s - "%s %s HTTP/%s" %d',
                    "10.0.0.1:5",
                    scope["method"],
                    scope["path"],
                    "1.1",
                    message["status"],
                )
            await send(message)

        await self.app(scope, receive, send_and_log)  # type: ignore[operator]


@contextmanager
def _captured(formatter: logging.Formatter, *names: str) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(TraceIdFilter())
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _app_that_logs(tmp_path: Path) -> TestClient:
    app = create_app(make_settings(tmp_path))

    async def log_something() -> dict[str, str]:
        logging.getLogger("api.example").info("handled")
        return {"status": "ok"}

    app.add_api_route("/example", log_something)
    return TestClient(_SendLogsAccess(app))  # type: ignore[arg-type]


def test_json_log_lines_carry_the_request_trace_id(tmp_path: Path) -> None:
    with _captured(JsonFormatter(), "api", "uvicorn.access") as stream, _app_that_logs(tmp_path) as c:
        assert c.get("/example", headers={"traceparent": TRACEPARENT}).status_code == 200
        untraced = c.get("/livez")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_message = {line["message"]: line for line in lines}
    own = by_message["handled"]
    assert own["logger"] == "api.example" and own["level"] == "info" and own["trace_id"] == TRACE_ID
    assert ISO_UTC.match(own["time"])
    access = by_message['10.0.0.1:5 - "GET /example HTTP/1.1" 200']
    assert access["trace_id"] == TRACE_ID
    assert (access["method"], access["path"], access["status"]) == ("GET", "/example", 200)
    livez = by_message['10.0.0.1:5 - "GET /livez HTTP/1.1" 200']
    assert livez["trace_id"] == untraced.headers["traceparent"][3:35]  # a new trace per request
    startup = [line for line in lines if line["logger"] == "api" and line["message"].startswith("ready")]
    assert startup and "trace_id" not in startup[0]  # outside a request


def test_text_log_lines_are_timestamped(tmp_path: Path) -> None:
    with _captured(TextFormatter(), "api") as stream, _app_that_logs(tmp_path) as c:
        c.get("/example", headers={"traceparent": TRACEPARENT})
    line = next(line for line in stream.getvalue().splitlines() if "handled" in line)
    stamp, level, rest = line.split(" ", 2)
    assert ISO_UTC.match(stamp) and level == "INFO"
    assert rest.strip() == f"api.example: handled trace_id={TRACE_ID}"


def test_log_config_routes_uvicorn_and_app_loggers_through_one_formatter() -> None:
    config = log_config("trace", "json")
    assert config["formatters"]["line"]["()"] is JsonFormatter
    assert config["filters"]["trace"]["()"] is TraceIdFilter
    assert {"uvicorn", "uvicorn.error", "uvicorn.access", "api", "nexpo"} <= set(config["loggers"])
    assert config["loggers"]["api"]["level"] == 5
    assert log_config("info", "text")["formatters"]["line"]["()"] is TextFormatter


# --- root path


def test_root_path_serves_docs_and_routes_under_the_prefix(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, root_path="/nexpo"))) as c:
        for prefix in ("", "/nexpo"):  # a proxy that strips the prefix, and one that keeps it
            docs = c.get(prefix + "/docs")
            assert docs.status_code == 200 and "'/nexpo/openapi.json'" in docs.text
            assert c.get(prefix + "/openapi.json").json()["servers"] == [{"url": "/nexpo"}]
            assert c.get(prefix + "/v1/ping").status_code == 401  # auth sees the app's path
            assert c.get(prefix + "/v1/ping", headers=AUTH).status_code == 200
            assert c.post(prefix + "/v1/hash", json={"data": ["aa"]}).status_code == 401
        # Starlette would strip the prefix a second time, past an auth check of another path
        is_problem(c.get("/nexpo/nexpo/v1/ping"), 404)
        is_problem(c.get("/nexpo/nexpo/v1/info"), 404)
        assert c.get("/nexpox/livez").status_code == 404


def test_no_root_path_by_default(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as c:
        assert "'/openapi.json'" in c.get("/docs").text
        assert c.get("/nexpo/livez").status_code == 404


# --- readiness


def test_readyz_is_503_without_a_model_unless_allowed(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    with TestClient(create_app(make_settings(tmp_path, models_dir=empty))) as c:
        body = is_problem(c.get("/readyz"), 503)
        assert "no model is loaded" in body["detail"] and "NEXPO_ALLOW_NO_MODELS" in body["detail"]
        assert c.get("/livez").status_code == 200
    with TestClient(create_app(make_settings(tmp_path, models_dir=tmp_path / "absent"))) as c:
        body = is_problem(c.get("/readyz"), 503)
        assert "models directory does not exist" in body["detail"] and str(tmp_path) not in body["detail"]
    for models_dir in (empty, tmp_path / "absent"):
        with TestClient(
            create_app(make_settings(tmp_path, models_dir=models_dir, allow_no_models=True))
        ) as c:
            assert c.get("/readyz").json() == {"status": "ok"}


def test_readyz_is_503_while_a_model_file_failed_even_when_models_are_optional(tmp_path: Path) -> None:
    (tmp_path / "broken.safetensors").write_bytes(b"not a model")
    with TestClient(create_app(make_settings(tmp_path, models_dir=tmp_path, allow_no_models=True))) as c:
        body = is_problem(c.get("/readyz"), 503)
        assert body["detail"].startswith("1 model file(s) failed to load")
        assert "broken" not in body["detail"] and str(tmp_path) not in body["detail"]
