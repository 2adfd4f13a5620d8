"""The Grafana dashboard and the Prometheus config use only metric names the project exposes.

The names come from the code, not from a list: the API's /metrics text generated with fake
services (every family with samples), and the Ray metrics defined in actors/metrics.py as Ray's
exporter names them (``ray_`` prefix; counters end in ``_total``; histograms are
``_bucket``/``_sum``/``_count``: checked against Ray 2.60's export).
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from serve.metrics import ApiMetrics, engine_figures
from tests.unit.metrics_fakes import fake_services

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "configs" / "grafana" / "dexengine.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan"}  # fmt: skip
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def api_metric_names() -> set[str]:
    api = ApiMetrics()
    api.requests.labels("/api/orders", "GET", "200").inc()
    api.latency.labels("/api/orders", "GET").observe(0.01)
    text = generate_latest(api.registry).decode() + asyncio.run(engine_figures(fake_services())).decode()
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        assert family.samples, f"{family.name} has no samples: the fakes must give every family some"
        names |= {sample.name for sample in family.samples}
    return names


def ray_metric_names() -> set[str]:
    """``ray_`` + every name given to a ray.util.metrics Counter, Gauge or Histogram in actors/metrics.py."""
    tree = ast.parse((ROOT / "actors" / "metrics.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            kind = node.func.id.lower()
            if kind in SUFFIXES and isinstance(node.args[0], ast.Constant):
                name = node.args[0].value
                base = "ray_" + (name.removesuffix("_total") if kind == "counter" else name)
                names |= {base + suffix for suffix in SUFFIXES[kind]}
    assert len(names) > 8, names
    return names


def promql_metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: what is left once strings, label matchers, ranges,
    groupings, functions, keywords and numbers are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])[A-Za-z_:][\w:]*", expr):
        if expr[match.end():].lstrip().startswith("(") or match.group(0).lower() in PROMQL_WORDS:
            continue  # a function or an aggregation, or a keyword
        names.add(match.group(0))
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] for p in [p, *p.get("panels", [])]]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            text = query["query"] if isinstance(query, dict) else query
            exprs.append(re.sub(r"^label_values\((\w+),.*\)$", r"\1", text))
    return exprs


def test_promql_names_are_found_and_nothing_else() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, stage) (rate(dex_x_bucket{stage=~"$stage", a="b{c}"}[1m])))'
    assert promql_metric_names(expr) == {"dex_x_bucket"}
    assert promql_metric_names("sum(a) / on (x) group_left (y) max without (z) (b) * 60 > bool 1") == {"a", "b"}


def test_every_metric_the_dashboard_queries_is_exposed_by_the_project() -> None:
    exposed = api_metric_names() | ray_metric_names()
    used = {name for expr in dashboard_expressions() for name in promql_metric_names(expr)}
    assert all(promql_metric_names(expr) for expr in dashboard_expressions()), "an expression queries no metric"
    assert used - exposed == set(), f"the dashboard queries names nothing exposes: {sorted(used - exposed)}"
    # what the issue asks the dashboard to show
    assert used >= {
        "dex_orders", "dex_orders_by_dex", "dex_orders_finished_total", "ray_dex_orders_finished_total",
        "dex_order_latency_seconds_bucket", "dex_order_stage_seconds_bucket", "dex_queue_orders",
        "dex_executor_running", "dex_order_retries_total", "dex_pool_price", "dex_pool_reserve",
        "dex_oldest_active_order_seconds", "dex_api_requests_total", "dex_api_request_seconds_bucket",
        "dex_api_websockets_open",
    }  # fmt: skip


def test_the_dashboard_is_grafana_10_on_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_prometheus_scrapes_the_api_and_rays_export_port() -> None:
    config = yaml.safe_load((ROOT / "configs" / "grafana" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    engine = yaml.safe_load((ROOT / "configs" / "engine.yaml").read_text())
    assert jobs["dexengine-api"]["metrics_path"] == "/metrics"
    assert jobs["dexengine-api"]["static_configs"][0]["targets"] == [f"127.0.0.1:{engine['api']['port']}"]
    assert jobs["ray"]["static_configs"][0]["targets"] == [f"127.0.0.1:{engine['ray']['metrics_export_port']}"]
