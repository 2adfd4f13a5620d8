"""Servers run as children of this process, which the kernel signals when this process dies.

Each child starts in a session of its own (a Ctrl-C to our terminal does not reach it: we stop it
ourselves) with Linux's parent-death signal, set by ``prctl(PR_SET_PDEATHSIG)`` in the child between
fork and exec: however this process ends (exit, SIGKILL, a crash), the server gets that signal. Two
kernel rules shape this:

* the "parent" is the thread that forked, not the process: a child forked from a thread is signalled
  when that thread ends (a ``ThreadPoolExecutor`` worker, ``asyncio.to_thread``, a fault injector's
  thread). So we fork from the main thread, and from any other thread hand the fork to a helper
  thread that lives as long as the process;
* a change of user clears the setting (set, then ``setuid`` to another user, and it reads back 0), so
  it is set in ``preexec_fn``, which ``subprocess`` runs after the ``setgid``/``setuid`` of ``user=``.

Elsewhere than Linux there is no such signal: only the exit hook stops them.
"""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def spawn(args: list[str], death_signal: int, **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, **popen)`` in a new session; it gets ``death_signal`` when this process dies."""
    popen |= {"start_new_session": True, "preexec_fn": _dying_with(os.getpid(), death_signal)}
    launch = functools.partial(subprocess.Popen, args, **popen)
    if threading.current_thread() is threading.main_thread():
        return launch()
    done: Future[subprocess.Popen[bytes]] = Future()
    _forker_jobs().put((launch, done))
    return done.result()


def _dying_with(parent: int, death_signal: int) -> Callable[[], None] | None:
    if _libc is None:
        return None
    # made before the fork: the child does as little as it can between fork and exec
    prctl = _libc.prctl
    args = (_PR_SET_PDEATHSIG, *(ctypes.c_ulong(value) for value in (death_signal, 0, 0, 0)))

    def set_parent_death_signal() -> None:  # in the child, after setuid, before exec
        if prctl(*args) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl: no signal would come
            os._exit(1)

    return set_parent_death_signal


_Jobs = queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]
_forker: tuple[int, _Jobs] | None = None  # (pid, jobs) of the fork thread
_forker_lock = threading.Lock()


def _forker_jobs() -> _Jobs:
    """The queue of a thread as long-lived as the process, which forks on behalf of other threads."""
    global _forker
    with _forker_lock:
        if _forker is None or _forker[0] != os.getpid():  # a forked child lacks the thread
            _forker = (os.getpid(), queue.SimpleQueue())
            # a daemon thread is never joined: it ends with the process (at exit_group), after the exit hooks
            threading.Thread(target=_serve, args=_forker[1:], name="localservers-fork", daemon=True).start()
        return _forker[1]


def _serve(jobs: _Jobs) -> None:
    while True:
        job, done = jobs.get()
        try:
            done.set_result(job())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            done.set_exception(exc)
