"""What the API needs, built once per process: the stores and the engine, behind ports.

``create_app(services_factory)`` calls the factory at startup (the ASGI
lifespan, which Serve runs on every replica) and closes the result at
shutdown. A factory is any zero-argument async callable returning
:class:`Services`; the composition root provides the standard one
(``runtime.api_services.ServicesFromSettings``), which pickles into a Serve
replica.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.ports import ApiFeed, ApiOrderStore, ApiQueue, EngineGateway, RateWindows, StoreHealth
from sim.tokens import TokenRegistry

log = logging.getLogger("serve.services")

ServicesFactory = Callable[[], Awaitable["Services"]]


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """Knobs of the HTTP layer (defaults fit the engine's)."""

    default_slippage_bps: int = 50
    max_slippage_bps: int = 5_000
    max_page: int = 200
    default_page: int = 50
    # A WebSocket re-reads PostgreSQL when no live event came for this long,
    # so an event whose publish was lost (Redis down) still arrives.
    ws_poll_s: float = 2.0
    ws_max_poll_s: float = 15.0  # ...doubling while nothing happens, up to this
    ws_resubscribe_s: float = 10.0  # without a subscription (Redis down), try again this often
    # The upgrade on /api/orders/execute waits this long for the order message.
    ws_first_message_timeout_s: float = 30.0
    probe_timeout_s: float = 2.0
    # Publishing the first event and queueing a stored order wait at most this
    # long; past it the order is still accepted (clients replay, the sweep queues).
    redis_timeout_s: float = 2.0
    # Per client (X-Client-Id, else address); 0 turns a limit off. See serve.limits.
    order_limit_per_minute: int = 600
    read_limit_per_minute: int = 0
    limit_window_s: float = 60.0
    ws_max_per_client: int = 200


@dataclass
class Services:
    """Everything an endpoint uses. ``closers`` run at shutdown, last first."""

    store: ApiOrderStore
    queue: ApiQueue
    bus: ApiFeed
    health: StoreHealth
    windows: RateWindows | None  # None: no per-client limits
    tokens: TokenRegistry
    engine: EngineGateway
    options: ApiOptions = field(default_factory=ApiOptions)
    # fallbacks for /api/queue/metrics when the dispatcher does not answer
    concurrency: int = 10
    rate_limit_per_minute: int = 100
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    async def aclose(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception:
                log.exception("closing a service failed")


def options_from(settings: Any) -> ApiOptions:
    """The API options an engine's settings ask for (the rest at their defaults)."""
    return ApiOptions(
        order_limit_per_minute=settings.api_order_limit_per_minute,
        read_limit_per_minute=settings.api_read_limit_per_minute,
        limit_window_s=settings.api_limit_window_s,
        ws_max_per_client=settings.ws_max_per_client,
    )
