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

from engine.settings import ApiSettings
from engine.ports import ApiFeed, ApiOrderStore, ApiQueue, EngineGateway, RateWindows, StoreHealth
from sim.tokens import TokenRegistry

log = logging.getLogger("serve.services")

ServicesFactory = Callable[[], Awaitable["Services"]]


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
    options: ApiSettings = field(default_factory=ApiSettings)
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
