"""Builds the extension ``nexpo._core``: Nim -> C (nim/nimbuild.py), then cffi -> one module.

``NEXPO_BUILD_PROFILE`` picks a profile from nimble.toml (release by default).
Everything declarative lives in pyproject.toml and nimble.toml.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
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

    def build_extension(self, ext: Extension) -> None:
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


class SdistWithC(sdist):
    """An sdist carries the generated C, so installing it needs only a C compiler."""

    def run(self) -> None:
        nimbuild.generate("release")
        super().run()


setup(
    ext_modules=[Extension("nexpo._core", sources=["nim/nexpo_core/capi.nim"])],
    cmdclass={"build_ext": BuildNimExt, "sdist": SdistWithC},
)
