"""Concurrent ``python -m nexpo.api.transit rotate`` processes on one keys file: no version is lost, and a
token sealed with each new version still opens afterwards (before the lock, 80 concurrent rotations
kept about half of their versions)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from nexpo.api.transit import Keyring, create_key, read_keys

import nexpo

ROOT = Path(nexpo.__file__).resolve().parents[1]  # the subprocesses run the same code
ROTATIONS = 40

# Rotate like the CLI does, then seal a token with the version this process created.
_ROTATE_AND_SEAL = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from nexpo.api.transit import Keyring, main, read_keys, rotate_key
    path = Path(sys.argv[1])
    if sys.argv[2] == "cli":
        sys.exit(main(["--file", str(path), "rotate", "orders"]))
    key = rotate_key(path, "orders")
    token, version = Keyring({"orders": key}).encrypt("orders", b"sealed with v%d" % key.latest)
    print(token)
    """
)


@pytest.mark.timeout(280)
def test_concurrent_rotate_processes_lose_no_version(tmp_path: Path) -> None:
    path = tmp_path / "transit.json"
    create_key(path, "orders")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    modes = ["cli" if i % 4 == 0 else "seal" for i in range(ROTATIONS)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _ROTATE_AND_SEAL, str(path), mode],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in modes
    ]
    tokens = []
    for process, mode in zip(processes, modes, strict=True):
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        if mode == "seal":
            tokens.append(out.strip())
    final = read_keys(path)["orders"]
    assert sorted(final.versions) == list(range(1, ROTATIONS + 2)), "a rotation was lost"
    ring = Keyring({"orders": final})
    versions = set()
    for token in tokens:
        plaintext, version = ring.decrypt("orders", token)
        assert plaintext == b"sealed with v%d" % version
        versions.add(version)
    assert len(versions) == len(tokens)  # every sealing process got its own version
    assert sorted(p.name for p in tmp_path.iterdir()) == [".transit.json.lock", "transit.json"]
