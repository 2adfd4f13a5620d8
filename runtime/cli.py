"""``dexengine``: the project's own command.

  dexengine up     start what is missing (PostgreSQL, Redis, Ray with its
                   dashboard, the actors, the Serve API, the market) and run
                   until Ctrl-C or SIGTERM; --profile benchmark: the way the
                   ceiling is measured (latencies 0, every rate limit off)
  dexengine demo   the seed's demo client: 5 orders at once, each followed
                   on its WebSocket; against a running engine, or starting one
  dexengine servers stop
                   stop the PostgreSQL and Redis left running in the data dir
                   (``serve run configs/serve.yaml`` leaves them up)
  dexengine keys create --name NAME [--admin] | list | revoke NAME
                   API keys, in the engine's database (DATABASE_URL, else the
                   data dir's PostgreSQL); a new key is printed once
  dexengine audit  check the books in PostgreSQL and Redis (DATABASE_URL /
                   REDIS_URL, else the servers running in the data dir; it
                   starts none): a short report; exit 1 on any violation,
                   2 when the servers are not there
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from engine.audit import STALE_AFTER_S
from engine.settings import EngineSettings, LatencySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dexengine", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the engine and keep it running")
    up.add_argument("--no-market", action="store_true", help="keep pool prices still")
    up.add_argument("--zero-latency", action="store_true", help="no simulated delays")
    up.add_argument("--profile", choices=["default", "benchmark"], default="default",
                    help="benchmark: every simulated latency 0, the rate limit and the per-client limits off")
    demo = sub.add_parser("demo", help="run the seed's demo client")
    demo.add_argument("--url", default=None, help="engine API (default: start one)")
    demo.add_argument("--orders", type=int, default=5)
    servers = sub.add_parser("servers", help="the local PostgreSQL and Redis in the data dir")
    servers.add_argument("action", choices=["stop"])
    audit = sub.add_parser("audit", help="check the books; exit 1 on any violation")
    audit.add_argument(
        "--stale-after", type=float, default=STALE_AFTER_S, metavar="S",
        help=f"an unfinished order unchanged for longer is stalled (default {STALE_AFTER_S:g})",
    )  # fmt: skip
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    from runtime import keys

    keys.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "audit":
        return run_audit(args)
    if args.command == "keys":
        return keys.run_keys(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "up":
        return run_up(args)
    if args.command == "servers":
        return run_servers_stop()
    return run_demo(args)


def run_servers_stop() -> int:
    from localservers import stop

    data_dir = EngineSettings().data_dir
    stop(data_dir)
    print(f"stopped the servers running from {data_dir}")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    """The audit's report on stdout; 0 clean, 1 on a violation, 2 when the books cannot be read."""
    import psycopg
    import redis

    from engine.audit import report_lines
    from storage.audit import audit_books

    if args.stale_after < 0:
        print("dexengine audit: --stale-after must be >= 0", file=sys.stderr)
        return 2
    settings = EngineSettings()
    database_url, redis_url = _books_urls(settings)
    if database_url is None or redis_url is None:
        missing = " and ".join(name for name, url in (("PostgreSQL", database_url), ("Redis", redis_url)) if not url)
        print(f"dexengine audit: no {missing}: none is given (DATABASE_URL, REDIS_URL) nor running from"
              f" {settings.data_dir}; the audit starts none (dexengine up does)", file=sys.stderr)  # fmt: skip
        return 2
    try:
        report = asyncio.run(audit_books(database_url, redis_url, stale_after_s=args.stale_after))
    except (psycopg.Error, redis.RedisError) as exc:
        print(f"dexengine audit: cannot read the books: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json(), indent=2) if args.json else "\n".join(report_lines(report)), flush=True)
    return 0 if report.clean else 1


def _books_urls(settings: EngineSettings) -> tuple[str | None, str | None]:
    """The URLs given, else those of the servers running from the data dir (None: neither)."""
    if settings.database_url and settings.redis_url:
        return settings.database_url, settings.redis_url
    from localservers import running

    database_url, redis_url = running(settings.data_dir)
    return settings.database_url or database_url, settings.redis_url or redis_url


def _settings(args: argparse.Namespace) -> EngineSettings:
    settings = EngineSettings().with_profile(getattr(args, "profile", "default"))
    if getattr(args, "no_market", False):
        settings = settings.model_copy(update={"market": settings.market.model_copy(update={"enabled": False})})
    if getattr(args, "zero_latency", False):
        settings = settings.model_copy(update={"latency": LatencySettings.zero()})
    return settings


def run_up(args: argparse.Namespace, ready: threading.Event | None = None) -> int:
    from runtime.keys import ExposedWithoutKeys

    try:
        return _run_up(args, ready)
    except ExposedWithoutKeys as exc:
        print(f"dexengine up: {exc}", file=sys.stderr)
        return 2


def _run_up(args: argparse.Namespace, ready: threading.Event | None) -> int:
    from runtime.root import running_engine

    stop = threading.Event()

    def on_stop_signals() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

    on_stop_signals()
    started = time.perf_counter()
    with running_engine(_settings(args)) as engine:
        # Ray's core worker put its own SIGTERM handler over ours (it logs, then aborts the process,
        # mid-shutdown: exit -6, and the Ray we started was left for its agents to notice, 15 s). Ours again.
        on_stop_signals()
        _print_banner(engine.settings, time.perf_counter() - started)
        if getattr(args, "profile", "default") == "benchmark":
            print("profile benchmark: every simulated latency 0, the rate limit and the per-client limits off\n",
                  flush=True)  # fmt: skip
        if ready is not None:
            ready.set()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            print("stopping...", flush=True)
    return 0


def _print_banner(settings: EngineSettings, took_s: float) -> None:
    base = f"http://{settings.api.host}:{settings.api.port}"
    print(f"\nengine up in {took_s:.1f}s", flush=True)
    print(f"  API        {base}   (docs: {base}/docs)")
    if settings.api.console:
        print(f"  console    {base}/")
    print(f"  WebSocket  ws://{settings.api.host}:{settings.api.port}/api/orders/<id>/ws")
    if settings.ray.dashboard and not settings.ray_address:
        from runtime.ray_access import dashboard_access

        print(f"  dashboard  http://127.0.0.1:{settings.ray.dashboard_port}   ({dashboard_access()})")
    from runtime.ray_access import ray_metrics_url

    ray_metrics = ray_metrics_url(settings.ray.metrics_export_port, joined=bool(settings.ray_address))
    print(f"  metrics    {base}/metrics (API)" + (f"  ·  {ray_metrics} (Ray)" if ray_metrics else ""))
    print(f"  PostgreSQL {_redact(settings.database_url)}")
    print(f"  Redis      {_redact(settings.redis_url)}")
    print(f"  API keys   {_keys_line(settings)}")
    print("Ctrl-C stops everything.\n", flush=True)


def _keys_line(settings: EngineSettings) -> str:
    api = settings.api
    if api.auth == "off":
        return "off (api.auth: off): every caller may do everything"
    if api.auth == "on" or not api.on_loopback:
        return "required: dexengine keys create --name NAME [--admin] (./run keys ...)"
    return "not needed while none exists and the API listens on loopback; the first key makes them required"


def _redact(url: str | None) -> str:
    """The URL without its password."""
    if not url or "@" not in url:
        return str(url)
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def run_demo(args: argparse.Namespace) -> int:
    from runtime.demo import run_demo_client

    if args.url:
        return asyncio.run(run_demo_client(args.url, args.orders))
    settings = EngineSettings()
    url = f"http://{settings.api.host}:{settings.api.port}"
    if _healthy(url):
        return asyncio.run(run_demo_client(url, args.orders))
    print("no engine at", url, "- starting one (dexengine up)...", flush=True)
    engine = subprocess.Popen([sys.executable, "-m", "runtime.cli", "up"], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 240
        while not _healthy(url):
            if engine.poll() is not None or time.monotonic() > deadline:
                print("the engine did not come up", file=sys.stderr)
                return 1
            time.sleep(1)
        return asyncio.run(run_demo_client(url, args.orders))
    finally:
        engine.send_signal(signal.SIGINT)  # as Ctrl-C would
        try:
            engine.wait(60)
        except subprocess.TimeoutExpired:
            engine.kill()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
