"""/readyz and /v2/health/ready are one decision (api/readiness.py): a model of the v2 repository
that fails at startup keeps both 503 (before, /readyz looked only at the /v1 models)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from gateway_helpers import is_problem, make_settings
from nexpo.api.main import create_app


def test_a_broken_repository_model_keeps_both_probes_unready(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    (repository / "broken" / "1").mkdir(parents=True)  # a version without a model file
    settings = make_settings(tmp_path, model_repository=repository, repository_poll_s=0)
    with TestClient(create_app(settings)) as client:
        assert "repository" in is_problem(client.get("/readyz"), 503)["detail"]
        response = client.get("/v2/health/ready")
        assert response.status_code == 503
        assert "not ready" in response.json()["error"]


def test_both_probes_agree_when_ready(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
