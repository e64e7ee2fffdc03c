"""Packaging: the sdist carries the generated C and installs with Nim off PATH; a source
build without Nim stops with one clear line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _path_without_nim(tmp: Path) -> str:
    """A PATH with every tool of the current PATH except `nim`."""
    shadow = tmp / "bin-without-nim"
    shadow.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = shadow / entry.name
            if entry.name.startswith("nim") or target.exists():
                continue
            target.symlink_to(entry.path)
    assert shutil.which("nim", path=str(shadow)) is None
    assert shutil.which("cc", path=str(shadow)) or shutil.which("gcc", path=str(shadow))
    return str(shadow)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (archive,) = out.glob("nexpo-*.tar.gz")
    return archive


def test_sdist_carries_generated_c_and_no_binaries(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    for cpu in ("amd64", "arm64"):  # setup.py picks the build machine's
        assert any(f"nim/_generated/release-{cpu}/" in n and n.endswith(".c") for n in names), cpu
        assert any(n.endswith(f"nim/_generated/release-{cpu}/nimbase.h") for n in names), cpu
        assert any(n.endswith(f"nim/_generated/release-{cpu}/STAMP") for n in names), cpu
    assert not any(n.endswith((".so", ".o")) for n in names)
    assert not any("/_generated/sanitize" in n for n in names)


def test_sdist_carries_the_model_the_tests_and_the_license(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    shipped = {"LICENSE", "api/models/digits.safetensors", "tests/conftest.py", "tests/unit/test_cli.py"}
    assert shipped <= names
    assert any(n.startswith("tests/vectors/") for n in names)


@pytest.mark.slow
def test_sdist_installs_and_runs_with_nim_off_path(sdist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": _path_without_nim(tmp_path)}
    env.pop("VIRTUAL_ENV", None)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(sdist)], env=env, capture_output=True, text=True
    )
    assert install.returncode == 0, install.stdout + install.stderr
    code = "import nexpo; print(nexpo.info()['nim_version'], nexpo.info()['isa_active'])"
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0].startswith("1.")


def test_source_build_without_nim_stops_with_one_clear_line(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True)
    tree.mkdir()
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    env = {**os.environ, "PATH": _path_without_nim(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext"], cwd=tree, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        "error: nexpo: the Nim compiler is not on PATH; "
        "install it with `apt-get install -y nim` (Debian/Ubuntu)"
    )
    assert "Traceback" not in proc.stderr


def test_source_build_without_a_c_compiler_stops_with_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "CC": str(tmp_path / "no-such-cc"), "LDSHARED": str(tmp_path / "no-such-cc")}
    proc = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
         "--build-temp", str(tmp_path / "tmp")],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: nexpo: no C compiler found"), proc.stderr[-2000:]
    assert "apt-get install -y gcc" in last
    assert "Traceback" not in proc.stderr


def test_readme_links_work_away_from_the_repository() -> None:
    """PyPI shows README.md without the repository: every link is absolute, into project.urls."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    home = project["urls"]["Source"]
    raw = home.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert links
    for link in links:
        assert link.startswith(("https://", "http://", "#")), link
        if "nexpo" in link and "github" in link:
            assert link.startswith((home + "/", raw)), link
