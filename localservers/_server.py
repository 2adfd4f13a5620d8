"""What both servers share: the reuse-or-start lifecycle, state file and lock in ``data_dir``, PID probes."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from localservers.ports import free_port

log = logging.getLogger("localservers")

HOST = "127.0.0.1"
Owner = tuple[int, int]  # (uid, gid)


class LocalServerError(RuntimeError):
    """A local server could not be started or stopped."""


def wheel_dir(package: str) -> Path:
    """Where ``package`` is installed, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError(f"the {package} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def pid_alive(pid: int, name: str | None = None) -> bool:
    """True while ``pid`` is a live process (a zombie counts as dead), running ``name`` if given (the PID
    in a stale pid file may belong to another program)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X") and (name is None or name.encode() in program)


def wait_until(check: Callable[[], bool], timeout: float, *, pid: int | None = None) -> bool:
    """Poll ``check`` until it holds (True), or ``timeout`` passes or process ``pid`` exits (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline or (pid is not None and not pid_alive(pid)):
            return False
        time.sleep(0.05)
    return True


def write_private(path: Path, text: str, owner: Owner | None = None) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner only (it may hold a password)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        fh.write(text)
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # flock belongs to the open file, so this serialises this process's threads as well as other processes
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# the servers this process started, to stop when it exits (strong references on purpose)
_stop_at_exit: set[LocalServer] = set()
_OWNER_PID = os.getpid()


@atexit.register
def _stop_started_servers() -> None:
    if os.getpid() != _OWNER_PID:
        return  # a forked child must not stop its parent's servers
    for server in list(_stop_at_exit):
        with contextlib.suppress(Exception):
            server.stop()


class LocalServer:
    """A server run from ``data_dir``: reused when already running there, else started.

    Each kind defines ``url_for``; ``_find_running``: the port of a healthy server already running
    (setting ``pid``) or None; ``_launch`` on a port (as our child in ``_child``, or a daemon if
    ``detached``) until it answers (setting ``pid``); ``_shutdown``: stop it, whoever started it.
    """

    kind = "server"
    start_timeout = 60.0
    # how a child of ours is asked to stop, in turn, each with how long it may take; then SIGKILL
    stop_signals: tuple[tuple[int, float], ...] = ((signal.SIGTERM, 30.0),)

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.log_path = self.data_dir / f"{self.kind}.log"
        self.port: int | None = None  # kept after stop(): restart() comes back on it
        self.pid: int | None = None
        self.url: str | None = None
        self.reused = False  # whether start() found it running
        self.detached = False  # whether start() daemonized it (kept by restart())
        self._child: subprocess.Popen[bytes] | None = None  # the server, when it is our child

    @property
    def running(self) -> bool:
        if self._child is not None:
            self._child.poll()  # reaps it if it exited
        return self.pid is not None and pid_alive(self.pid)

    def start(self, *, detached: bool = False) -> str:
        """Reuse the server running from ``data_dir``, or start one (a child dying with this process,
        or a daemon outliving it if ``detached``); its URL. Idempotent."""
        if self.url is not None and self.running:
            return self.url
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.data_dir / ".lock"):
            self.port = self._find_running()
            self.reused = self.port is not None
            if self.port is None:
                self._end_child()  # reap the one we started before, stopped since
                self.detached = detached
                self.port = self._launch_on_a_free_port()
            self._after_start()
        self.url = self.url_for()
        if not self.reused:
            _stop_at_exit.add(self)
        how, took = "reused" if self.reused else "started", time.monotonic() - began
        log.info("%s %s on %s:%s in %.2fs (pid %s)", self.kind, how, HOST, self.port, took, self.pid)
        return self.url

    def stop(self) -> None:
        """Stop the server running from ``data_dir``, whoever started it. Idempotent."""
        if self.data_dir.exists():
            with _file_lock(self.data_dir / ".lock"):
                self._shutdown()
        self._end_child()  # reap it; or, its data dir deleted under it, stop it by signals
        self.pid = self.url = None
        _stop_at_exit.discard(self)

    def detach(self) -> None:
        """Do not stop the server when this process exits (it outlives it only if started ``detached``)."""
        _stop_at_exit.discard(self)

    def restart(self, downtime_s: float = 0.0) -> str:
        """Stop, stay down ``downtime_s`` seconds, start again on the same port and data, the same way."""
        self.stop()
        time.sleep(downtime_s)
        return self.start(detached=self.detached)

    def _error(self, message: str) -> LocalServerError:
        try:
            log_tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            log_tail = "(no log)"
        return LocalServerError(f"{message}:\n{log_tail}")

    def _end_child(self) -> None:
        """Stop the server we forked if it still runs, and reap it."""
        child, self._child = self._child, None
        if child is not None:
            self._kill(child.pid, lambda: child.poll() is None)

    def _kill(self, pid: int, alive: Callable[[], bool]) -> None:
        """Send ``pid`` the stop signals in turn, each with its time to take effect, then SIGKILL."""
        for sig, wait_s in (*self.stop_signals, (signal.SIGKILL, 10.0)):
            if not alive():
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            wait_until(lambda: not alive(), wait_s)
        if alive():
            raise LocalServerError(f"{self.kind} (pid {pid}) did not exit")

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads((self.data_dir / "server.json").read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _save_state(self, **values: Any) -> None:
        write_private(self.data_dir / "server.json", json.dumps({**self._state(), **values}))

    def _password(self) -> str:
        password = self._state().get("password")
        if not isinstance(password, str) or not password:
            password = secrets.token_urlsafe(18)
            self._save_state(password=password)
        return password

    def _launch_on_a_free_port(self) -> int:
        previous = self._state().get("port")  # so that URLs stay the same across restarts
        port = free_port(previous if isinstance(previous, int) else None)
        for attempt in (1, 2, 3):
            try:
                self._launch(port)
                break
            except LocalServerError:
                # someone may have taken the port between our probe and the server's bind
                if attempt == 3 or free_port(port) == port:
                    raise
                log.warning("%s: port %s was taken; trying another", self.kind, port)
                port = free_port()
        self._save_state(port=port)
        return port

    def _after_start(self) -> None:
        pass
