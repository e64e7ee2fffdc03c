"""Schemathesis against the served OpenAPI document of a real gateway: no 5xx, every status code,
content type, header and body as documented. Bounded: a few examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nexpo.api.devserver import GatewayProcess
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

KEY = "schemathesis-key"
EXISTING = {"name": "digits", "key": "default", "version": "1", "kind": "wrapped", "algorithm": "sha2-256"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    env = {
        "NEXPO_API_KEYS": KEY,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_RATE_LIMIT_RPS": "0",
        "NEXPO_MAX_BODY_BYTES": str(256 * 1024),
    }
    with GatewayProcess(env, log_path=tmp / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(gateway: GatewayProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(gateway.url + "/openapi.json")


def test_api_conforms_to_its_schema(api_schema: schemathesis.BaseSchema, gateway: GatewayProcess) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy(), existing=st.booleans())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case, existing: bool) -> None:
            if existing and case.path_parameters:  # half the time, a model/key that exists
                case.path_parameters = {
                    name: EXISTING.get(name, value) for name, value in case.path_parameters.items()
                }
            headers = {"X-API-Key": KEY}
            case.call_and_validate(base_url=gateway.url, headers=headers, checks=CHECKS, timeout=30)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
