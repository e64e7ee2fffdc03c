"""The ``nexpo`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nexpo import _native, cli


def test_info_prints_the_active_isa(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"isa_active     {_native.isa_active()}" in out


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["isa_active"] == _native.isa_active()


def _run_info(env_isa: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEXPO_ISA": env_isa}
    return subprocess.run(
        [sys.executable, "-m", "nexpo.cli", "info", "--json"], env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("isa", _native.isa_available())
def test_nexpo_isa_environment_variable_forces_the_path(isa: str) -> None:
    proc = _run_info(isa)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["isa_active"] == isa


def test_unknown_nexpo_isa_fails_with_a_clear_message() -> None:
    proc = _run_info("sse9")
    assert proc.returncode != 0
    assert "NEXPO_ISA must be one of portable, avx2, avx512, not 'sse9'" in proc.stderr


def test_missing_subcommand_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as excinfo:
        cli.main([])
    assert excinfo.value.code == 2


def test_serve_hands_its_options_to_the_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("fastapi")  # the gateway is the optional 'api' extra
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["serve", "--help"])
    assert excinfo.value.code == 0
    assert "--max-header-bytes N" in capsys.readouterr().out  # generated from the gateway's settings
    assert cli.main(["serve", "--workers", "0"]) == 2  # checked before anything starts
    assert capsys.readouterr().err == "nexpo serve: --workers must be an integer from 1 to 64 (got '0')\n"
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["serve", "--no-such-option"])
    assert excinfo.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    import nexpo

    with pytest.raises(SystemExit) as excinfo:
        cli.main(["--version"])
    assert excinfo.value.code == 0
    assert capsys.readouterr().out.strip() == f"nexpo {nexpo.__version__}"


def test_python_dash_m_nexpo_is_the_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "nexpo", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("nexpo ")


def test_core_never_imports_the_gateway() -> None:
    # the import graph points one way: nexpo.api -> nexpo, never back (serve is an entry point)
    code = "import sys, nexpo, nexpo.cli; print(sorted(m for m in sys.modules if m.startswith('nexpo.api')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_serve_without_the_api_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "nexpo.api.server", None)  # as if fastapi & co were missing
    assert cli.main(["serve", "--port", "1"]) == 2
    assert "pip install 'nexpo[api]'" in capsys.readouterr().err


def test_the_gateway_folder_is_not_a_top_level_package(tmp_path: os.PathLike[str]) -> None:
    # even with the repository root on sys.path, `import api` refuses (one import name: nexpo)
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", "import api"], cwd=root, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "the gateway is the package nexpo.api" in proc.stderr


def test_a_broken_command_entry_point_is_skipped_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata

    broken = importlib.metadata.EntryPoint("broken", "nexpo_no_such_module:add", cli.ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken])
    assert cli.main(["info", "--json"]) == 0
    assert "skipping the 'broken' command" in capsys.readouterr().err
