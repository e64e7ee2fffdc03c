"""The Nim build driver: nimble.toml, header/export agreement, the stub, the no-Nim message."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nimbuild_under_test", ROOT / "nim" / "nimbuild.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


nimbuild = _load()


def test_every_profile_has_nim_and_c_flags() -> None:
    cfg = nimbuild.load_config()
    for profile in ("release", "debug", "sanitize", "tsan"):
        assert cfg.nim_flags(profile)
        assert cfg.c_flags(profile)
    assert "-fsanitize=address,undefined" in cfg.c_flags("sanitize")
    assert cfg.min_version >= (1, 6, 10)


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="unknown build profile 'fast'"):
        nimbuild.load_config().nim_flags("fast")


def test_generated_c_is_per_target_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # the freshness stamp and the folder both name the CPU: arm64 C is never taken for amd64's
    cfg = nimbuild.load_config()
    assert nimbuild.source_digest(cfg, "release", "amd64") != nimbuild.source_digest(cfg, "release", "arm64")
    assert nimbuild.generated_dir("release", "arm64").name == "release-arm64"
    monkeypatch.setenv(nimbuild.TARGET_ENV, "arm64")
    assert nimbuild.target_cpu() == "arm64"
    assert "-march=x86-64-v2" not in cfg.c_flags("release")
    assert "-march=x86-64-v2" in cfg.c_flags("release", "amd64")
    monkeypatch.setenv(nimbuild.TARGET_ENV, "sparc")
    with pytest.raises(SystemExit, match="NEXPO_TARGET_CPU='sparc': expected one of"):
        nimbuild.target_cpu()


def _exports() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "nim" / "nexpo_core" / "capi").glob("*.nim"):
        names |= set(re.findall(r"proc (nexpo_\w+)\*?\s*\([^=]*?\{\.[^}]*exportc", path.read_text(), re.S))
    return names


def _declarations() -> set[str]:
    """The cffi interface's headers and the C-only binding headers ([python] headers)."""
    cfg = nimbuild.load_config()
    text = nimbuild.cdef_text(cfg) + "".join(h.read_text() for h in cfg.binding_headers)
    return set(re.findall(r"\b(nexpo_\w+)\s*\(", text))


def test_binding_exports_stay_out_of_the_cffi_interface() -> None:
    """Lending object references is for C that owns them: cffi code must not reach it."""
    cfg = nimbuild.load_config()
    assert cfg.binding_headers, "nimble.toml [python] headers"
    cdef = nimbuild.cdef_text(cfg)
    for name in re.findall(r"\b(nexpo_\w+)\s*\(", "".join(h.read_text() for h in cfg.binding_headers)):
        assert name not in cdef, name


def test_every_export_is_declared_once_in_a_header_and_vice_versa() -> None:
    exports, declared = _exports(), _declarations()
    assert exports, "no exports found"
    assert exports - declared == set(), "exported but missing from capi/*.h"
    assert declared - exports == set(), "declared in capi/*.h but not exported"


def test_stub_is_generated_from_the_headers() -> None:
    expected = nimbuild.render_stub(nimbuild.load_config())
    assert (ROOT / "nexpo" / "_core.pyi").read_text() == expected, "run: python nim/nimbuild.py stub"


def test_missing_nim_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nimbuild.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as excinfo:
        nimbuild.require_nim(nimbuild.load_config())
    message = str(excinfo.value.code)
    assert message.startswith("error: nexpo: the Nim compiler is not on PATH")
    assert "apt-get install -y nim" in message
    assert "\n" not in message


def test_too_old_nim_names_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nimbuild, "nim_version", lambda nim: (1, 4, 8))
    with pytest.raises(SystemExit, match=r"Nim 1\.4\.8 is too old \(need >= 1\.6\.10\)"):
        nimbuild.require_nim(nimbuild.load_config())
