"""``<model>/config.json``: batching, the version policy and labels of one model.

::

    {"max_batch_size": 64,
     "dynamic_batching": {"max_queue_delay_us": 2000, "preferred_batch_size": [16, 32]},
     "version_policy": {"latest": {"num_versions": 2}},  # or {"all": {}}, {"specific": {"versions": [1]}}
     "labels": {"team": "vision"}}

Every key is optional; without ``dynamic_batching`` requests run one by one. The file is hostile
input: read through ``read_regular_file``, bounded, and every value checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..safe_files import UnsafeFileError, parse_json, read_regular_file

MAX_CONFIG_BYTES = 64 * 1024
MAX_BATCH = 65536
MAX_DELAY_US = 1_000_000
MAX_LABELS = 64


class ConfigError(ValueError):
    """config.json breaks a rule; the message says which."""


@dataclass(frozen=True)
class VersionPolicy:
    kind: str = "latest"  # "latest", "all" or "specific"
    latest: int = 1
    specific: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve among ``available``."""
        ordered = sorted(available)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.specific]
        return ordered[-self.latest :]


@dataclass(frozen=True)
class ModelConfig:
    max_batch_size: int = 0  # 0: the model takes no batch dimension from the batcher
    dynamic_batching: bool = False
    max_queue_delay_us: int = 0
    preferred_batch_size: tuple[int, ...] = ()
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, str] = field(default_factory=dict)

    def describe(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "max_batch_size": self.max_batch_size, "labels": self.labels}
        if self.dynamic_batching:
            out["dynamic_batching"] = {
                "max_queue_delay_microseconds": self.max_queue_delay_us,
                "preferred_batch_size": list(self.preferred_batch_size),
            }
        policy = self.version_policy
        out["version_policy"] = (
            {"all": {}}
            if policy.kind == "all"
            else {"specific": {"versions": list(policy.specific)}}
            if policy.kind == "specific"
            else {"latest": {"num_versions": policy.latest}}
        )
        return out


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{what} must be an integer from {low} to {high}")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object")
    return value


def _policy(raw: Any) -> VersionPolicy:
    raw = _object(raw, "version_policy")
    if len(raw) != 1:
        raise ConfigError("version_policy must have exactly one of 'latest', 'all', 'specific'")
    kind, body = next(iter(raw.items()))
    body = _object(body, f"version_policy.{kind}")
    if kind == "all":
        return VersionPolicy("all")
    if kind == "latest":
        return VersionPolicy("latest", latest=_int(body.get("num_versions"), "latest.num_versions", 1, 1000))
    if kind == "specific":
        versions = body.get("versions")
        if not isinstance(versions, list) or not versions:
            raise ConfigError("specific.versions must be a non-empty list")
        return VersionPolicy(
            "specific", specific=tuple(_int(v, "specific.versions[]", 1, 2**31) for v in versions)
        )
    raise ConfigError(f"unknown version_policy {kind!r}; expected 'latest', 'all' or 'specific'")


def parse_config(doc: Any) -> ModelConfig:
    doc = _object(doc, "config.json")
    max_batch = _int(doc.get("max_batch_size", 0), "max_batch_size", 0, MAX_BATCH)
    batching = doc.get("dynamic_batching")
    delay, preferred = 0, tuple[int, ...]()
    if batching is not None:
        batching = _object(batching, "dynamic_batching")
        delay = _int(batching.get("max_queue_delay_us", 0), "max_queue_delay_us", 0, MAX_DELAY_US)
        raw_preferred = batching.get("preferred_batch_size", [])
        if not isinstance(raw_preferred, list):
            raise ConfigError("preferred_batch_size must be a list")
        preferred = tuple(_int(v, "preferred_batch_size[]", 1, MAX_BATCH) for v in raw_preferred)
        if max_batch == 0:
            raise ConfigError("dynamic_batching needs max_batch_size > 0")
    labels = _object(doc.get("labels", {}), "labels")
    if len(labels) > MAX_LABELS or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 128 and len(v) <= 1024
        for k, v in labels.items()
    ):
        raise ConfigError(f"labels must be at most {MAX_LABELS} string pairs")
    policy = _policy(doc["version_policy"]) if "version_policy" in doc else VersionPolicy()
    return ModelConfig(max_batch, batching is not None, delay, preferred, policy, dict(labels))


def read_config(path: Path) -> ModelConfig:
    """The config in ``path`` (``ModelConfig()`` when there is none); ``ConfigError`` if bad."""
    if not path.exists() and not path.is_symlink():
        return ModelConfig()
    try:
        return parse_config(parse_json(read_regular_file(path, MAX_CONFIG_BYTES)))
    except UnsafeFileError as exc:
        raise ConfigError(f"config.json: {exc}") from None
