"""Build driver for the Nim core, driven by ``nimble.toml``.

Used by ``setup.py`` (to generate C and to describe the cffi extension), by the Makefile, and
directly::

    python nim/nimbuild.py generate [--profile release] [--cpu arm64]  # -> nim/_generated/<profile>-<cpu>
    python nim/nimbuild.py test [--profile sanitize] [PATTERN...]  # compile + run tests/nim
    python nim/nimbuild.py stub [--check]                   # write (or check) nexpo/_core.pyi
    python nim/nimbuild.py cflags --profile release         # the C flags setup.py will use

Only the standard library is imported at module level: ``setup.py`` loads this file before any
build dependency is guaranteed to be importable.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "nimble.toml"
GENERATED = ROOT / "nim" / "_generated"
STUB_FILE = ROOT / "nexpo" / "_core.pyi"
PROFILES = ("release", "debug", "sanitize", "tsan")
INSTALL_HINT = "install it with `apt-get install -y nim` (Debian/Ubuntu)"
# Nim's name of each CPU whose C an sdist carries -> the machine name (platform.machine(), nimble.toml).
TARGET_CPUS = {"amd64": "x86_64", "arm64": "aarch64"}
# The target CPU of a cross build (`make wheels`); the build machine's CPU otherwise.
TARGET_ENV = "NEXPO_TARGET_CPU"


class BuildError(SystemExit):
    """A build failure that prints as one clear line, not a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: nexpo: {message}")


@dataclass(frozen=True)
class Config:
    min_version: tuple[int, ...]
    entry: Path
    main_prefix: str
    search_paths: list[Path]
    headers: list[Path]
    python_sources: list[Path]
    binding_headers: list[Path]
    tests_glob: str
    common_nim: list[str]
    common_c: list[str]
    arch_c: dict[str, list[str]]  # by machine name (x86_64, aarch64)
    profiles: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def nim_flags(self, profile: str) -> list[str]:
        return [*self.common_nim, *self._profile(profile).get("nim", [])]

    def c_flags(self, profile: str, cpu: str | None = None) -> list[str]:
        machine = TARGET_CPUS.get(cpu or target_cpu(), "")
        return [*self.common_c, *self.arch_c.get(machine, []), *self._profile(profile).get("c", [])]

    def ld_flags(self, profile: str) -> list[str]:
        return list(self._profile(profile).get("ld", []))

    def _profile(self, profile: str) -> dict[str, list[str]]:
        if profile not in self.profiles:
            raise BuildError(f"unknown build profile {profile!r}; nimble.toml has {sorted(self.profiles)}")
        return self.profiles[profile]


def target_cpu() -> str:
    """Nim's name of the CPU to build for: $NEXPO_TARGET_CPU, else this machine's."""
    wanted = os.environ.get(TARGET_ENV)
    if wanted:
        if wanted not in TARGET_CPUS:
            raise BuildError(f"{TARGET_ENV}={wanted!r}: expected one of {sorted(TARGET_CPUS)}")
        return wanted
    return host_cpu()


def host_cpu() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def load_config() -> Config:
    data = tomllib.loads(CONFIG_FILE.read_text())
    nim, flags = data["nim"], data["flags"]
    return Config(
        min_version=tuple(int(p) for p in nim["min_version"].split(".")),
        entry=ROOT / nim["entry"],
        main_prefix=nim["main_prefix"],
        search_paths=[ROOT / p for p in nim["search_paths"]],
        headers=[ROOT / h for h in nim["headers"]],
        python_sources=[ROOT / p for p in data.get("python", {}).get("sources", [])],
        binding_headers=[ROOT / p for p in data.get("python", {}).get("headers", [])],
        tests_glob=nim["tests"],
        common_nim=flags["nim"],
        common_c=flags["c"],
        arch_c={m: flags.get(f"c_{m}", []) for m in TARGET_CPUS.values()},
        profiles=data["profile"],
    )


# --- Nim toolchain -------------------------------------------------------------------------


def find_nim() -> str | None:
    return shutil.which("nim")


