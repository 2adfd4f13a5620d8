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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.api_keys import KeyRing
from engine.settings import ApiSettings
from engine.ports import ApiFeed, ApiOrderStore, ApiQueue, EngineGateway, LaunchedMarket, RateWindows, StoreHealth
from engine.ports import OrderFigures, TradeHistory
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
    launches: LaunchedMarket | None = None  # where tokens launched during the run are learnt from
    trades: TradeHistory | None = None  # the pools' recorded trades (candles); None: not wired
    order_figures: OrderFigures | None = None  # orders by status and DEX for /metrics (None: by status only)
    keys: KeyRing | None = None  # None: no keys, every caller is the anonymous owner
    _learnt_at: float = field(default=-1e9, repr=False)

    async def learn_tokens(self, *refs: str) -> None:
        """When a request names a token this process does not know, learn the launched ones (one query,
        at most once a second: a token nobody launched is asked for again and again by a sniper's reads)."""
        if self.launches is None or all(ref.strip() in self.tokens for ref in refs):
            return
        now = time.monotonic()
        if now - self._learnt_at < 1.0:
            return
        self._learnt_at = now
        try:
            for token in await self.launches.tokens():
                self.tokens.add(token)
        except Exception:  # noqa: BLE001 — PostgreSQL away: the order is judged on what is known
            log.warning("could not read the launched tokens", exc_info=True)

    async def aclose(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            try:
                await closer()
            except Exception:
                log.exception("closing a service failed")
