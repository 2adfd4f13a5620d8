"""Schemathesis against the API's own OpenAPI schema: no 5xx, no answer that breaks the schema.

The app is the production one (``create_app`` with ``ServicesFromSettings``)
on the session's real PostgreSQL and Redis, with the in-process
``LocalGateway`` for routing (no Ray: fast), called over ASGI. Bounded and
deterministic: a fixed number of examples per operation, derandomized.
Generated orders are stored and queued like any other; the storage is
emptied afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.settings import EngineSettings
from serve.app import create_app
from runtime.api_services import ServicesFromSettings
from tests.integration.engine_harness import reset_storage

pytestmark = pytest.mark.faults

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def api_settings(database_url: str, redis_url: str) -> Iterator[EngineSettings]:
    # a high per-client limit: every generated request comes from one client
    engine_settings = EngineSettings(database_url=database_url, redis_url=redis_url)
    reset_storage(engine_settings)
    try:
        yield engine_settings
    finally:
        reset_storage(engine_settings)


@pytest.fixture(scope="module")
def api_schema(api_settings: EngineSettings) -> Any:
    app = create_app(ServicesFromSettings(api_settings, gateway="local"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) to run: every documented operation with valid inputs, and with
    invalid ones where it takes any (read from the schema without starting the app)."""

    async def never() -> Any:  # pragma: no cover - the schema is read without a lifespan
        raise AssertionError

    runs = []
    for path, ops in sorted(create_app(never).openapi()["paths"].items()):
        for method, spec in sorted(ops.items()):
            runs.append((method.upper(), path, GenerationMode.POSITIVE))
            if spec.get("parameters") or spec.get("requestBody"):
                runs.append((method.upper(), path, GenerationMode.NEGATIVE))
    return runs


RUNS = _operations()
SEEN: dict[tuple[str, str], set[int]] = {}


@pytest.mark.parametrize(("method", "path", "mode"), RUNS, ids=[f"{m} {p} {g}" for m, p, g in RUNS])
def test_the_api_keeps_its_schema_and_never_answers_5xx(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(checks=CHECKS)
        SEEN.setdefault((method, path), set()).add(response.status_code)

    check()


def test_the_generated_orders_reached_the_store_and_were_refused_when_bad() -> None:
    """The run above really exercised the order path: some accepted (202), some refused (4xx)."""
    statuses = SEEN.get(("POST", "/api/orders/execute"), set())
    if not statuses:
        pytest.skip("the schemathesis run did not run in this session")
    assert 202 in statuses and any(400 <= s < 500 for s in statuses), statuses
    assert all(s < 500 for codes in SEEN.values() for s in codes), SEEN
