"""Headless Locust scenarios, one command each.

    python -m loadtest.run smoke                      # 4 users, 45 s, the seed engine
    python -m loadtest.run saturation                 # step load on the zero-latency engine
    python -m loadtest.run soak --duration 30m        # steady load, seed engine
    python -m loadtest.run smoke --url http://127.0.0.1:8000   # against a running engine
    python -m loadtest.run smoke -- --too-large-pct 20          # after --: Locust options

Without ``--url`` the engine is started for the run (``dexengine up`` as a
child process with its own data dir, a free port on 127.0.0.1, no dashboard;
see :mod:`loadtest.engine_process`) and stopped at the end. ``--profile``
picks its settings (``seed``: configs/engine.yaml as it is; ``fast``: the
seed's latencies / 10 and no rate limit; ``zero``: no delays, no rate limit,
no market) and ``--set KEY=VALUE`` overrides any ``DEXENGINE_KEY``.

Every run writes ``loadtest/results/<scenario>-<timestamp>/`` (or ``--out``):
Locust's CSVs (``locust_stats.csv``, ``locust_stats_history.csv``,
``locust_failures.csv``, ``locust_exceptions.csv``), its HTML report
(``report.html``), its log, the engine's log and ``summary.json``. The exit
code is Locust's (1 when any request or order failed), 2 when the engine
did not come up.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.engine_process import PROFILES, EngineProcess, healthy, untraced

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LOCUSTFILE = HERE / "locustfile.py"


@dataclass
class Scenario:
    name: str
    users: int
    duration_s: float
    profile: str
    spawn_rate: float | None = None
    stop_timeout_s: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""


SCENARIOS: dict[str, Scenario] = {
    "smoke": Scenario(
        "smoke", users=4, duration_s=45, profile="seed", stop_timeout_s=30,
        description="a few traders and a reader on the seed engine: everything answers, orders end as expected",
    ),
    "saturation": Scenario(
        "saturation", users=40, duration_s=180, profile="zero", stop_timeout_s=20,
        env={"LOADTEST_SHAPE": "step", "LOADTEST_STEP_USERS": "5", "LOADTEST_STEP_S": "20",
             "LOADTEST_TRADER_WAIT": "0,0.2", "LOADTEST_READER_WAIT": "0,0.2"},
        description="5 more users every 20 s (up to --users) without think time, on the zero-latency "
        "engine without a rate limit: where throughput stops growing and latency starts to",
    ),
    "soak": Scenario(
        "soak", users=8, duration_s=600, profile="seed", stop_timeout_s=60,
        description="steady load on the seed engine for a long time: nothing leaks, nothing gets stuck",
    ),
}  # fmt: skip


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``3m``, ``1h30m`` -> seconds."""
    text = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 45s, 3m, 1h)")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def parse_set(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--set {item!r}: expected KEY=VALUE")
        key = key.strip().upper()
        out[key.removeprefix("DEXENGINE_")] = value
    return out


