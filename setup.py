"""Builds the extension ``nexpo._core``: Nim -> C (nim/nimbuild.py), then cffi -> one module.

``NEXPO_BUILD_PROFILE`` picks a profile from nimble.toml (release by default);
``NEXPO_TARGET_CPU`` (amd64, arm64) cross-builds with the compiler in ``CC``/``LDSHARED`` (`make wheels`).
Everything declarative lives in pyproject.toml and nimble.toml, except the package list: the
repository's ``api/`` folder installs as ``nexpo.api``, so ``nexpo`` is the one top-level name.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import os
import shlex
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
os.chdir(HERE)


def _load_nimbuild():
    spec = importlib.util.spec_from_file_location("nimbuild", HERE / "nim" / "nimbuild.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["nimbuild"] = module
    spec.loader.exec_module(module)
    return module


nimbuild = _load_nimbuild()
PROFILE = os.environ.get("NEXPO_BUILD_PROFILE", "release")


class BuildNimExt(build_ext):
    """Generates the Nim C and the cffi glue, then compiles them in parallel."""

    def run(self) -> None:
        with nimbuild.build_lock("ext"):
            self._run()

    def _run(self) -> None:
        gen = nimbuild.generate(PROFILE)
        cfg = nimbuild.load_config()
        # setuptools wants sources as paths relative to setup.py.
        glue = Path("build") / "cffi" / "nexpo__core.c"
        glue.parent.mkdir(parents=True, exist_ok=True)
        nimbuild.make_ffibuilder(PROFILE).emit_c_code(str(glue))
        ext = self.extensions[0]
        gen = gen.relative_to(HERE)
        nim_c = nimbuild.c_sources(HERE / gen)
        ext.sources = [str(p.relative_to(HERE)) if p.is_absolute() else str(p)
                       for p in (glue, *cfg.python_sources, *nim_c)]
        ext.include_dirs = [str(gen)]  # the Nim C, nimbase.h and a copy of the capi headers
        ext.extra_compile_args = cfg.c_flags(PROFILE)
        ext.extra_link_args = [*cfg.ld_flags(PROFILE), "-lm", "-pthread"]
        super().run()

    def get_ext_filename(self, fullname: str) -> str:
        # A cross build names the module for the target (cpython-312-aarch64-linux-gnu.so).
        name = super().get_ext_filename(fullname)
        host, target = nimbuild.TARGET_CPUS.get(nimbuild.host_cpu()), nimbuild.TARGET_CPUS.get(
            nimbuild.target_cpu())
        if host and target and host != target:
            name = name.replace(f"-{host}-", f"-{target}-")
        return name

    def build_extension(self, ext: Extension) -> None:
        _require_compiler(self.compiler.compiler_so)
        # One extension made of many C files: compile them on every core, then let setuptools link.
        original = self.compiler.compile

        def compile_parallel(sources, *args, **kwargs):
            jobs = max(1, os.cpu_count() or 1)
            with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
                parts = pool.map(lambda src: original([src], *args, **kwargs), sources)
                return [obj for objs in parts for obj in objs]

        self.compiler.compile = compile_parallel
        try:
            super().build_extension(ext)
        finally:
            self.compiler.compile = original


def _require_compiler(command: list[str]) -> None:
    """One clear line instead of setuptools' ``[Errno 2] No such file or directory: 'gcc'``."""
    if command and shutil.which(command[0]) is None:
        configured = sysconfig.get_config_var("CC") or "cc"
        raise nimbuild.BuildError(
            f"no C compiler found ({shlex.join(command[:1])}; CC={os.environ.get('CC', configured)}): "
            "install one (Debian/Ubuntu: `apt-get install -y gcc`), or install a binary wheel "
            "(`pip install --only-binary nexpo nexpo`)"
        )


class SdistWithC(sdist):
    """An sdist carries the generated C for every supported CPU, so installing it needs only a C
    compiler; setup.py picks the C of the machine it builds on."""

    def run(self) -> None:
        for cpu in nimbuild.TARGET_CPUS:
            nimbuild.generate("release", cpu=cpu)
        super().run()


def _packages() -> list[str]:
    core = find_packages(include=["nexpo", "nexpo.*"])
    gateway = ["nexpo." + name for name in find_packages(include=["api", "api.*"])]
    return core + gateway


setup(
    packages=_packages(),
    ext_modules=[Extension("nexpo._core", sources=["nim/nexpo_core/capi.nim"])],
    cmdclass={"build_ext": BuildNimExt, "sdist": SdistWithC},
)
