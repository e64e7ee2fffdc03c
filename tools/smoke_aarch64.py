"""Import and exercise the aarch64 cp311 wheel under emulation (qemu-user) with Debian's arm64 CPython.

    python tools/smoke_aarch64.py [--wheel dist/nexpo-...-cp311-...aarch64.whl] [--quickstart]

No arm64 package is installed on this machine (an arm64 python3 would replace the system's): the
interpreter and its libraries are unpacked from Debian's .debs into build/arm64-root and run with
``qemu-aarch64-static -L build/arm64-root``; the wheel and its dependencies (aarch64 wheels from
the index) go to build/arm64-site. Only CPython 3.11 is testable this way (Debian 12's version).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_installed

ROOT = test_installed.ROOT
SYSROOT = ROOT / "build" / "arm64-root"
SITE = ROOT / "build" / "arm64-site"
QEMU = "qemu-aarch64-static"
# Debian 12's python3.11 and what it links or imports (ldd / the stdlib's extension modules)
DEBS = ["python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "libgcc-s1",
        "libstdc++6", "libffi8", "libssl3", "zlib1g", "libexpat1", "libbz2-1.0", "liblzma5",
        "libsqlite3-0", "libuuid1", "libncursesw6", "libtinfo6", "libreadline8", "libcrypt1",
        "libdb5.3", "libnsl2", "libtirpc3", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3",
        "libkrb5support0", "libcom-err2", "libkeyutils1"]
SMOKE = """
import hashlib, platform, numpy as np, nexpo
from nexpo import kernels, crypto
from nexpo.channels import Channel
assert platform.machine() == "aarch64", platform.machine()
info = nexpo.info()
print("info:", {k: info[k] for k in ("version", "isa_active", "isa_available") if k in info})
a = np.arange(64 * 48, dtype=np.float32).reshape(64, 48) / 100
b = np.ones((48, 32), dtype=np.float32)
assert np.allclose(kernels.matmul(a, b), a @ b, rtol=1e-5)
assert crypto.sha256(b"abc" * 1000) == hashlib.sha256(b"abc" * 1000).digest()
ch = Channel(8)
ch.send(b"ping"); assert bytes(ch.recv(timeout=5)) == b"ping"
print("aarch64 smoke: matmul, sha256, channel ok")
"""


def ensure_qemu() -> str:
    found = shutil.which(QEMU)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "qemu-user-static"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        return shutil.which(QEMU) or QEMU
    raise SystemExit("error: qemu-aarch64-static is missing: `apt-get install -y qemu-user-static`")


def ensure_sysroot() -> Path:
    python = SYSROOT / "usr" / "bin" / "python3.11"
    if python.is_file():
        return python
    debs = ROOT / "build" / "arm64-debs"
    debs.mkdir(parents=True, exist_ok=True)
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True)
    if "arm64" not in foreign.stdout.split():
        if os.geteuid() != 0:
            raise SystemExit("error: apt cannot fetch arm64 packages: run `sudo dpkg --add-architecture "
                             "arm64 && sudo apt-get update` (this lets apt download them; installs none)")
        subprocess.run(["dpkg", "--add-architecture", "arm64"], check=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
    # apt-get download fetches the .deb only: nothing is installed or replaced
    subprocess.run(["apt-get", "download", *(f"{name}:arm64" for name in DEBS)], cwd=debs, check=True,
                   stdout=subprocess.DEVNULL)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(SYSROOT)], check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/smoke_aarch64.py", description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="default: dist/nexpo-*-cp311-*aarch64.whl")
    parser.add_argument("--quickstart", action="store_true", help="also serve and infer under qemu")
    args = parser.parse_args(argv)
    if args.wheel:
        wheel = Path(args.wheel)
    else:
        found = sorted((ROOT / "dist").glob("nexpo-*-cp311-cp311-*aarch64.whl"))
        if not found:
            raise SystemExit("error: no aarch64 cp311 wheel in dist/: run `make wheels` first")
        wheel = found[-1]
    qemu, python = ensure_qemu(), ensure_sysroot()
    shutil.rmtree(SITE, ignore_errors=True)
    extras = "[api]" if args.quickstart else ""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(SITE), "--only-binary", ":all:",
         # pip takes --platform literally: name every manylinux tag an aarch64 glibc-2.28 system takes
         *(f"--platform=manylinux_2_{minor}_aarch64" for minor in range(17, 29)),
         "--platform=manylinux2014_aarch64",
         "--python-version", "3.11", "--implementation", "cp",
         f"{wheel}{extras}"],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(SITE), "QEMU_LD_PREFIX": str(SYSROOT)}
    cmd = [qemu, "-L", str(SYSROOT), str(python)]
    subprocess.run([*cmd, "-c", SMOKE], check=True, env=env, cwd=ROOT / "build", timeout=600)
    if args.quickstart:
        tmp = ROOT / "build" / "arm64-run"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        test_installed.quickstart([*cmd, "-m", "nexpo"], tmp, env)
    print(f"aarch64: {wheel.name} imported and exercised under {QEMU}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
