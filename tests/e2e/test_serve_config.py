"""``serve run configs/serve.yaml``, as a user runs it, gives the same working engine as ``dexengine up``.

The app builder returns once the app is deployed, so what it starts must
outlive it: here the servers come up detached from a data dir of the test's
own, the actors detached on the session's Ray (``serve run --address``),
and an order goes all the way through the API. No second Ray is started.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import ray
import yaml

from localservers import stop as stop_servers
from localservers.ports import free_port
from tests.e2e.test_through_serve import assert_gapless, submit_and_follow

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, port: int, namespace: str) -> Path:
    config = yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())
    config["http_options"]["port"] = port
    config["applications"][0]["args"] = {
        "data_dir": str(tmp / "data"),
        "ray": {"namespace": namespace},
        "market": {"enabled": False},
        "latency": {"quote_s": 0, "quote_jitter_s": 0, "execution_min_s": 0, "execution_max_s": 0},
    }
    path = tmp / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _wait_healthy(base: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve run exited with {process.returncode}"
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{base}/health never answered 200")


@pytest.fixture(scope="module")
def served(ray_session: None) -> Iterator[tuple[str, subprocess.Popen, str]]:
    from ray import serve

    serve.shutdown()  # one Serve per cluster: start from none, as a user would
    tmp = Path(tempfile.mkdtemp(prefix="dexengine-serve-run-"))
    port, namespace = free_port(), f"serve-run-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEXENGINE_")}
    env.pop("DATABASE_URL", None), env.pop("REDIS_URL", None)
    address = ray.get_runtime_context().gcs_address
    serve_cli = str(Path(sys.executable).with_name("serve"))
    process = subprocess.Popen(
        [serve_cli, "run", "--address", address, str(_config(tmp, port, namespace))],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base, process, namespace
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # as Ctrl-C: serve run tears its app down
            try:  # not waited out: seen to take over 60 s in a full run; what it leaves is removed below
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
        for actor in ray.util.list_named_actors(all_namespaces=True):
            if actor["namespace"] == namespace:
                ray.kill(ray.get_actor(actor["name"], namespace=namespace), no_restart=True)
        serve.shutdown()
        stop_servers(tmp / "data")
        shutil.rmtree(tmp, ignore_errors=True)


async def test_an_order_through_the_serve_config_is_confirmed(served: tuple[str, subprocess.Popen, str]) -> None:
    base, process, namespace = served
    health = httpx.get(f"{base}/health", timeout=5).json()
    assert health["status"] == "ok", health
    order = {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}
    _, events, code = await submit_and_follow(base, order)
    assert_gapless(events)
    assert events[-1]["status"] == "confirmed" and code == 1000
    assert process.poll() is None  # still serving: nothing it needs went away with the builder
    names = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == namespace}
    assert {"router", "dispatcher", "executor:0"} <= names
