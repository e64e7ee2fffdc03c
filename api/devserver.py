"""Run a real gateway server in a subprocess on a free loopback port (for tests and benchmarks).

with GatewayProcess(env={"NEXPO_WORKERS": "2"}) as server:
    httpx.get(server.url + "/readyz")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class GatewayProcess:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        command: Sequence[str] = ("-m", "nexpo.api"),  # "{port}" in an argument becomes the chosen port
        log_path: Path | None = None,
        ready_timeout_s: float = 90.0,
        port: int | None = None,  # default: a free one
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, "NEXPO_HOST": "127.0.0.1", "NEXPO_PORT": str(self.port), **(env or {})}
        self._command = [sys.executable, *(part.format(port=self.port) for part in command)]
        self._log_path = log_path
        self._ready_timeout = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GatewayProcess:
        log = open(self._log_path, "wb") if self._log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(self._command, env=self._env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode} before it was ready")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"gateway not ready within {self._ready_timeout} s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit code (SIGKILL after ``timeout``)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __exit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        self.stop()


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1 and a free port, nothing persisted (tests only).

    ``stop()`` and ``start()`` again keep the port, to take Redis away and bring it back."""

    def __init__(self, executable: str = "redis-server", ready_timeout_s: float = 10.0) -> None:
        self.executable = executable
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._ready_timeout = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        command = [
            self.executable, "--bind", "127.0.0.1", "--port", str(self.port),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # not the tests' sanitizers
        quiet = subprocess.DEVNULL
        self.process = subprocess.Popen(command, env=env, stdout=quiet, stderr=quiet)
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"redis-server exited with {code} (port {self.port} taken?)")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"redis-server not answering within {self._ready_timeout} s")

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        self.stop()
