"""Process, port, lock and file helpers shared by the local servers (Linux/macOS)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("storage.local")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    # state is the field after the parenthesised command name
    return stat_line.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def wait_pid_exit(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Wait until ``pid`` is gone; reaps it when it is our child. True if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return True
        elif not pid_alive(pid):
            return True
        time.sleep(0.01)
    return False


def terminate(
    pid: int,
    proc: subprocess.Popen[bytes] | None,
    *,
    first_signal: signal.Signals,
    timeout: float,
    second_signal: signal.Signals | None = None,
) -> None:
    """Signal ``pid`` and escalate (second signal, then SIGKILL) until it exits."""
    steps: list[signal.Signals] = [first_signal]
    if second_signal is not None:
        steps.append(second_signal)
    steps.append(signal.SIGKILL)
    for index, sig in enumerate(steps):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if wait_pid_exit(pid, proc, timeout if index == 0 else 5.0):
            break
        log.warning("pid %s did not exit after %s; escalating", pid, sig.name)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)


_PR_SET_PDEATHSIG = 1


def parent_death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to send ``sig`` when we die (Linux only).

    Only safe from the main thread: the kernel fires it when the *thread* that
    forked exits, so from any other thread this returns None.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not Path("/proc/self").exists():
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)

    def _set() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return _set


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (flock) on ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` readable by the owner only (it may hold a password)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def write_private_text(path: Path, text: str, *, owner: tuple[int, int] | None = None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    if owner is not None:
        os.chown(path, *owner)


def ensure_traversable(path: Path, uid: int, gid: int) -> None:
    """Let ``uid`` reach ``path``: add the search (x) bit to ancestors that lack it.

    Only the minimum is changed (o+x, never read), and only where needed.
    """
    for ancestor in [path, *path.parents]:
        st = ancestor.stat()
        if st.st_uid == uid:
            needed = stat.S_IXUSR
        elif st.st_gid == gid:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not st.st_mode & needed:
            log.info("adding o+x to %s so uid %s can reach its data", ancestor, uid)
            os.chmod(ancestor, stat.S_IMODE(st.st_mode) | stat.S_IXOTH | (needed & stat.S_IXGRP))


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
