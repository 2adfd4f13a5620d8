"""Real PostgreSQL and Redis servers from pip wheels, for when no URL is given.

:func:`local_servers` starts the missing servers as children of this process, stopped at its exit
and, should it die without running its exit code (SIGKILL, a crash), signalled by the kernel (see
``localservers._child``). :func:`ensure_running` daemonizes them instead, to run on after this
process exits (for ``serve run``, whose app builder returns) until :func:`stop`. Both reuse servers
already running from ``data_dir`` (found by pid file, then probed) and never stop a server they
reused: one reused from a ``local_servers`` of another process still dies with that process. The
servers listen on 127.0.0.1, on their previous port while it is free, with a random password kept
in ``<data_dir>/<server>/server.json`` (mode 0600).

This package imports no other package of the project: it is infrastructure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localservers._server import LocalServerError, pid_alive
from localservers.postgres import LocalPostgres
from localservers.redis import LocalRedis

__all__ = [
    "LocalPostgres", "LocalRedis", "LocalServerError", "LocalServers",
    "ensure_running", "local_servers", "pid_alive", "running", "stop",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LocalServers:
    """The two URLs (unpack as ``db_url, redis_url = servers``) and the servers run from ``data_dir``."""

    database_url: str
    redis_url: str
    postgres: LocalPostgres | None = None  # None when the URL was given
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
    """The servers whose URL is missing, run from ``data_dir``; those started here are stopped on exit,
    and die with this process however it ends."""
    servers = _start(Path(data_dir), database_url, redis_url, durable, detached=False)
    try:
        yield servers
    finally:
        for server in (servers.redis, servers.postgres):
            if server is not None and not server.reused:
                server.stop()


def ensure_running(
    data_dir: Path | str,
    database_url: str | None = None,
    redis_url: str | None = None,
    *,
    durable: bool = True,
) -> tuple[str, str]:
    """(database_url, redis_url): the servers whose URL is missing, left running when this process exits."""
    servers = _start(Path(data_dir), database_url, redis_url, durable, detached=True)
    for server in (servers.postgres, servers.redis):
        if server is not None:
            server.detach()
    return servers.database_url, servers.redis_url


def running(data_dir: Path | str) -> tuple[str | None, str | None]:
    """(database_url, redis_url) of the servers running from ``data_dir``, None for one that is not; starts
    nothing."""
    postgres, redis_server = LocalPostgres(Path(data_dir) / "postgres"), LocalRedis(Path(data_dir) / "redis")
    return _running_url(postgres), _running_url(redis_server)


def _running_url(server: LocalPostgres | LocalRedis) -> str | None:
    server.port = server._find_running()  # sets its pid when it is running
    return None if server.port is None else server.url_for()


def stop(data_dir: Path | str) -> None:
    """Stop the servers running from ``data_dir``, whoever started them."""
    try:
        LocalRedis(Path(data_dir) / "redis").stop()
    finally:
        LocalPostgres(Path(data_dir) / "postgres").stop()


def _start(
    root: Path, database_url: str | None, redis_url: str | None, durable: bool, *, detached: bool
) -> LocalServers:
    # should Redis fail to start, a PostgreSQL started here is stopped when this process exits
    postgres = LocalPostgres(root / "postgres", durable=durable) if database_url is None else None
    redis_server = LocalRedis(root / "redis") if redis_url is None else None
    database_url = postgres.start(detached=detached) if postgres is not None else database_url
    redis_url = redis_server.start(detached=detached) if redis_server is not None else redis_url
    assert database_url is not None and redis_url is not None
    return LocalServers(database_url, redis_url, postgres, redis_server)
