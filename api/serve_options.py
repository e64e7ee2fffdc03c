"""``nexpo serve``'s options, generated from ``Settings`` (one source of truth).

Every field is a flag (``max_header_bytes`` ↔ ``--max-header-bytes`` ↔ ``NEXPO_MAX_HEADER_BYTES``);
a flag overrides its variable. Flags are kept as the strings given so that pydantic checks both
sources alike, and a bad value becomes one line naming the flag or the variable it came from.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from .settings import Settings

ENV_PREFIX = "NEXPO_"


class ConfigError(Exception):
    """A bad setting; the message is one line naming the flag or variable and what it expects."""


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _base_type(annotation: Any) -> Any:
    """``int`` of ``int``, ``Path`` of ``Path | None``; a ``Literal`` stays as it is."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _bounds(info: FieldInfo) -> str:
    found: dict[str, Any] = {}
    for item in info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(item, getattr(annotated_types, name.capitalize())):
                found[name] = getattr(item, name)
    shown = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in found.items()}
    if "ge" in shown and "le" in shown:
        return f" from {shown['ge']} to {shown['le']}"
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return "".join(f" {'and ' if i else ''}{signs[k]} {v}" for i, (k, v) in enumerate(shown.items()))


def expected(field: str) -> str:
    """What ``field`` accepts, in words: "an integer from 1 to 64", "true or false", ..."""
    info = Settings.model_fields[field]
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("expected"), str):
        return str(extra["expected"])
    kind = _base_type(info.annotation)
    if typing.get_origin(kind) is typing.Literal:
        return "one of " + ", ".join(str(choice) for choice in typing.get_args(kind))
    if kind is bool:
        return "true or false"
    if kind is int:
        return "an integer" + _bounds(info)
    if kind is float:
        return "a finite number" + _bounds(info)
    if kind is Path:
        return "a file system path"
    return "text"


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return f"{info.default_factory()} (computed)"  # type: ignore[call-arg]
    if info.default is None or info.default == "":
        return "unset"
    if isinstance(info.default, bool):
        return str(info.default).lower()
    return str(info.default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per setting, with its variable, default and description in ``--help``."""
    group = parser.add_argument_group("settings (api/settings.py)")
    for field, info in Settings.model_fields.items():
        description = (info.description or field.replace("_", " ")).replace("%", "%%")
        text = f"{description} [{env_name(field)}; default: {_default_text(info).replace('%', '%%')}]"
        kind = _base_type(info.annotation)
        if kind is bool:
            group.add_argument(flag_name(field), dest=field, action=argparse.BooleanOptionalAction, help=text)
        elif typing.get_origin(kind) is typing.Literal:
            choices = "|".join(str(c) for c in typing.get_args(kind))
            group.add_argument(flag_name(field), dest=field, metavar=choices, help=text)
        else:
            metavar = {int: "N", float: "X", Path: "PATH"}.get(kind, "TEXT")
            group.add_argument(flag_name(field), dest=field, metavar=metavar, help=text)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (those left out stay ``None``)."""
    return {f: value for f in Settings.model_fields if (value := getattr(args, f, None)) is not None}


def _describe(error: Any, overrides: dict[str, Any]) -> str:
    loc = error.get("loc") or ("",)
    field = str(loc[0])
    if field not in Settings.model_fields:
        return str(error.get("msg", "invalid setting"))
    source = flag_name(field) if field in overrides else env_name(field)
    ctx = error.get("ctx") or {}
    why = f": {ctx['error']}" if error.get("type") == "value_error" and "error" in ctx else ""
    if not Settings.model_fields[field].repr:  # a secret (a URL with a password): never echoed
        return f"{source} must be {expected(field)}{why}"
    return f"{source} must be {expected(field)}{why} (got {error.get('input')!r})"


def load_settings(overrides: dict[str, Any]) -> Settings:
    """``Settings`` from the environment with ``overrides`` on top; ``ConfigError`` when invalid."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e, overrides) for e in exc.errors())) from None
    try:
        settings.configured_keys  # noqa: B018 -- read the API keys file now, not in every worker
    except ValueError as exc:
        raise ConfigError(name_sources(str(exc), overrides)) from None
    return settings


def name_sources(message: str, overrides: dict[str, Any]) -> str:
    """``message`` naming the flags, not the variables, of the settings given as flags."""
    for field in overrides:
        message = re.sub(rf"\b{env_name(field)}\b", flag_name(field), message)
    return message


def export_overrides(settings: Settings, overrides: dict[str, Any]) -> dict[str, str]:
    """The ``NEXPO_*`` variables that carry flags to uvicorn's workers (they read the environment)."""
    exported: dict[str, str] = {}
    for field in overrides:
        value = getattr(settings, field)
        exported[env_name(field)] = str(value).lower() if isinstance(value, bool) else str(value)
    return exported