def read_stats(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def summarize(out: Path) -> dict[str, Any]:
    """The figures of a finished run, from Locust's CSVs."""
    rows = read_stats(out / "locust_stats.csv")
    failures = read_stats(out / "locust_failures.csv")
    entries = []
    for row in rows:
        entries.append(
            {
                "type": row.get("Type", ""),
                "name": row.get("Name", ""),
                "count": int(row.get("Request Count") or 0),
                "failures": int(row.get("Failure Count") or 0),
                "p50_ms": _num(row.get("50%")),
                "p95_ms": _num(row.get("95%")),
                "p99_ms": _num(row.get("99%")),
                "max_ms": _num(row.get("Max Response Time")),
                "rps": _num(row.get("Requests/s")),
            }
        )
    return {
        "entries": entries,
        "failures": [
            {"type": f.get("Method", ""), "name": f.get("Name", ""), "error": f.get("Error", ""),
             "count": int(f.get("Occurrences") or 0)}
            for f in failures
        ],
    }  # fmt: skip


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def print_summary(summary: dict[str, Any]) -> None:
    print(f"\n{'type':<7} {'name':<42} {'count':>7} {'fail':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>7}")
    for e in summary["entries"]:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.1f}"

        print(f"{e['type']:<7} {e['name'][:42]:<42} {e['count']:>7} {e['failures']:>5} {f(e['p50_ms']):>8} "
              f"{f(e['p95_ms']):>8} {f(e['p99_ms']):>8} {f(e['rps']):>7}")  # fmt: skip
    for fail in summary["failures"]:
        print(f"FAILURE x{fail['count']}: {fail['type']} {fail['name']}: {fail['error'][:200]}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--url", help="an engine already running (default: start one for the run)")
    parser.add_argument("--duration", type=parse_duration, help="load time, e.g. 45s, 3m (default per scenario)")
    parser.add_argument("--users", type=int, help="users (saturation: the most users the steps reach)")
    parser.add_argument("--spawn-rate", type=float, help="users started per second (default: all at once)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="engine settings (default per scenario)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="engine setting DEXENGINE_KEY=VALUE (repeatable), e.g. --set DISPATCH__EXECUTORS=20")
    parser.add_argument("--out", type=Path, help="results folder (default loadtest/results/<scenario>-<ts>)")
    parser.add_argument("--stop-timeout", type=float, help="seconds users get to finish their order at the end")
    parser.add_argument("--keep-engine-data", action="store_true", help="keep the engine's data dir")
    args = parser.parse_args(argv)

    scenario = SCENARIOS[args.scenario]
    duration = args.duration or scenario.duration_s
    users = args.users or scenario.users
    if duration <= 0 or users <= 0:
        parser.error("--duration and --users must be positive")
    spawn_rate = args.spawn_rate or scenario.spawn_rate or float(users)
    stop_timeout = scenario.stop_timeout_s if args.stop_timeout is None else args.stop_timeout
    profile = args.profile or scenario.profile
    settings = {**PROFILES[profile], **parse_set(args.set)}
    out = args.out or RESULTS / f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)

    # our SIGTERM must still stop the engine: turn it into an exception
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    engine: EngineProcess | None = None
    url = args.url.rstrip("/") if args.url else None
    began = time.time()
    meta: dict[str, Any] = {
        "scenario": scenario.name, "description": scenario.description, "users": users,
        "durationS": duration, "spawnRate": spawn_rate, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip
    code = 0
    try:
        if url is None:
            engine = EngineProcess(settings, log_path=out / "engine.log", keep_data=args.keep_engine_data,
                                   name=f"lt-{scenario.name}")  # fmt: skip
            print(f"starting the engine (profile {profile}{', ' + str(parse_set(args.set)) if args.set else ''}) "
                  f"on {engine.url} ...", flush=True)  # fmt: skip
            try:
                url = engine.start()
            except RuntimeError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"engine up in {engine.started_s:.1f}s", flush=True)
            meta.update({"engine": "started", "profile": profile, "settings": settings})
        else:
            if not healthy(url):
                print(f"error: no healthy engine at {url}", file=sys.stderr)
                return 2
            meta.update({"engine": url})
        code = run_locust(url, out, scenario, users, duration, spawn_rate, stop_timeout, extra)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    finally:
        if engine is not None:
            print("stopping the engine ...", flush=True)
            stopping = time.monotonic()
            engine.stop()
            meta.update({"engineExitCode": engine.exit_code, "engineStopS": round(time.monotonic() - stopping, 1)})
    meta["elapsedS"] = round(time.time() - began, 1)
    meta["locustExitCode"] = code
    summary = summarize(out)
    (out / "summary.json").write_text(json.dumps({**meta, **summary}, indent=2))
    print_summary(summary)
    print(f"\nresults: {out}  (report.html, locust_stats.csv, ...)")
    return code


def run_locust(
    url: str,
    out: Path,
    scenario: Scenario,
    users: int,
    duration: float,
    spawn_rate: float,
    stop_timeout: float,
    extra: list[str],
) -> int:
    env = untraced({**os.environ, **scenario.env})
    if scenario.env.get("LOADTEST_SHAPE") == "step":
        env["LOADTEST_MAX_USERS"] = str(users)
        env["LOADTEST_DURATION_S"] = str(duration)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(users), "-r", str(spawn_rate), "-t", f"{int(round(duration))}s",
        "--host", url, "--csv", str(out / "locust"), "--html", str(out / "report.html"),
        "--stop-timeout", f"{int(round(stop_timeout))}", "--logfile", str(out / "locust.log"),
        "--only-summary", *extra,
    ]  # fmt: skip
    print(f"locust: {users} users, {duration:.0f}s against {url} -> {out}", flush=True)
    proc = subprocess.Popen(cmd, env=env, cwd=HERE.parent)
    try:
        return proc.wait(timeout=duration + stop_timeout + 120)
    except subprocess.TimeoutExpired:
        print("locust overran its time: stopping it", file=sys.stderr)
        return 124
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
