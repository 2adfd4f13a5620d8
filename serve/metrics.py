"""Prometheus figures: the API's own (kept per process) and the engine's (read when scraped).

The API's figures are counted by :class:`MetricsMiddleware`: requests by route
template, method and status code, their latency, and the WebSockets open. The
engine's figures are read from the stores and the engine at scrape time, so a
scrape of any replica shows the same engine; the executors' lifecycle
histograms and counters are gathered from every executor actor then
(``serve.executor_metrics``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import ChainOff
from engine.lifecycle_figures import ExecutorFigures
from serve.chain_metrics import ChainCollector
from serve.executor_metrics import ExecutorCollector
from sim.orders import OrderStatus

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    """The API's counters, in a registry of this process's own (not the global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("dex_api_requests", "HTTP requests answered, by route template, method and code",
                                ["route", "method", "code"], registry=self.registry)  # fmt: skip
        self.latency = Histogram("dex_api_request_seconds", "Time to answer an HTTP request", ["route", "method"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)  # fmt: skip
        self.websockets = Gauge("dex_api_websockets_open", "WebSockets open on this replica", registry=self.registry)


class MetricsMiddleware:
    """Counts every HTTP request (by its route template: ``/api/orders/{orderId}``, not the id) and every
    WebSocket while it is open."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            self.metrics.websockets.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                self.metrics.websockets.dec()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template, method).observe(time.perf_counter() - started)


async def engine_figures(services: Any) -> bytes:
    """The engine's figures now, as Prometheus text: orders by status (and DEX), the queue, the oldest order
    the engine must run, the dispatcher, the trigger book, every pool's price and reserves, and every
    executor's slots and lifecycle histograms. A part of the engine that does not answer leaves its
    figures out and ``dex_engine_up`` at 0; the rest still counts. With the chain on, its slot, load,
    recent fees and transaction counts too (``serve.chain_metrics``)."""
    registry = CollectorRegistry()
    engine_up = Gauge("dex_engine_up", "1 when every part of the engine answered this scrape (dispatcher, trigger "
                      "book, pools, every executor: see dex_executor_up)", registry=registry)  # fmt: skip
    _, parts_up, executors, (chain_up, chain) = await asyncio.gather(
        _store_figures(services, registry), _engine_parts(services, registry), _executor_figures(services),
        _chain_info(services),
    )
    registry.register(ExecutorCollector(executors or []))
    registry.register(ChainCollector(chain))
    answered = parts_up and chain_up and executors is not None and all(e.answered for e in executors)
    engine_up.set(1 if answered else 0)
    return generate_latest(registry)


async def _store_figures(services: Any, registry: CollectorRegistry) -> None:
    orders = Gauge("dex_orders", "Orders by current status (PostgreSQL)", ["status"], registry=registry)
    by_dex = Gauge("dex_orders_by_dex", "Orders by current status and DEX (PostgreSQL; dex none: not routed yet)",
                   ["status", "dex"], registry=registry)  # fmt: skip
    queue = Gauge("dex_queue_orders", "Orders in the queue, by state", ["state"], registry=registry)
    oldest = Gauge("dex_oldest_active_order_seconds", "Age of the oldest order the engine must still run (0: none)",
                   registry=registry)  # fmt: skip
    (counts, pairs), depth, old = await asyncio.gather(
        _order_counts(services), services.queue.depth(), services.store.oldest_unfinished()
    )
    for status, count in counts.items():
        orders.labels(status).set(count)
    for (status, dex), count in pairs.items():
        by_dex.labels(status, dex).set(count)
    for state, count in depth.to_json().items():
        queue.labels(state).set(count)
    oldest.set(old.age_s if old else 0.0)


async def _order_counts(services: Any) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Orders by status (every status, zero included) and by (status, DEX): one query when the services
    can count by DEX, else by status only."""
    if getattr(services, "order_figures", None) is None:
        return await services.store.count_by_status(), {}
    pairs = await services.order_figures.count_by_status_and_dex()
    counts = {str(status): 0 for status in OrderStatus}
    for (status, _dex), count in pairs.items():
        counts[status] = counts.get(status, 0) + count
    return counts, pairs


async def _engine_parts(services: Any, registry: CollectorRegistry) -> bool:
    """The dispatcher's, the trigger book's and the pools' figures; False when the engine did not answer."""
    dispatcher = Gauge("dex_dispatcher", "The dispatcher's figures (running, started, completed, failed, retried)",
                       ["figure"], registry=registry)  # fmt: skip
    triggers = Gauge("dex_trigger_book", "The trigger book's figures (armed, snipers, fired, expired)", ["figure"],
                     registry=registry)  # fmt: skip
    price = Gauge("dex_pool_price", "Spot price of the pool's base token in its quote token", ["pool"],
                  registry=registry)  # fmt: skip
    reserve = Gauge("dex_pool_reserve", "Base units the pool holds, by token", ["pool", "token"], registry=registry)
    try:
        stats, book, pools = await asyncio.gather(
            services.engine.dispatcher_stats(), services.engine.trigger_stats(), services.engine.pool_summaries()
        )
    except Exception:  # noqa: BLE001 — the engine away: the store's figures still count
        log.debug("the engine did not answer a scrape", exc_info=True)
        return False
    for figure in ("running", "started", "completed", "failed", "retried"):
        if isinstance(stats.get(figure), int | float):
            dispatcher.labels(figure).set(stats[figure])
    for figure in ("armed", "snipers", "fired", "expired"):
        if isinstance(book.get(figure), int | float):
            triggers.labels(figure).set(book[figure])
    for pool in pools:
        price.labels(pool.pool_id).set(pool.spot_price)
        for token, units in pool.reserves.items():
            reserve.labels(pool.pool_id, token).set(units)
    return True


async def _chain_info(services: Any) -> tuple[bool, dict[str, Any] | None]:
    """(answered, the chain's info); the chain off answers (True, None)."""
    try:
        return True, await services.engine.chain_info()
    except ChainOff:
        return True, None
    except Exception:  # noqa: BLE001 — the chain away: its figures are left out
        log.debug("the chain did not answer a scrape", exc_info=True)
        return False, None


async def _executor_figures(services: Any) -> list[ExecutorFigures] | None:
    """Every executor's figures (one that did not answer is listed as such); None: none could be asked."""
    try:
        return list(await services.engine.executor_figures())
    except Exception:  # noqa: BLE001 — the gateway answers for each executor; this is the gateway failing
        log.debug("no executor figures at this scrape", exc_info=True)
        return None
