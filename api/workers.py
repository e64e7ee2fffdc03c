"""The life of uvicorn worker processes when several serve (``NEXPO_WORKERS`` > 1).

uvicorn's supervisor forks the workers and restarts dead ones, but a worker never learns that the
supervisor died: after a ``kill -9`` of the parent the workers kept serving (and kept the port
bound) for minutes. Here:

- the supervisor exports its pid (``NEXPO_SUPERVISOR_PID``) and, for prometheus-client's
  multiprocess mode, a metrics directory it owns (named after its pid, so a later start can
  remove the directory of a supervisor that was killed);
- each worker asks Linux for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``) and runs a
  watchdog thread that notices a changed parent pid anyway (other systems, or a death that raced
  the ``prctl``). SIGTERM starts uvicorn's graceful shutdown; the watchdog ends the process after
  ``ORPHAN_GRACE_S`` if the drain has not finished, so a worker is gone within about 4 s;
- the watchdog also flushes the worker's metrics every ``FLUSH_EVERY_S`` (the native counters of
  workers not serving a scrape reach the shared files), and a worker drops its live gauges when
  it stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger("api")

SUPERVISOR_ENV = "NEXPO_SUPERVISOR_PID"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_PREFIX = "nexpo-metrics-"
RUNTIME_DIR_ENV = "NEXPO_RUNTIME_DIR"  # read by api/repository/decisions.py
RUNTIME_DIR_PREFIX = "nexpo-run-"
POLL_S = 0.25
ORPHAN_GRACE_S = 3.0
FLUSH_EVERY_S = 1.0
PORT_WAIT_S = ORPHAN_GRACE_S + 2.0  # the longest an orphaned worker keeps the port
_PR_SET_PDEATHSIG = 1

_watchdog: threading.Thread | None = None


def _pid_exists(pid: int) -> bool:
    """Whether ``pid`` is a live process: a zombie (killed, not yet reaped) is not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: state is the field after the parenthesised command name
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


# -- the supervisor ----------------------------------------------------------------------------


def remove_stale_metrics_dirs(base: Path | None = None, prefix: str = METRICS_DIR_PREFIX) -> list[Path]:
    """Remove this user's ``<prefix><pid>-*`` directories whose supervisor is gone."""
    base = base or Path(tempfile.gettempdir())
    removed: list[Path] = []
    for directory in base.glob(f"{prefix}*-*"):
        pid = directory.name.removeprefix(prefix).partition("-")[0]
        try:
            owned = directory.lstat().st_uid == os.getuid() and directory.is_dir()
        except OSError:
            continue
        if owned and pid.isdigit() and not _pid_exists(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def prepare_supervisor(workers: int) -> Path | None:
    """Environment for the workers the caller is about to start; returns the metrics directory
    created here (the caller removes it when the server stops), or None."""
    given = os.environ.get(METRICS_DIR_ENV)
    if given:  # prometheus-client's rule: start from an empty directory
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
    if workers <= 1:  # uvicorn serves in this process: nothing to watch
        os.environ.pop(SUPERVISOR_ENV, None)
        return None
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    if given:
        return None
    remove_stale_metrics_dirs()
    own = Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))
    os.environ[METRICS_DIR_ENV] = str(own)
    return own


def prepare_runtime_dir(workers: int) -> Path | None:
    """With several workers, a private directory (0700) for what they share besides metrics (the
    repository's load/unload decisions, api/repository/decisions.py), exported to them; the caller
    removes it when the server stops. None with one worker: nothing to share."""
    if workers <= 1:
        os.environ.pop(RUNTIME_DIR_ENV, None)
        return None
    remove_stale_metrics_dirs(prefix=RUNTIME_DIR_PREFIX)
    own = Path(tempfile.mkdtemp(prefix=f"{RUNTIME_DIR_PREFIX}{os.getpid()}-"))
    os.environ[RUNTIME_DIR_ENV] = str(own)
    return own


def wait_until_bindable(host: str, port: int, timeout_s: float = PORT_WAIT_S) -> bool:
    """Wait (bounded) until ``host:port`` can be bound: right after a ``kill -9`` of a supervisor,
    its workers hold the listening socket for up to ``ORPHAN_GRACE_S`` more. False when it stays
    taken (uvicorn then reports "address already in use" as usual)."""
    if port == 0:
        return True
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout_s
    logged = False
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind((host, port))
                return True
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                    return False
        if not logged:
            log.warning(
                "port %d is in use; waiting up to %.0f s for it (a previous server stopping?)",
                port,
                timeout_s,
            )
            logged = True
        time.sleep(0.1)


# -- a worker ----------------------------------------------------------------------------------


def _ask_for_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def retire() -> None:
    """Drop this worker's live gauges from the shared metrics (its counters stay in the sums)."""
    if os.environ.get(METRICS_DIR_ENV):
        from nexpo.metrics import mark_process_dead

        with contextlib.suppress(OSError):
            mark_process_dead(os.getpid())


def _flush_metrics() -> None:
    from nexpo.metrics import flush

    try:
        flush()
    except Exception as exc:  # metrics must never take a worker down
        log.debug("metrics flush failed: %s", exc)


def _watch(supervisor: int, flush_metrics: bool) -> None:
    next_flush = time.monotonic()
    while os.getppid() == supervisor:
        if flush_metrics and time.monotonic() >= next_flush:
            _flush_metrics()
            next_flush = time.monotonic() + FLUSH_EVERY_S
        time.sleep(POLL_S)
    log.warning("the supervisor (pid %d) is gone: worker %d stops", supervisor, os.getpid())
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown, if PDEATHSIG did not
    time.sleep(ORPHAN_GRACE_S)
    log.error("worker %d still draining %.0f s after the supervisor died: exit", os.getpid(), ORPHAN_GRACE_S)
    retire()
    os._exit(1)


def watch_supervisor() -> bool:
    """In a worker started by ``prepare_supervisor``'s process, start the watchdog (once).

    Returns whether this process is such a worker. A process that is the supervisor itself
    (one worker: uvicorn serves in-process) or was started some other way does nothing."""
    global _watchdog
    value = os.environ.get(SUPERVISOR_ENV, "")
    if not value.isdigit() or int(value) == os.getpid():
        return False
    if _watchdog is not None:
        return True
    supervisor = int(value)
    if os.getppid() != supervisor and _pid_exists(supervisor):
        # a grandchild (a subprocess of a worker): not ours to watch. A supervisor killed while
        # this worker was still importing is a zombie until reaped: dead, so we watch (and stop).
        return False
    _ask_for_parent_death_signal()  # then check: the parent may have died before the prctl
    flush_metrics = bool(os.environ.get(METRICS_DIR_ENV))
    _watchdog = threading.Thread(
        target=_watch, args=(supervisor, flush_metrics), name="nexpo-supervisor-watch", daemon=True
    )
    _watchdog.start()
    return True
