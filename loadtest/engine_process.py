"""Start ``dexengine up`` as a child process for a load run, and stop it cleanly.

The engine gets a world of its own so it never touches a developer's engine:

* a fresh data dir (``DEXENGINE_DATA_DIR``: its own PostgreSQL and Redis),
* a free API port on 127.0.0.1 (``DEXENGINE_API__PORT``),
* no dashboard (``DEXENGINE_RAY__DASHBOARD=false``), and Ray's metrics export on
  a port Ray picks (``DEXENGINE_RAY__METRICS_EXPORT_PORT=0``),
* its own Ray temp dir (``RAY_TMPDIR``), so ``ray.init()`` cannot find and
  join a cluster someone started with ``ray start`` (it looks for
  ``<tmp>/ray/ray_current_cluster``), and ``RAY_ADDRESS`` is dropped,
* its own Ray namespace.

Settings go in as ``DEXENGINE_*`` environment variables (nested keys with
``__``), over ``configs/engine.yaml``. :data:`PROFILES` names the usual sets.

Stopping sends SIGTERM to the engine (it shuts Serve, the actors and Ray
down, then its PostgreSQL and Redis) and waits; only if it does not exit in
time are the processes it started killed, by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx

from localservers.ports import free_port

ROOT = Path(__file__).resolve().parent.parent

ZERO_LATENCY = {
    "LATENCY__QUOTE_S": "0",
    "LATENCY__QUOTE_JITTER_S": "0",
    "LATENCY__EXECUTION_MIN_S": "0",
    "LATENCY__EXECUTION_MAX_S": "0",
}

# The API's per-client limits (order submissions and reads per client and
# minute, open WebSockets per client) off: a benchmark's one process stands
# for many clients. Harmless on an engine without these settings.
NO_CLIENT_LIMITS = {
    "API__ORDER_LIMIT_PER_MINUTE": "0",
    "API__READ_LIMIT_PER_MINUTE": "0",
    "API__WS_MAX_PER_CLIENT": "0",
}

#: Named engine settings (keys are DEXENGINE_* without the prefix).
PROFILES: dict[str, dict[str, str]] = {
    # configs/engine.yaml as it is: 10 executors, 100 orders/min, ~200 ms
    # quotes, 2-3 s execution, the market moving.
    "seed": {},
    # the seed's shape, ten times faster (what the e2e tests use)
    "fast": {
        "LATENCY__QUOTE_S": "0.02",
        "LATENCY__QUOTE_JITTER_S": "0.01",
        "LATENCY__EXECUTION_MIN_S": "0.2",
        "LATENCY__EXECUTION_MAX_S": "0.3",
        "DISPATCH__RATE_LIMIT_PER_MINUTE": "0",
    },
    # the engine's own ceiling: no simulated delay, no rate limit, no market,
    # no per-client API limits
    "zero": {**ZERO_LATENCY, "DISPATCH__RATE_LIMIT_PER_MINUTE": "0", "MARKET__ENABLED": "false", **NO_CLIENT_LIMITS},
}


def untraced(env: dict[str, str]) -> dict[str, str]:
    """``env`` without coverage's hooks: a coverage run (./run test) would otherwise trace
    every process a load run starts, and a load run measures speed, not coverage."""
    for key in ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"):
        env.pop(key, None)
    return env


def spawn_engine(env: dict[str, str], out: IO[bytes] | int) -> subprocess.Popen[bytes]:
    """The one place a load run brings an engine up: ``dexengine up`` as a child, which
    starts its PostgreSQL and Redis, the schema, Ray, the actors and Serve."""
    return subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "up"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # our Ctrl-C reaches it only through stop()
    )


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


class EngineProcess:
    """One ``dexengine up`` child with its own data dir, port, Ray temp dir and namespace."""

    def __init__(
        self,
        settings: Mapping[str, str] | None = None,
        *,
        log_path: Path | None = None,
        keep_data: bool = False,
        name: str = "loadtest",
    ) -> None:
        self.settings = {k.upper(): str(v) for k, v in (settings or {}).items()}
        self.log_path = log_path
        self.keep_data = keep_data
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None  # the engine's, once stopped: 0 when it shut down cleanly
        # short paths: Ray's Unix sockets live under RAY_TMPDIR (108-byte limit)
        self.root = Path(tempfile.mkdtemp(prefix="dxlt-"))
        self.data_dir = self.root / "data"
        self.ray_tmp = self.root / "r"
        self.ray_tmp.mkdir()
        # PostgreSQL runs as an unprivileged user when we are root: it must reach its data dir
        os.chmod(self.root, 0o755)
        self._log = None
        self.started_s: float | None = None

    # ------------------------------------------------------------------ environment
    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEXENGINE_")}
        for key in ("RAY_ADDRESS", "DATABASE_URL", "REDIS_URL", "DEXENGINE_CONFIG"):
            env.pop(key, None)
        env.update(
            {
                "DEXENGINE_DATA_DIR": str(self.data_dir),
                "DEXENGINE_API__HOST": "127.0.0.1",
                "DEXENGINE_API__PORT": str(self.port),
                "DEXENGINE_RAY__DASHBOARD": "false",
                "DEXENGINE_RAY__METRICS_EXPORT_PORT": "0",  # Ray picks a free one: never a developer's 8266
                "DEXENGINE_RAY__NAMESPACE": f"dexengine-{self.name}",
                "RAY_TMPDIR": str(self.ray_tmp),
                "PYTHONUNBUFFERED": "1",
            }
        )
        untraced(env)
        for key, value in self.settings.items():
            if key in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS"):
                env[key] = value
            else:
                env[f"DEXENGINE_{key}"] = value
        return env

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float = 240.0) -> str:
        """Start the engine and wait for ``/health``; returns the API's base URL."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 — closed in stop()
            out = self._log
        else:
            out = subprocess.DEVNULL
        began = time.monotonic()
        self.proc = spawn_engine(self.environment(), out)
        try:
            while not healthy(self.url):
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the engine exited with {self.proc.returncode} before it was healthy"
                        + (f"; see {self.log_path}" if self.log_path else "")
                    )
                if time.monotonic() - began > timeout_s:
                    raise RuntimeError(f"the engine was not healthy within {timeout_s:.0f}s")
                time.sleep(0.5)
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - began
        return self.url

    def pids(self) -> list[int]:
        """The engine and every process it started (Ray, Serve, actors, PostgreSQL, Redis)."""
        return [p.pid for p in self.processes()]

    def processes(self) -> list:
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return []
        found: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(self.proc.pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.NoSuchProcess:
            return []
        # Ray daemons that re-parent themselves still name our private temp dir
        marker = str(self.root)
        for p in psutil.process_iter(["pid", "cmdline"]):
            if p.pid in found:
                continue
            try:
                if any(marker in part for part in (p.info["cmdline"] or [])):
                    found[p.pid] = p
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return list(found.values())

    def stop(self, timeout_s: float = 90.0) -> None:
        """SIGTERM, wait; then kill what is left of what it started, by PID."""
        proc = self.proc
        leftovers: list = []
        if proc is not None and proc.poll() is None:
            leftovers = self.processes()
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        if proc is not None:
            self.exit_code = proc.returncode
        self._reap(leftovers)
        if self._log is not None:
            self._log.close()
            self._log = None
        if not self.keep_data:
            shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _reap(processes: list) -> None:
        """Kill the engine's own children that outlived it (normally none)."""
        import psutil

        alive = []
        for p in processes:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                continue
        if not alive:
            return
        _, alive = psutil.wait_procs(alive, timeout=10)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.terminate()
        _, alive = psutil.wait_procs(alive, timeout=5)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()

    def __enter__(self) -> EngineProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
