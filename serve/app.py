"""The HTTP API and the WebSocket status feed, as one FastAPI app.

    app = create_app(services_factory)

``services_factory`` is a zero-argument async callable returning
:class:`serve.services.Services`; it is called once per process at startup
(the ASGI lifespan, which Ray Serve runs on each replica) and the result is
closed at shutdown. The same app runs under plain uvicorn (tests) and inside
a ``@serve.ingress(app)`` deployment. The endpoints live in
:mod:`serve.routers`, one router per resource.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from serve.api_docs import API_DESCRIPTION, COMMON_RESPONSES, TAGS
from serve.errors import install_error_handlers
from serve.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware, ClientLimits
from serve.metrics import ApiMetrics, MetricsMiddleware
from serve.routers import chain, console, market, operations, orders, simulation, streams
from serve.services import ServicesFactory


def _lifespan(services_factory: ServicesFactory) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the services (and the per-client limits on their Redis) at startup; close them at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await services_factory()
        opts = services.options
        app.state.limits = ClientLimits(
            services.windows,
            orders_per_window=opts.order_limit_per_minute,
            reads_per_window=opts.read_limit_per_minute,
            window_s=opts.limit_window_s,
            ws_per_client=opts.ws_max_per_client,
            timeout_s=opts.redis_timeout_s,
        )
        app.state.services = services
        try:
            yield
        finally:
            app.state.services = None
            await services.aclose()

    return lifespan


def create_app(
    services_factory: ServicesFactory,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    title: str = "DEX order execution engine",
) -> FastAPI:
    """The API. ``services_factory()`` is awaited once at startup; see :mod:`serve.services`.

    ``max_body_bytes`` bounds an HTTP request body (413 above it) and the
    order message of the WebSocket upgrade.
    """
    app = FastAPI(
        title=title,
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan(services_factory),
        responses=COMMON_RESPONSES,
    )
    app.state.services = None
    app.state.limits = None
    app.state.max_body_bytes = max_body_bytes
    app.state.metrics = ApiMetrics()
    install_error_handlers(app)
    # A too-large body is refused before anything else reads it; outermost, every answer is counted.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    # Orders first: its literal /api/orders/execute must match before /api/orders/{orderId}.
    for router in (orders.router, streams.router, market.router, chain.router, operations.router, simulation.router,
                   console.router):
        app.include_router(router)
    return app
