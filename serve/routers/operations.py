"""Operations: the queue's figures, the health of what the API stands on, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serve.auth import FORBIDDEN_EXAMPLE, UNAUTHORIZED_EXAMPLE, require_admin
from serve.dependencies import ServicesDep, limit_reads
from engine.errors import EngineUnavailable
from serve.errors import error_body, error_example
from serve.health import probe_all
from serve.metrics import engine_figures
from serve.responses import HealthResponse, OldestOpenOrderView, QueueMetricsResponse
from serve.services import Services

log = logging.getLogger("serve.operations")

router = APIRouter(tags=["operations"])

_HEALTH_503 = {
    "model": HealthResponse,
    "description": "Something is down",
    "content": {
        "application/json": {
            "example": {
                "status": "unavailable",
                "checks": {
                    "postgres": {"ok": True, "latencyMs": 0.8},
                    "redis": {"ok": False, "error": "ConnectionError: connection refused"},
                    "ray": {"ok": True, "latencyMs": 3.1},
                },
                "down": ["redis"],
                "error": error_body("UNHEALTHY", "down: redis", {"down": ["redis"]})["error"],
            }
        }
    },
}


async def _dispatcher_stats(services: Services) -> dict[str, Any] | None:
    """The dispatcher's own figures, or None when the engine does not answer."""
    try:
        return await services.engine.dispatcher_stats()
    except EngineUnavailable as exc:
        log.warning("dispatcher stats unavailable: %s", exc)
        return None


@router.get(
    "/api/queue/metrics",
    response_model=QueueMetricsResponse,
    dependencies=[Depends(require_admin), Depends(limit_reads)],
    summary="Queue metrics",
    description="waiting (queued), running, retrying (waiting out a backoff), completed and failed "
    "(all time, from PostgreSQL), the rate limit and the concurrency. `running` is null and "
    "`engineAvailable` false when the dispatcher does not answer. Needs an admin key when keys are in use.",
    responses={
        401: UNAUTHORIZED_EXAMPLE,
        403: FORBIDDEN_EXAMPLE,
        503: error_example(503, "REDIS_UNAVAILABLE", "Redis is unavailable. Retry shortly."),
    },
)
async def queue_metrics(services: ServicesDep) -> QueueMetricsResponse:
    depth, counts, stats, oldest = await asyncio.gather(
        services.queue.depth(), services.store.count_by_status(), _dispatcher_stats(services),
        services.store.oldest_unfinished(),
    )  # fmt: skip
    # Without the dispatcher's figures, the configured ones.
    figures = stats or {}
    return QueueMetricsResponse(
        waiting=depth.waiting,
        running=None if stats is None else int(figures.get("running", 0)),
        retrying=depth.delayed,
        completed=counts.get("confirmed", 0),
        failed=counts.get("failed", 0),
        rate_limit_per_minute=int(figures.get("rateLimitPerMinute", services.rate_limit_per_minute)),
        concurrency=int(figures.get("concurrency", services.concurrency)),
        by_status=counts,
        dispatcher=stats,
        engine_available=stats is not None,
        oldest_non_final_age_s=round(oldest.age_s, 3) if oldest else 0.0,
        oldest_non_final=None if oldest is None else OldestOpenOrderView(
            order_id=oldest.order_id, status=oldest.status, age_s=round(oldest.age_s, 3), idle_s=round(oldest.idle_s, 3)
        ),
    )


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Health check",
    description="Probes PostgreSQL, Redis and the engine's Ray actors. 200 when all answer; 503 "
    "naming the ones that do not.",
    responses={503: _HEALTH_503},
)
async def health(services: ServicesDep, response: Response) -> HealthResponse:
    checks = await probe_all(services)
    down = [name for name, check in checks.items() if not check["ok"]]
    error = None
    if down:
        response.status_code = 503
        error = error_body("UNHEALTHY", f"down: {', '.join(down)}", {"down": down})["error"]
    return HealthResponse.model_validate(
        {"status": "unavailable" if down else "ok", "checks": checks, "down": down, "error": error}
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Prometheus text format: the API's own figures on this replica (requests by route template, "
    "method and code; latency histograms; open WebSockets) and the engine's, read now (orders by status and DEX, "
    "the queue, the oldest order the engine must run, the dispatcher, the trigger book, every pool's price and "
    "reserves, and every executor's slots, stage and order latency histograms, finished orders and retries). "
    "Needs an admin key when keys are in use.",
    response_class=Response,
    dependencies=[Depends(require_admin)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"example": "dex_orders{status=\"confirmed\"} 12.0"}}},
               401: UNAUTHORIZED_EXAMPLE, 403: FORBIDDEN_EXAMPLE},
)
async def metrics(request: Request, services: ServicesDep) -> Response:
    api = generate_latest(request.app.state.metrics.registry)
    return Response(api + await engine_figures(services), media_type=CONTENT_TYPE_LATEST)
