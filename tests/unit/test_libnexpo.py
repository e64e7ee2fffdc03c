"""libnexpo's public header (nim/libnexpo.py): one self-contained header declaring every export."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load():  # -> the libnexpo module
    spec = importlib.util.spec_from_file_location("libnexpo_under_test", ROOT / "nim" / "libnexpo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


libnexpo = _load()


def test_header_declares_every_area_once_and_no_binding_export() -> None:
    text = libnexpo.header_text()
    assert text.count("#pragma once") == 0 and text.count("#define NEXPO_H") == 1
    assert 'extern "C"' in text
    cfg = libnexpo.nimbuild.load_config()
    for header in cfg.headers:
        for name in re.findall(r"\b(nexpo_\w+)\s*\(", header.read_text()):
            assert name in text, f"{name} ({header.name}) missing from nexpo.h"
    assert "nexpo_channel_send_refs" not in text  # binding.h is CPython-only


def test_lib_section_exports_only_the_prefix() -> None:
    lib = libnexpo.lib_config()
    assert lib["name"] == "libnexpo.so" and lib["exports"] == ["nexpo_*"]
