"""The container image, checked without a Docker engine (none runs here).

hadolint lints the Dockerfile; its facts (stages, user, port, command, pins) are checked against
the project and the Kubernetes manifests; then the Dockerfile's own build and install commands
run here: the build stage's ``pip wheel`` on the same context (the repository filtered by
.dockerignore), the runtime stage's pip-less venv filled offline from those wheels. From that
venv the gateway must serve (/livez, /readyz, /metrics, API keys, SIGTERM): once plainly as
``nexpo serve --host 127.0.0.1 --port P``, once as the prod pod runs it (its command and
settings, UID 10001, nothing writable but what is an emptyDir in the pod).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
UID = "10001"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

# The Dockerfile's build and install commands, with the image's paths as parameters. The test
# below checks that the Dockerfile runs exactly these, then runs them itself in temporary folders.
BUILD_WHEELS = 'python -m pip wheel --no-cache-dir --wheel-dir {wheels} ".[api]"'
MAKE_VENV = "python -m venv --without-pip {venv}"
INSTALL_WHEELS = (
    "python -m pip --python {venv}/bin/python install --no-cache-dir --no-index"
    ' --find-links {wheels} "nexpo[api]=={version}"'
)
IMAGE_PATHS = {"wheels": "/wheels", "venv": "/opt/nexpo", "version": VERSION}
# Not in the Dockerfile: only this emulation's two interpreters can differ (see the venv fixture).
TOP_UP_WHEELS = (
    "python -m pip --python {venv}/bin/python wheel --no-cache-dir --wheel-dir {wheels}"
    ' --find-links {wheels} "nexpo[api]=={version}"'
)


def tool(name: str) -> str:
    """A tool from this interpreter's environment first (pinned by the dev extra), then PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the dev extra (pip install -e '.[dev]')")
    return found


def run(
    *args: str | Path, timeout: float = 600, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], check=False, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


# --- the Dockerfile as data ----------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions per build stage, by stage name."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for word, rest in instructions():
        if word == "FROM":
            current = result.setdefault(rest.split(" AS ")[-1].strip(), [])
        if current is not None:
            current.append((word, rest))
    return result


def arg_defaults() -> dict[str, str]:
    return dict(
        rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest
    )