def nim_version(nim: str) -> tuple[int, ...]:
    out = subprocess.run([nim, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Version (\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise BuildError(f"cannot read the version of {nim}: {out.splitlines()[:1]}")
    return tuple(int(g) for g in match.groups())


def nim_lib_dir(nim: str) -> Path:
    """Where nimbase.h lives (the generated C includes it)."""
    out = subprocess.run(
        [nim, "dump", "--dump.format:json", "--hints:off", "-"], input="", capture_output=True, text=True
    )
    match = re.search(r'"libpath":\s*"([^"]+)"', out.stdout)
    candidates = [Path(match.group(1))] if match else []
    candidates += [Path(nim).resolve().parent.parent / "lib", Path("/usr/lib/nim/lib"), Path("/usr/lib/nim")]
    for cand in candidates:
        if (cand / "nimbase.h").is_file():
            return cand
    raise BuildError("found nim but not its nimbase.h; reinstall Nim")


def require_nim(cfg: Config) -> str:
    nim = find_nim()
    if nim is None:
        raise BuildError(f"the Nim compiler is not on PATH; {INSTALL_HINT}")
    version = nim_version(nim)
    if version < cfg.min_version:
        need = ".".join(map(str, cfg.min_version))
        have = ".".join(map(str, version))
        raise BuildError(f"Nim {have} is too old (need >= {need}); {INSTALL_HINT}")
    return nim


# --- Nim -> C ------------------------------------------------------------------------------


def source_digest(cfg: Config, profile: str, cpu: str) -> str:
    """Hash of everything the generated C depends on: Nim sources, the config, the profile, the CPU."""
    h = hashlib.sha256(f"{profile}-{cpu}".encode())
    h.update(CONFIG_FILE.read_bytes())
    for path in sorted([*(ROOT / "nim").rglob("*.nim"), *(ROOT / "nim").rglob("*.h")]):
        if GENERATED in path.parents:
            continue
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def generated_dir(profile: str, cpu: str | None = None) -> Path:
    return GENERATED / f"{profile}-{cpu or target_cpu()}"


@contextlib.contextmanager
def build_lock(name: str = "build"):  # -> Iterator[None]
    """Serialise builds of one tree (two `make build`s at once would clobber each other)."""
    lock_dir = ROOT / "build"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def generate(
    profile: str = "release", *, cpu: str | None = None, force: bool = False, quiet: bool = False
) -> Path:
    with build_lock("generate"):
        return _generate(profile, cpu or target_cpu(), force=force, quiet=quiet)


def _generate(profile: str, cpu: str, *, force: bool, quiet: bool) -> Path:
    """Make sure ``nim/_generated/<profile>-<cpu>`` holds C for the current sources.

    With Nim on PATH the C is regenerated when the sources changed. Without Nim (an sdist on a
    machine with only a C compiler), C generated earlier is used when it matches the sources.
    """
    cfg = load_config()
    out = generated_dir(profile, cpu)
    stamp = out / "STAMP"
    digest = source_digest(cfg, profile, cpu)
    fresh = stamp.is_file() and stamp.read_text().strip() == digest
    nim = find_nim()
    if nim is None:
        if fresh:
            return out
        if stamp.is_file():
            raise BuildError(
                f"the C generated from the Nim core is out of date and Nim is not on PATH; {INSTALL_HINT}"
            )
        if cpu not in TARGET_CPUS:
            raise BuildError(
                f"no pre-generated C for this CPU ({cpu}; the sdist has {', '.join(TARGET_CPUS)}) and "
                f"Nim is not on PATH; {INSTALL_HINT}"
            )
        raise BuildError(f"the Nim compiler is not on PATH; {INSTALL_HINT}")
    if fresh and not force:
        return out
    nim = require_nim(cfg)
    if not quiet:
        print(f"nexpo: generating C from {cfg.entry.relative_to(ROOT)} ({profile}, {cpu})", file=sys.stderr)
    _nim_to_c(nim, cfg, profile, out, f"--cpu:{cpu}", "--os:linux")
    shutil.copy2(nim_lib_dir(nim) / "nimbase.h", out / "nimbase.h")
    for header in [*cfg.headers, *cfg.binding_headers]:
        shutil.copy2(header, out / header.name)
    stamp.write_text(digest + "\n")
    return out


def _nim_to_c(nim: str, cfg: Config, profile: str, out: Path, *extra: str) -> None:
    """``nim c --compileOnly`` of the entry module into a fresh ``out``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cmd = [
        nim,
        "c",
        "--compileOnly",
        *extra,
        f"--nimcache:{out}",
        *cfg.nim_flags(profile),
        *(f"--path:{p}" for p in cfg.search_paths),
        str(cfg.entry),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise BuildError(f"nim failed to compile {cfg.entry.relative_to(ROOT)} (output above)")


def c_sources(gen: Path) -> list[Path]:
    return sorted(gen.glob("*.c"))


# --- cffi ----------------------------------------------------------------------------------

_PREPROCESSOR = re.compile(r"^\s*#.*$", re.M)
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def header_text(cfg: Config) -> str:
    return "\n".join(h.read_text() for h in cfg.headers)


def cdef_text(cfg: Config) -> str:
    """The headers as cffi's cdef wants them: no preprocessor lines."""
    return _PREPROCESSOR.sub("", header_text(cfg))


def make_ffibuilder(profile: str = "release"):  # -> cffi.FFI; cffi is a build-time import
    import cffi

    cfg = load_config()
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(cdef_text(cfg))
    includes = "\n".join(f'#include "{h.name}"' for h in cfg.headers)
    ffibuilder.set_source("nexpo._core", "#include <stdint.h>\n#include <stddef.h>\n" + includes)
    return ffibuilder


# --- the .pyi stub -------------------------------------------------------------------------

_DECL = re.compile(r"([A-Za-z_][\w\s\*]*?)\b(nexpo_\w+)\s*\(([^)]*)\)\s*;")
_ENUM = re.compile(r"\b(NEXPO_[A-Z0-9_]+)\s*=")


def _py_type(ctype: str) -> str:
    ctype = re.sub(r"\b(const|volatile|restrict|struct|enum)\b", "", ctype).strip()
    if "*" in ctype or ctype.endswith("_fn"):  # pointers; function pointer typedefs (nexpo_*_fn)
        return "_CData"
    if ctype in ("float", "double"):
        return "float"
    if ctype == "void":
        return "None"
    if ctype == "bool":
        return "bool"
    return "int"


def render_stub(cfg: Config) -> str:
    text = _COMMENT.sub("", header_text(cfg))
    lines = [
        "# Generated by `python nim/nimbuild.py stub` from the C headers listed in nimble.toml.",
        "# Do not edit: change the header, then regenerate (a test checks they agree).",
        "from typing import Any, TypeAlias",
        "",
        "_CData: TypeAlias = Any",
        "",
        "class _Lib:",
    ]
    for const in sorted(set(_ENUM.findall(text))):
        lines.append(f"    {const}: int")
    for ret, name, raw_params in _DECL.findall(_PREPROCESSOR.sub("", text)):
        args = []
        params = raw_params.strip()
        if params and params != "void":
            for i, param in enumerate(p.strip() for p in params.split(",")):
                match = re.match(r"(.*?)(\w+)$", param)
                assert match, param
                ctype, pname = match.groups()
                if not ctype.strip() or ctype.strip().endswith(("const", "struct")):
                    ctype, pname = param, f"arg{i}"
                args.append(f"{pname}: {_py_type(ctype)}")
        sig = ", ".join(["self", *args])
        lines.append(f"    def {name}({sig}) -> {_py_type(ret)}: ...")
    lines += ["", "ffi: Any", "lib: _Lib", ""]
    return "\n".join(lines)


# --- Nim-level tests -----------------------------------------------------------------------


def _test_env(profile: str) -> dict[str, str]:
    env = dict(os.environ)
    if profile == "sanitize":
        env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1:strict_string_checks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if profile == "tsan":
        env.setdefault("TSAN_OPTIONS", "halt_on_error=1:second_deadlock_stack=1")
    return env


def build_test(nim: str, cfg: Config, profile: str, src: Path) -> Path:
    out_dir = ROOT / "build" / "nimtests" / profile
    exe = out_dir / src.stem
    # A test is a program: it has its own main(), which runs the module initialisers.
    flags = [*(f for f in cfg.nim_flags(profile) if f != "--noMain"), "-d:nexpoTestProgram"]
    cmd = [
        nim,
        "c",
        f"--nimcache:{out_dir / ('cache_' + src.stem)}",
        f"-o:{exe}",
        *flags,
        *(f"--path:{p}" for p in cfg.search_paths),
        *(f"--passC:{f}" for f in cfg.c_flags(profile)),
        *(f"--passL:{f}" for f in cfg.ld_flags(profile)),
        str(src),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{src.name}: compile failed\n{proc.stdout}{proc.stderr}")
    return exe


def run_tests(profile: str, patterns: list[str], jobs: int) -> int:
    cfg = load_config()
    nim = require_nim(cfg)
    sources = sorted(ROOT.glob(cfg.tests_glob))
    if patterns:
        sources = [s for s in sources if any(p in s.name for p in patterns)]
    if not sources:
        print("nim tests: none matched", file=sys.stderr)
        return 1
    failures = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        builds = {src: pool.submit(build_test, nim, cfg, profile, src) for src in sources}
        for src, fut in builds.items():
            try:
                exe = fut.result()
            except RuntimeError as exc:
                print(f"FAIL {src.name} [{profile}]\n{exc}")
                failures += 1
                continue
            proc = subprocess.run(
                [str(exe)], capture_output=True, text=True, env=_test_env(profile), timeout=900
            )
            status = "ok  " if proc.returncode == 0 else "FAIL"
            print(f"{status} {src.name} [{profile}]")
            if proc.returncode != 0 or os.environ.get("NEXPO_TEST_VERBOSE"):
                sys.stdout.write(proc.stdout + proc.stderr)
            failures += proc.returncode != 0
    passed = len(sources) - failures
    # The plain closing line CI reads.
    print(f"nim-{profile}: {passed} passed, {failures} failed")
    return 1 if failures else 0


# --- cross-compilation check --------------------------------------------------------------


def cross_check(cpu: str, cc: str, profile: str = "release") -> int:
    """Generate C for another CPU and compile + link it with a cross compiler (portable path).

    Proves the core builds where the x86 paths do not exist (e.g. aarch64); nothing runs.
    """
    cfg = load_config()
    require_nim(cfg)
    if shutil.which(cc) is None:
        raise BuildError(
            f"cross compiler {cc} not found; install it with `apt-get install -y gcc-aarch64-linux-gnu`"
        )
    gen = generate(profile, cpu=cpu)
    out = ROOT / "build" / f"cross-{cpu}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    c_flags = cfg.c_flags(profile, cpu)
    objects = []
    for src in c_sources(gen):
        obj = out / src.with_suffix(".o").name
        proc = subprocess.run(
            [cc, *c_flags, f"-I{gen}", "-c", str(src), "-o", str(obj)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            sys.stderr.write(f"{src.name}:\n{proc.stderr}")
            return 1
        objects.append(str(obj))
    lib = out / "libnexpo_core.so"
    proc = subprocess.run(
        [cc, "-shared", "-Wl,--no-undefined", "-o", str(lib), *objects, "-lm", "-pthread"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return 1
    symbols = subprocess.run(["nm", "--defined-only", str(lib)], capture_output=True, text=True).stdout
    declared = set(re.findall(r"\b(nexpo_\w+)\s*\(", _COMMENT.sub("", cdef_text(cfg))))
    missing = sorted(name for name in declared if not re.search(rf"\b{name}\b", symbols))
    if missing:
        print(f"cross {cpu}: exports missing from the library: {missing}")
        return 1
    print(f"cross {cpu}: {len(objects)} C files compiled and linked with {cc}; all exports present")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nimbuild", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--profile", default="release", choices=PROFILES)
    gen.add_argument("--cpu", choices=sorted(TARGET_CPUS), help="target CPU (default: this machine's)")
    gen.add_argument("--force", action="store_true")
    test = sub.add_parser("test")
    test.add_argument("--profile", default="release", choices=PROFILES)
    test.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    test.add_argument("patterns", nargs="*")
    stub = sub.add_parser("stub")
    stub.add_argument("--check", action="store_true")
    cross = sub.add_parser("cross")
    cross.add_argument("--cpu", default="arm64")
    cross.add_argument("--cc", default="aarch64-linux-gnu-gcc")
    sub.add_parser("cpu", help="print the target CPU ($NEXPO_TARGET_CPU, else this machine's)")
    flags = sub.add_parser("cflags")
    flags.add_argument("--profile", default="release", choices=PROFILES)
    args = parser.parse_args(argv)

    if args.cmd == "generate":
        print(generate(args.profile, cpu=args.cpu, force=args.force))
    elif args.cmd == "test":
        return run_tests(args.profile, args.patterns, args.jobs)
    elif args.cmd == "stub":
        text = render_stub(load_config())
        if args.check:
            if not STUB_FILE.is_file() or STUB_FILE.read_text() != text:
                print(f"{STUB_FILE.relative_to(ROOT)} is out of date: run `python nim/nimbuild.py stub`")
                return 1
            return 0
        STUB_FILE.write_text(text)
    elif args.cmd == "cross":
        return cross_check(args.cpu, args.cc)
    elif args.cmd == "cpu":
        print(target_cpu())
    elif args.cmd == "cflags":
        cfg = load_config()
        print(" ".join(cfg.c_flags(args.profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
