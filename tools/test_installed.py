"""Test what users install: this machine's binary wheel for one Python, in a fresh venv.

    python tools/test_installed.py --python 3.12 [--unit] [--quickstart]

Builds the wheel (tools/wheels.py: zig, manylinux), installs it with ``--only-binary :all:`` and
no C compiler reachable (CC=false), then
  --quickstart  README's quickstart: ``nexpo --version``, ``nexpo info``, ``nexpo serve`` on
                127.0.0.1 (free port, an API key) and README's curl on the bundled digits model;
  --unit        the unit tests from this checkout against the installed package (-x, not slow).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wheels

ROOT = wheels.ROOT
API_KEY = "quickstart-key-0123456789"
SERVE_TIMEOUT_S = 180.0  # generous: the aarch64 run is emulated


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kwargs)  # type: ignore[call-overload]


def fresh_venv(version: str, wheel: Path) -> Path:
    venv = ROOT / "build" / f"installed-{version}"
    shutil.rmtree(venv, ignore_errors=True)
    run([str(wheels.find_python(version)), "-m", "venv", str(venv)])
    # no compiler: a source build anywhere in this install fails instead of compiling
    env = {**os.environ, "CC": "false", "CXX": "false", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # --no-compile: byte-compiling scipy & co. up front is most of an install's time; imports do it
    run([str(venv / "bin" / "pip"), "install", "-q", "--no-compile", "--only-binary", ":all:",
         f"{wheel}[api,test]"], env=env)
    return venv


def check_layout(wheel: Path, venv: Path, tmp: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/", 1)[0] for name in archive.namelist()}
        assert any(n.endswith("nexpo/api/models/digits.safetensors") for n in archive.namelist())
    assert {t for t in top if not t.endswith(".dist-info")} == {"nexpo"}, top
    py = str(venv / "bin" / "python")
    code = "import nexpo, nexpo.api, sys; print(nexpo.__file__)"
    where = run([py, "-c", code], cwd=tmp, capture_output=True).stdout.strip()
    assert "site-packages" in where, where
    api = subprocess.run([py, "-c", "import api"], cwd=tmp, capture_output=True, text=True)
    assert api.returncode != 0, "a top-level `api` package is installed"
    # the wheel's compiler must not blind the run-time CPU dispatch (e.g. a stubbed
    # __builtin_cpu_supports): it picks the widest path this CPU and its kernel support
    code = "import nexpo; print(nexpo.info()['isa_best'])"
    best = run([py, "-c", code], cwd=tmp, capture_output=True).stdout.strip()
    assert best == expected_isa(), f"the wheel detects {best!r} on a CPU with {expected_isa()!r}"


def expected_isa() -> str:
    """The widest nexpo path the kernel reports for this CPU (/proc/cpuinfo flags)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), []))
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "portable"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def quickstart(nexpo: list[str], tmp: Path, env: dict[str, str] | None = None) -> None:
    """README's quickstart with ``nexpo`` (the command, e.g. a venv's bin/nexpo)."""
    env = {**os.environ, **(env or {})}
    version = run([*nexpo, "--version"], capture_output=True, env=env, cwd=tmp).stdout.strip()
    assert version.startswith("nexpo "), version
    run([*nexpo, "info"], cwd=tmp, env=env)
    port = free_port()
    env.update({"NEXPO_HOST": "127.0.0.1", "NEXPO_PORT": str(port), "NEXPO_API_KEYS": API_KEY,
                "NEXPO_STATE_DIR": str(tmp / "state")})
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115  (closed below)
    server = subprocess.Popen([*nexpo, "serve"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            assert server.poll() is None, (tmp / "serve.log").read_text()
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "nexpo serve not ready in time"
            time.sleep(0.2)
        request = urllib.request.Request(base + "/v1/models", headers={"X-API-Key": API_KEY})
        with urllib.request.urlopen(request, timeout=10) as response:
            listed = json.loads(response.read())
        print("models:", listed)
        assert "digits" in json.dumps(listed), "the bundled digits model is not served"
        # README's curl, as written there (localhost:PORT, the key, 64 zero pixels)
        body = json.dumps({"inputs": [[0.0] * 64]})
        curl = [shutil.which("curl") or "curl", "-sf", "--max-time", "10", "-H", f"X-API-Key: {API_KEY}",
                f"localhost:{port}/v1/models/digits/infer", "-H", "content-type: application/json",
                "-d", body]
        answer = json.loads(run(curl, capture_output=True).stdout)
        print("infer:", json.dumps(answer)[:200])
        assert answer, "empty answer"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def unit_tests(venv: Path, tmp: Path) -> None:
    # bin/pytest (not python -m pytest), run from outside the checkout, keeps the checkout off
    # sys.path, also in the tests' subprocesses (python -m ...): nexpo comes from the venv
    env = {**os.environ, "NEXPO_TEST_INSTALLED": "1"}
    run([str(venv / "bin" / "pytest"), "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(ROOT / "tests" / "unit")],
        cwd=tmp, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/test_installed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, choices=wheels.PYTHONS)
    parser.add_argument("--quickstart", action="store_true")
    parser.add_argument("--unit", action="store_true")
    args = parser.parse_args(argv)
    cpu = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    out = ROOT / "build" / "wheels-test"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.whl"):
        stale.unlink()
    started = time.monotonic()
    wheel = wheels.repair(wheels.build_wheel(args.python, cpu, ROOT / "build" / "wheels-raw"), out)
    venv = fresh_venv(args.python, wheel)
    tmp = ROOT / "build" / f"installed-{args.python}-run"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    check_layout(wheel, venv, tmp)
    if args.quickstart:
        quickstart([str(venv / "bin" / "nexpo")], tmp)
    if args.unit:
        unit_tests(venv, tmp)
    print(f"installed wheel {wheel.name} on Python {args.python}: ok ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