def test_hadolint_is_clean() -> None:
    done = run(tool("hadolint"), "--no-color", "--failure-threshold", "info", DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_images_are_pinned_by_tag() -> None:
    args = arg_defaults()
    for word, rest in instructions():
        if word != "FROM":
            continue
        image = rest.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name, f"{image}: no tag"
        assert tag not in {"", "latest"}, f"{image}: pin a tag"
    # Build and runtime share one image: the extension built in one loads in the other.
    froms = [rest.split()[0] for word, rest in instructions() if word == "FROM"]
    assert len(set(froms)) == 1, froms


def test_build_stage_uses_debian_nim_and_builds_the_wheel() -> None:
    build = " ".join(rest for word, rest in stages()["build"] if word == "RUN")
    assert re.search(r"apt-get install .*\bnim\b", build)
    assert "pip wheel" in build


def test_runtime_stage_has_no_compiler_and_runs_as_uid_10001() -> None:
    runtime = stages()["runtime"]
    run_lines = " ".join(rest for word, rest in runtime if word == "RUN")
    assert "apt-get" not in run_lines, "the runtime stage installs no system package"
    assert not re.search(r"\b(gcc|build-essential|nim)\b", run_lines)
    assert "--no-index" in run_lines, "the runtime installs only the build stage's wheels"
    users = [rest for word, rest in runtime if word == "USER"]
    assert users, "the runtime stage sets USER"
    assert users[-1].split(":")[0] == UID, "numeric UID, so Kubernetes can check runAsNonRoot"
    assert runtime[-1] == ("CMD", '["nexpo", "serve"]')


def run_text(stage: str) -> str:
    """The stage's RUN commands, whitespace collapsed."""
    return " ".join(" ".join(rest.split()) for word, rest in stages()[stage] if word == "RUN")


def test_dockerfile_runs_the_commands_this_test_runs() -> None:
    """The wheel test below repeats these commands; they must be the Dockerfile's (incl. the
    version pin, which must match pyproject.toml)."""
    assert BUILD_WHEELS.format(**IMAGE_PATHS) in run_text("build")
    assert next([w, r] for w, r in stages()["build"] if w == "WORKDIR") == ["WORKDIR", "/src"]
    assert MAKE_VENV.format(**IMAGE_PATHS) in run_text("runtime")
    assert INSTALL_WHEELS.format(**IMAGE_PATHS) in run_text("runtime")
    assert "/opt/nexpo/bin" in " ".join(rest for word, rest in stages()["runtime"] if word == "ENV")


def test_exposed_port_matches_the_kubernetes_manifests() -> None:
    runtime = stages()["runtime"]
    exposed = [rest for word, rest in runtime if word == "EXPOSE"]
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    port = re.search(r"NEXPO_PORT=(\d+)", env)
    assert port
    grpc = re.search(r"^NEXPO_GRPC_PORT=(\d+)$", (ROOT / "k8s" / "base" / "settings.env").read_text(), re.M)
    assert grpc, "the gRPC port (reserved for the gRPC server) is set for the pods"
    assert exposed == [f"{port.group(1)} {grpc.group(1)}"]
    assert re.search(r"NEXPO_HOST=0\.0\.0\.0", env), "in a container it listens on all interfaces"
    deployment = yaml.safe_load((ROOT / "k8s" / "base" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [int(port.group(1)), int(grpc.group(1))]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(UID)


# --- the build context ---------------------------------------------------------------------------


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (is_exception, regex) in file order, with Docker's matching rules:
    patterns are relative to the context root, ``*`` stays within one path segment, ``**`` spans
    any number, and a path is excluded when it or one of its parent directories matches."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def context_files() -> Iterator[Path]:
    """The files `docker build .` would send, relative to the repository root."""
    rules = dockerignore_rules()
    can_prune = not any(negate for negate, _ in rules)

    def excluded(rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for negate, regex in rules:
            if any(regex.fullmatch(p) for p in prefixes):
                result = not negate
        return result

    for folder, dirs, files in os.walk(ROOT):
        rel_folder = Path(folder).relative_to(ROOT)
        if can_prune:
            dirs[:] = [d for d in dirs if not excluded((rel_folder / d).as_posix())]
        for name in files:
            rel = rel_folder / name
            if not excluded(rel.as_posix()):
                yield rel


# What .dockerignore keeps out on purpose: the rest of the repository's files must be sent.
NOT_IN_IMAGE = (".ci/", "k8s/", "tests/", "benchmarks/", "docs/", "node/", "Dockerfile", ".dockerignore")


def test_build_context_holds_the_sources_and_nothing_built() -> None:
    files = {p.as_posix() for p in context_files()}
    for needed in ("pyproject.toml", "setup.py", "nimble.toml", "nim/nimbuild.py", "nexpo/__init__.py"):
        assert needed in files, needed
    tracked = run("git", "ls-files", cwd=ROOT)
    assert tracked.returncode == 0, tracked.stderr
    for f in tracked.stdout.splitlines():
        if (ROOT / f).is_file() and not f.startswith(NOT_IN_IMAGE):
            assert f in files, f"{f} is in git but .dockerignore keeps it out of the image build"
    for f in files:
        assert not re.search(r"(^|/)(\.git|\.venv|build|dist|__pycache__|_generated)(/|$)", f), f
        assert not f.endswith((".so", ".o", ".pyc")), f
        assert not f.startswith(("k8s/", "tests/")), f


# --- the wheel, installed and served -------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(url: str, status: int, server: subprocess.Popen[str], deadline_s: float) -> str:
    deadline = time.monotonic() + deadline_s
    last: object = None
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited with {server.returncode}"
        try:
            code, body = get(url)
            if code == status:
                return body
            last = (code, body[:200])
        except OSError as error:  # not listening yet
            last = error
        time.sleep(0.25)
    raise AssertionError(f"{url} never answered {status} within {deadline_s}s; last: {last}")


def shell(command: str, cwd: Path, python: str = sys.executable) -> None:
    """Run a Dockerfile command here, with ``python`` standing for the given interpreter."""
    bin_dir = cwd.parent / ("bin" + python.replace("/", "_"))
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "python").exists():
        (bin_dir / "python").symlink_to(python)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "NEXPO_BUILD_PROFILE": "release", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(command, shell=True, cwd=cwd, env=env, check=False, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, f"{command}\n{done.stdout[-4000:]}{done.stderr[-4000:]}"


def usable_by_others(path: Path) -> bool:
    """Can a user with no rights of its own (like UID 10001) run this file?"""
    real = path.resolve()
    return real.is_file() and all(p.stat().st_mode & stat.S_IXOTH for p in [real, *real.parents])


def runtime_python() -> str:
    """The interpreter of the image's venv. The image's is /usr/local/bin/python3.11; here, this
    test's Python version from a place UID 10001 can reach (a pyenv build under /root cannot)."""
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(getattr(sys, "_base_executable", sys.executable))
    for candidate in (base, Path("/usr/local/bin") / name, Path("/usr/bin") / name):
        if usable_by_others(candidate):
            return str(candidate)
    if os.geteuid() != 0:  # the gateway will run as this (non-root) user: any interpreter will do
        return str(base)
    pytest.fail(f"no {name} that UID 10001 can run: install Debian's {name} (apt-get install {name})")


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """Scratch space that UID 10001 can traverse (pytest's own tmp folders are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="nexpo-image-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def venv(image_root: Path) -> Path:
    """The image's venv, made as the Dockerfile makes it: the build context (the repository
    filtered by .dockerignore) is copied, the build stage's command builds the nexpo wheel and
    collects its dependencies as wheels, and the runtime stage's commands make a venv without pip
    and install only those wheels into it, offline."""
    context = image_root / "src"
    for rel in context_files():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, context / rel)
    paths = {"wheels": str(image_root / "wheels"), "venv": str(image_root / "opt-nexpo"), "version": VERSION}
    shell(BUILD_WHEELS.format(**paths), cwd=context)
    assert len(list((image_root / "wheels").glob(f"nexpo-{VERSION}-*.whl"))) == 1
    shell(MAKE_VENV.format(**paths), cwd=image_root, python=runtime_python())
    # In the image both stages share one interpreter. Here the build stage's (this test's) can be a
    # newer patch release than the runtime's, and a marker on the full version (redis needs
    # async-timeout below 3.11.3) then asks for a wheel the build stage did not collect: top the
    # wheels up for the runtime interpreter before the offline install.
    shell(TOP_UP_WHEELS.format(**paths), cwd=image_root)
    shell(INSTALL_WHEELS.format(**paths), cwd=image_root)
    return image_root / "opt-nexpo"


def clean_env() -> dict[str, str]:
    """This machine's environment without anything that would steer the gateway or Python."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("NEXPO_", "PYTHON", "PROMETHEUS_"))}


def serve_and_probe(
    command: list[str], env: dict[str, str], port: int, api_key: str, *, cwd: Path,
    as_uid: int | None = None, while_up: Callable[[], None] = lambda: None,
) -> str:
    """Start the gateway, check health, metrics and auth over HTTP (then ``while_up``), stop it
    with SIGTERM as the kubelet does; returns its output."""
    server = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        user=as_uid, group=as_uid, extra_groups=None if as_uid is None else [],
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/livez", 200, server, deadline_s=120)
        # Ready means the models shipped in the wheel loaded and the native core answered.
        wait_for(f"{base}/readyz", 200, server, deadline_s=120)
        metrics = wait_for(f"{base}/metrics", 200, server, deadline_s=10)
        assert "# TYPE" in metrics
        # /v1 is closed without a key and open with one.
        status, _ = get(f"{base}/v1/models")
        assert status in {401, 403}
        request = urllib.request.Request(f"{base}/v1/models", headers={"X-API-Key": api_key})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        while_up()
    except (AssertionError, OSError) as failure:
        server.kill()
        output, _ = server.communicate()
        raise AssertionError(f"{failure}\n--- gateway output ---\n{output[-4000:]}") from None
    server.send_signal(signal.SIGTERM)
    try:
        output, _ = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        output, _ = server.communicate()
        raise AssertionError(f"the gateway did not stop on SIGTERM:\n{output[-4000:]}") from None
    # uvicorn drains, then re-raises the SIGTERM it caught (as PID 1 in a container, where a
    # default-action signal is ignored, that is a plain exit 0).
    assert server.returncode in {0, -signal.SIGTERM}, output[-4000:]
    return output


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_wheel_installs_and_serves(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    # The package comes from the venv, not from this checkout, and the venv has no pip.
    done = run(python, "-c", "import nexpo, nexpo._core; print(nexpo.__file__)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(venv)
    assert run(python, "-m", "pip", "--version").returncode != 0

    port = free_port()
    env = clean_env() | {"NEXPO_API_KEYS": "wheel-test-key", "NEXPO_STATE_DIR": str(tmp_path / "state")}
    command = [str(venv / "bin" / "nexpo"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    serve_and_probe(command, env, port, "wheel-test-key", cwd=tmp_path)


def prod_pod(kubectl: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The prod overlay's gateway container and the settings it gets from its ConfigMap."""
    done = run(kubectl, "kustomize", ROOT / "k8s" / "overlays" / "prod")
    assert done.returncode == 0, done.stderr
    objs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    (deployment,) = [o for o in objs if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (ref,) = [e["configMapRef"]["name"] for e in container["envFrom"]]
    (config,) = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref]
    return container, dict(config["data"])


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_image_runtime_serves_with_the_prod_settings(venv: Path, image_root: Path) -> None:
    """The pod, as far as it can be had without a container engine: the prod overlay's command
    and settings (two uvicorn workers, metrics in multiprocess mode, keys from mounted files), run
    as UID 10001 with nothing writable but the folders that are emptyDirs in the pod."""
    container, settings = prod_pod(tool("kubectl"))
    scratch = image_root / "pod"
    # The pod's volumes, re-rooted under scratch: emptyDirs and the secret mount.
    remap = {"/tmp": scratch / "tmp", "/var/run/nexpo/prometheus": scratch / "prometheus",
             "/etc/nexpo/secrets": scratch / "secrets", "/models": scratch / "models"}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == set(remap), "keep this test's volumes in step with the Deployment"
    for folder in remap.values():
        folder.mkdir(parents=True)
    # The model repository claim, holding the bundled model as a first version.
    (scratch / "models" / "digits" / "1").mkdir(parents=True)
    shutil.copyfile(ROOT / "api" / "models" / "digits.safetensors",
                    scratch / "models" / "digits" / "1" / "model.safetensors")
    api_key = "pod-test-key"
    example = next(
        doc for doc in yaml.safe_load_all((ROOT / "k8s" / "examples" / "secrets.example.yaml").read_text())
        if doc["metadata"]["name"] == "nexpo-transit-keys"
    )
    key = base64.b64encode(os.urandom(32)).decode()
    transit = example["stringData"]["transit-keys.json"].replace("REPLACE_ME_base64_of_32_random_bytes", key)
    (scratch / "secrets" / "api-keys").write_text(f"{api_key}\n")
    (scratch / "secrets" / "transit-keys.json").write_text(transit)
    # Stale files from a previous container: the command must clear them.
    (scratch / "prometheus" / "counter_4242.db").write_bytes(b"stale")
    if os.geteuid() == 0:
        for path in [scratch, *scratch.rglob("*")]:
            os.chown(path, 10001, 10001)
        (scratch / "secrets").chmod(0o550)

    env = clean_env() | {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": "/", "TMPDIR": str(scratch / "tmp"),
                         "PYTHONDONTWRITEBYTECODE": "1", "NEXPO_STATE_DIR": str(scratch / "tmp" / "nexpo")}
    for name, value in settings.items():
        env[name] = value
        for inside, outside in remap.items():
            if value == inside or value.startswith(inside + "/"):
                env[name] = str(outside) + value[len(inside):]
    port = free_port()
    env |= {"NEXPO_HOST": "127.0.0.1", "NEXPO_PORT": str(port)}
    assert int(env["NEXPO_WORKERS"]) > 1, "prod runs several workers: metrics go multiprocess"
    uid = 10001 if os.geteuid() == 0 else None  # a non-root developer is already not root

    def metrics_in_the_emptydir() -> None:
        files = list((scratch / "prometheus").glob("*.db"))
        assert files, "multiprocess metrics are written to PROMETHEUS_MULTIPROC_DIR"
        assert not (scratch / "prometheus" / "counter_4242.db").exists(), "stale files are cleared"
        if uid is not None:
            assert {f.stat().st_uid for f in files} == {uid}

    serve_and_probe(container["command"], env, port, api_key, cwd=Path("/"), as_uid=uid,
                    while_up=metrics_in_the_emptydir)
