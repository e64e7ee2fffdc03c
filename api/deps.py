"""Dependency aliases for the routers (``Annotated[..., Depends(...)]``).

Every dependency is ``async def``: FastAPI runs plain ``def`` dependencies in a worker thread,
which costs a thread hop per request.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from .inference import MlpModel
from .problems import ProblemError
from .settings import Settings
from .state import Gateway


async def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.gateway.settings
    return settings


async def get_model(name: str, gateway: Annotated[Gateway, Depends(get_gateway)]) -> MlpModel:
    return find_model(gateway, name)


def find_model(gateway: Gateway, name: str) -> MlpModel:
    """The model called ``name``, or a 404 problem naming the loaded ones."""
    model = gateway.model(name)
    if model is None:
        known = ", ".join(sorted(gateway.registry.models)) or "none"
        raise ProblemError(404, f"no model named {name!r} (loaded: {known})")
    return model


M = TypeVar("M", bound=BaseModel)

# Request bodies parsed by ``json_body``; main.py adds their schemas to the OpenAPI components.
BODY_MODELS: list[type[BaseModel]] = []


def json_request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body parsed with ``json_body`` (and registering it)."""
    if model not in BODY_MODELS:
        BODY_MODELS.append(model)
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def parse_json(model: type[M], body: bytes) -> M:
    """Validate a raw JSON body with pydantic-core's parser: one pass, no ``json.loads``.

    The hot endpoints use this instead of a body parameter: FastAPI's dependency solver costs more
    per request than the parsing itself (see api/fastpath.py).
    """
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False, include_url=False)) from None


async def json_body(request: Request, model: type[M]) -> M:
    return parse_json(model, await request.body())


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[MlpModel, Depends(get_model)]
