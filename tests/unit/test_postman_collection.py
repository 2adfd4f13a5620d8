"""postman_collection.json must stay true to the API: every request is an
operation of the app's OpenAPI schema (path, method, query and header
parameters), every documented operation has a request, and the example
bodies are valid orders (or fail with the code their test expects)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine.config import load_market_config
from engine.settings import DEFAULT_MARKET_CONFIG
from serve.app import create_app
from serve.errors import ApiError
from serve.requests import ExecuteOrderRequest
from serve.validation import validate_order

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = json.loads((ROOT / "postman_collection.json").read_text(encoding="utf-8"))
V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"


async def _never() -> Any:  # the schema is built without starting the app
    raise AssertionError("services are not needed for the schema")


SCHEMA = create_app(_never).openapi()
TOKENS = load_market_config(DEFAULT_MARKET_CONFIG).registry()


def _requests(items: list[dict[str, Any]], folder: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    for item in items:
        if "item" in item:
            found += _requests(item["item"], item["name"])
        else:
            found.append((folder, item))
    return found


REQUESTS = _requests(COLLECTION["item"])
IDS = [f"{folder}/{item['name']}" for folder, item in REQUESTS]


def _segments(request: dict[str, Any]) -> list[str]:
    url = request["url"]
    assert url["host"] == ["{{baseUrl}}"], "every request goes to {{baseUrl}}"
    path = "/" + "/".join(url["path"])
    assert url["raw"].split("?")[0] == "{{baseUrl}}" + path, "raw URL and path disagree"
    return url["path"]


def _matches(template: str, segments: list[str]) -> bool:
    parts = template.strip("/").split("/")
    if len(parts) != len(segments):
        return False
    for part, seg in zip(parts, segments, strict=True):
        variable = seg.startswith(":") or re.fullmatch(r"\{\{\w+\}\}", seg) is not None
        if part.startswith("{") and part.endswith("}"):
            continue
        if variable or part != seg:
            return False
    return True


def _operation(request: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    segments = _segments(request)
    method = request["method"].lower()
    hits = [(path, ops[method]) for path, ops in SCHEMA["paths"].items() if method in ops and _matches(path, segments)]
    # a literal path wins over a template (/api/orders/execute over /api/orders/{orderId})
    hits.sort(key=lambda hit: hit[0].count("{"))
    return hits[0] if hits else None


def _expected_code(item: dict[str, Any]) -> str | None:
    for event in item.get("event", []):
        for line in event["script"]["exec"]:
            match = re.search(r"error\.code\)\.to\.eql\(\"(\w+)\"\)", line)
            if match:
                return match.group(1)
    return None


def test_collection_is_postman_v21_with_a_base_url_and_10_plus_requests() -> None:
    assert COLLECTION["info"]["schema"] == V21
    assert COLLECTION["info"]["name"]
    variables = {v["key"]: v["value"] for v in COLLECTION["variable"]}
    assert variables["baseUrl"].startswith("http://")
    assert len(REQUESTS) >= 10
    assert len(set(IDS)) == len(IDS), "request names are unique"


@pytest.mark.parametrize(("folder", "item"), REQUESTS, ids=IDS)
def test_every_request_is_an_operation_of_the_api(folder: str, item: dict[str, Any]) -> None:
    request = item["request"]
    found = _operation(request)
    if _expected_code(item) == "NOT_FOUND":
        assert found is None, "the unknown-route example must stay unknown"
        return
    assert found is not None, f"{request['method']} /{'/'.join(request['url']['path'])} is not in the API"
    _path, operation = found
    params = operation.get("parameters", [])
    query = {p["name"] for p in params if p["in"] == "query"}
    for q in request["url"].get("query", []):
        assert q["key"] in query, f"query parameter {q['key']!r} is not declared"
    headers = {p["name"].lower() for p in params if p["in"] == "header"}
    for h in request.get("header", []):
        if h["key"].lower() != "content-type":
            assert h["key"].lower() in headers, f"header {h['key']!r} is not declared"
    if "body" in request:
        assert "requestBody" in operation, "a body sent to an operation that takes none"
    assert item.get("event"), "every request checks its answer"


def _is_order(request: dict[str, Any]) -> bool:
    return "body" in request and request["url"]["path"][-1] == "execute"


@pytest.mark.parametrize(("folder", "item"), [r for r in REQUESTS if _is_order(r[1]["request"])],
                         ids=[i for i, r in zip(IDS, REQUESTS, strict=True) if _is_order(r[1]["request"])])  # fmt: skip
def test_example_bodies_are_valid_orders_or_fail_as_their_test_expects(folder: str, item: dict[str, Any]) -> None:
    raw = item["request"]["body"]["raw"]
    expected = _expected_code(item)
    if expected == "MALFORMED_JSON":
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        return
    body = ExecuteOrderRequest.model_validate(json.loads(raw))
    if expected in (None, "IDEMPOTENCY_CONFLICT"):
        validate_order(body, TOKENS)
        return
    with pytest.raises(ApiError) as caught:
        validate_order(body, TOKENS)
    assert caught.value.code == expected


def test_every_documented_operation_has_a_request() -> None:
    covered = {(p, m) for _f, item in REQUESTS if (hit := _operation(item["request"])) for p, m in
               [(hit[0], item["request"]["method"].lower())]}  # fmt: skip
    documented = {(path, method) for path, ops in SCHEMA["paths"].items() for method in ops}
    assert documented <= covered, f"operations without a request: {sorted(documented - covered)}"


def _is_control(request: dict[str, Any]) -> bool:
    return request["url"]["path"][:2] == ["api", "sim"]


@pytest.mark.parametrize(("folder", "item"), [r for r in REQUESTS if _is_control(r[1]["request"])],
                         ids=[i for i, r in zip(IDS, REQUESTS, strict=True) if _is_control(r[1]["request"])])  # fmt: skip
def test_simulation_control_examples_are_valid_requests(folder: str, item: dict[str, Any]) -> None:
    from serve.routers.simulation import CongestionRequest, LaunchRequest, ShockRequest

    model = {"shock": ShockRequest, "launch": LaunchRequest, "congestion": CongestionRequest}[
        item["request"]["url"]["path"][-1]
    ]
    model.model_validate(json.loads(item["request"]["body"]["raw"]))
