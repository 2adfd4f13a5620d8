"""Ray Serve's ingress options measured on this engine's API, with wrk.

    python -m loadtest.bench_ingress [--seconds 10] [--connections 50]

For each ingress (Serve's default proxy; Serve's HAProxy ingress, turned on
with RAY_SERVE_ENABLE_HA_PROXY=1 and RAY_SERVE_THROUGHPUT_OPTIMIZED=1) it
starts an engine of its own (``loadtest.engine_process``), then drives two
endpoints with wrk (``apt-get install wrk``) from 127.0.0.1:

* ``GET /openapi.json`` — trivial work in the app: what the ingress costs;
* ``GET /api/orders/{id}`` — one PostgreSQL read per request.

It prints requests/s and latency for each, and the HAProxy/default ratio.
wrk shares the machine's cores with the engine: its CPU is part of the cost.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from loadtest.engine_process import PROFILES, EngineProcess

MODES = {
    "default proxy": {},
    "HAProxy ingress": {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
}


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*timeout (\d+)", out)

    def pct(label: str) -> float:
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "timeouts": int(errors.group(1)) if errors else 0,
    }


def measure(
    mode: str, mode_env: dict[str, str], seconds: int, connections: int
) -> dict[str, dict[str, float]]:
    saved = {k: os.environ.get(k) for k in mode_env}
    os.environ.update(mode_env)
    log = Path(tempfile.gettempdir()) / f"dexengine-ingress-{mode.split()[0].lower()}.log"
    engine = EngineProcess(PROFILES["zero"], name="ingress", log_path=log)
    try:
        base = engine.start()
        order = httpx.post(
            f"{base}/api/orders/execute",
            json={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1"},
            timeout=10,
        ).json()["orderId"]
        httpx.get(f"{base}/openapi.json", timeout=10)
        return {
            "GET /openapi.json": wrk(f"{base}/openapi.json", seconds, connections),
            "GET /api/orders/{id}": wrk(f"{base}/api/orders/{order}", seconds, connections),
        }
    finally:
        engine.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    results = {mode: measure(mode, env, args.seconds, args.connections) for mode, env in MODES.items()}
    print(f"Serve ingress on {os.cpu_count()} cores, wrk -t2 -c{args.connections} -d{args.seconds}s from 127.0.0.1")
    for mode, endpoints in results.items():
        for endpoint, r in endpoints.items():
            print(
                f"  {mode:<16} {endpoint:<22} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.1f} ms"
                f"  p99 {r['p99_ms']:7.1f} ms  non-2xx {r['non2xx']}  timeouts {r['timeouts']}"
            )
    default, haproxy = results["default proxy"], results["HAProxy ingress"]
    for endpoint in default:
        ratio = haproxy[endpoint]["rps"] / default[endpoint]["rps"]
        print(f"  HAProxy / default on {endpoint}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
