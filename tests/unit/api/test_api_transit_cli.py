"""api/transit/cli.py: ``python -m nexpo.api.transit --file F {create,rotate,list} [NAME]``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nexpo.api.transit import main, read_keys


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "k.json"
    assert main(["create", "app", "--file", str(path)]) == 0
    assert main(["rotate", "app", "--file", str(path)]) == 0
    assert main(["list", "--file", str(path)]) == 0
    assert "latest=v2" in capsys.readouterr().out
    assert main(["rotate", "missing", "--file", str(path)]) == 1
    assert main(["rotate", "--file", str(path), "app"]) == 0  # the order k8s/README.md shows
    assert read_keys(path)["app"].latest == 3


@pytest.mark.timeout(120)
def test_python_m_transit_keeps_its_arguments(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.json")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "nexpo.api.transit", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert cli("create", "app", "--file", path).stdout == "app: latest version v1\n"
    assert cli("rotate", "--file", path, "app").stdout == "app: latest version v2\n"
    assert "app\tlatest=v2\tmin_decryption_version=1" in cli("list", "--file", path).stdout
    missing = cli("rotate", "missing", "--file", path)
    assert (missing.returncode, missing.stderr) == (1, "error: no transit key named 'missing'\n")
    taken = cli("create", "app", "--file", path)
    assert (taken.returncode, taken.stderr) == (1, "error: transit key 'app' already exists\n")
    assert cli("rotate", "--file", path).returncode == 2  # argparse: a key name is required


def test_cli_types_config_and_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "k.json"
    assert main(["create", "signer", "--type", "ed25519", "--file", str(path)]) == 0
    assert main(["create", "box", "--file", str(path)]) == 0
    assert main(["rotate", "box", "--file", str(path)]) == 0
    assert main(["list", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "signer\tlatest=v1\tmin_decryption_version=1\ttype=ed25519" in out
    assert "type=aes256-gcm96" in out
    assert main(["config", "box", "--min-decryption-version", "2", "--file", str(path)]) == 0
    assert read_keys(path)["box"].min_decryption_version == 2
    assert main(["config", "box", "--min-decryption-version", "3", "--file", str(path)]) == 1
    assert "between 1 and 2" in capsys.readouterr().err
    assert main(["delete", "box", "--file", str(path)]) == 1
    assert "deletion is not allowed" in capsys.readouterr().err
    assert main(["config", "box", "--deletion-allowed", "true", "--file", str(path)]) == 0
    assert main(["delete", "box", "--file", str(path)]) == 0
    assert set(read_keys(path)) == {"signer"}
