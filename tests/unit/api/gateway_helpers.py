"""Shared by the gateway's unit tests (imported by name: pytest puts this directory on sys.path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from nexpo.api.problems import PROBLEM_MEDIA_TYPE
from nexpo.api.settings import Settings

API_KEY = "test-key-0123456789"
AUTH = {"X-API-Key": API_KEY}


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"api_keys": API_KEY, "state_dir": tmp_path / "state", "max_batch_wait_ms": 1.0}
    values.update(overrides)
    return Settings(**values)


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is a problem+json with ``status``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    return body
