"""Dependency aliases for the routers (``Annotated[..., Depends(...)]``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.inference import MlpModel
from api.problems import ProblemError
from api.settings import Settings
from api.state import Gateway
from api.transit import Keyring


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def get_settings(request: Request) -> Settings:
    return get_gateway(request).settings


def get_model(name: str, gateway: Annotated[Gateway, Depends(get_gateway)]) -> MlpModel:
    model = gateway.model(name)
    if model is None:
        known = ", ".join(sorted(gateway.registry.models)) or "none"
        raise ProblemError(404, f"no model named {name!r} (loaded: {known})")
    return model


def get_keyring(gateway: Annotated[Gateway, Depends(get_gateway)]) -> Keyring:
    if gateway.keyring is None:
        raise ProblemError(503, f"transit keys are unavailable: {gateway.keyring_error or 'not configured'}")
    return gateway.keyring.current()


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[MlpModel, Depends(get_model)]
KeyringDep = Annotated[Keyring, Depends(get_keyring)]
