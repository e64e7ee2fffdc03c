"""What is on disk: Triton's layout ``<repository>/<model>/<version>/model.{onnx,safetensors}`` with
an optional ``<model>/config.json``, plus the flat ``NEXPO_MODELS_DIR`` (``<model>.safetensors`` or
``<model>.onnx``, served as version 1). Scanning only lists and stats; loading is ``store.py``'s job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..safe_files import describe_os_error
from .config import ConfigError, ModelConfig, read_config

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch
VERSION = re.compile(r"[1-9][0-9]{0,9}")
MODEL_FILES = ("model.safetensors", "model.onnx")
FLAT_KINDS = ("safetensors", "onnx")
MAX_MODELS = 1000
MAX_VERSION_DIRS = 1000


@dataclass(frozen=True)
class VersionSource:
    path: Path
    kind: str  # "safetensors" or "onnx"
    stamp: tuple[int, int, int]  # (inode, size, mtime_ns): a change reloads the version


@dataclass
class ModelSource:
    """One model as found on disk: its config (or why it is unusable) and its versions to serve."""

    name: str
    config: ModelConfig | None = None  # None: no config.json (settings' batching defaults apply)
    config_stamp: tuple[int, int, int] | None = None
    versions: dict[int, VersionSource] = field(default_factory=dict)
    error: str | None = None  # the whole model is unusable
    version_errors: dict[int, str] = field(default_factory=dict)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _listdir(directory: Path, limit: int) -> list[str]:
    names: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith("."):
                names.append(entry.name)
                if len(names) > limit:
                    raise OSError(0, f"more than {limit} entries")
    return sorted(names)


def scan_model(directory: Path, name: str) -> ModelSource:
    """One ``<repository>/<name>`` directory."""
    source = ModelSource(name)
    config_path = directory / "config.json"
    try:
        source.config_stamp = _stamp(config_path)
        config = read_config(config_path)
        source.config = config if source.config_stamp is not None else None
        entries = _listdir(directory, MAX_VERSION_DIRS)
    except ConfigError as exc:
        source.error = str(exc)
        return source
    except OSError as exc:
        source.error = f"cannot list the model directory: {describe_os_error(exc)}"
        return source
    available: dict[int, Path] = {}
    for entry in entries:
        if VERSION.fullmatch(entry) and (directory / entry).is_dir():
            available[int(entry)] = directory / entry
    policy = (config or ModelConfig()).version_policy
    for version in policy.select(list(available)):
        found = [f for f in MODEL_FILES if (available[version] / f).exists()]
        if len(found) != 1:
            why = "both model.onnx and model.safetensors" if found else "no model.onnx or model.safetensors"
            source.version_errors[version] = f"version {version} has {why}"
            continue
        path = available[version] / found[0]
        stamp = _stamp(path)
        if stamp is None:
            source.version_errors[version] = f"version {version}: cannot stat {found[0]}"
            continue
        source.versions[version] = VersionSource(path, found[0].removeprefix("model."), stamp)
    if not source.versions and not source.version_errors:
        source.error = "no version directory to serve (expected <model>/<version>/model.*)"
    return source


def scan_flat(flat: Path) -> dict[str, ModelSource]:
    """``<name>.safetensors`` and ``<name>.onnx`` in the flat directory, each served as version 1;
    a name with both files is an error (which one would serve is not the user's guess to make)."""
    models: dict[str, ModelSource] = {}
    paths = sorted(p for kind in FLAT_KINDS for p in flat.glob(f"*.{kind}"))
    for path in paths[:MAX_MODELS]:
        name, _, kind = path.name.rpartition(".")
        if not NAME.fullmatch(name) or (stamp := _stamp(path)) is None:
            continue
        if name in models:
            models[name] = ModelSource(name, error=f"both {name}.onnx and {name}.safetensors: keep one")
            continue
        models[name] = ModelSource(name, versions={1: VersionSource(path, kind, stamp)})
    return models


def scan(repository: Path | None, flat: Path | None) -> tuple[dict[str, ModelSource], str | None]:
    """Every model on disk by name, and why the repository itself could not be read (if so).
    A model in the repository hides a flat file of the same name."""
    models: dict[str, ModelSource] = {}
    if flat is not None and flat.is_dir():
        models = scan_flat(flat)
    if repository is None:
        return models, None
    try:
        names = _listdir(repository, MAX_MODELS)
    except OSError as exc:
        return models, f"cannot list the model repository: {describe_os_error(exc)}"
    for name in names:
        directory = repository / name
        if NAME.fullmatch(name) and directory.is_dir():
            models[name] = scan_model(directory, name)
    return models, None
