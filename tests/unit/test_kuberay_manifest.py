"""``configs/kuberay/rayservice.yaml`` against the code it names: its Serve config is ``configs/serve.yaml``'s
with what a cluster needs, its app is importable, its args are valid settings. No cluster, no network."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.settings import EngineSettings
from serve.deployment import APP_NAME, DEPLOYMENT_NAME, PROXY_LOCATION

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "configs" / "kuberay" / "rayservice.yaml"


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


@pytest.fixture(scope="module")
def serve_config(service: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(service["spec"]["serveConfigV2"])


def containers(service: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [c for group in groups for c in group["template"]["spec"]["containers"]]


def test_it_is_a_rayservice_of_a_head_and_a_worker_group(service: dict[str, Any]) -> None:
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == importlib.import_module("ray").__version__
    assert cluster["authOptions"] == {"mode": "token"}
    assert [g["replicas"] for g in cluster["workerGroupSpecs"]] == [2]


def test_its_serve_config_is_the_repositorys_with_the_proxy_on_the_head(serve_config: dict[str, Any]) -> None:
    local = yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())
    assert serve_config["proxy_location"] == local["proxy_location"] == PROXY_LOCATION == "HeadOnly"
    assert serve_config["http_options"]["port"] == local["http_options"]["port"]
    assert serve_config["http_options"]["host"] == "0.0.0.0"  # the pod's address, for KubeRay's serve Service
    (app,) = serve_config["applications"]
    (local_app,) = local["applications"]
    assert {k: app[k] for k in ("name", "route_prefix", "import_path")} == {
        k: local_app[k] for k in ("name", "route_prefix", "import_path")
    }
    assert app["name"] == APP_NAME
    # the API's replicas, over the nodes (the one proxy forwards to each)
    assert [(d["name"], d["num_replicas"]) for d in app["deployments"]] == [(DEPLOYMENT_NAME, 2)]


def test_its_import_path_is_the_app_builder(serve_config: dict[str, Any]) -> None:
    module, _, name = serve_config["applications"][0]["import_path"].partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_its_args_are_settings_for_a_cluster(
    service: dict[str, Any], serve_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    settings = EngineSettings(**serve_config["applications"][0]["args"])
    # the app knows it listens beyond loopback, as its proxy does: API keys required, no simulation controls
    assert settings.api.host == serve_config["http_options"]["host"] and not settings.api.on_loopback
    assert settings.api.auth == "auto" and not settings.api.sim_controls_on
    workers = sum(g["replicas"] for g in service["spec"]["rayClusterConfig"]["workerGroupSpecs"])
    assert settings.ray.spread == "on" and settings.ray.min_nodes == 1 + workers  # the head and every worker
    assert settings.api.port == 8000 and settings.dispatch.rate_limit_per_minute == 100  # the rest as configured


def test_every_container_gets_the_stores_from_the_secret(service: dict[str, Any]) -> None:
    for container in containers(service):
        env = {e["name"]: e for e in container["env"]}
        for var, key in (("DATABASE_URL", "database-url"), ("REDIS_URL", "redis-url")):
            assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "dexengine-stores", "key": key}, container["name"]
        assert env["PYTHONPATH"]["value"] == "/app"  # configs/ beside the source tree, not in the wheel


def test_the_head_exposes_the_api_port(service: dict[str, Any], serve_config: dict[str, Any]) -> None:
    head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in head["ports"]}
    assert ports["serve"] == serve_config["http_options"]["port"] and ports["gcs"] == 6379


def test_serve_takes_both_configs(serve_config: dict[str, Any]) -> None:
    from ray.serve.schema import ServeDeploySchema

    for config in (serve_config, yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())):
        assert ServeDeploySchema.model_validate(config).proxy_location == PROXY_LOCATION
