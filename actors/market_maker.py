"""MarketMaker: drives ``sim``'s market against the live pool actors in real time.

Each tick it reads every pool's current state, lets the market plan its
arbitrage and noise flow against those states, and sends the trades to the
pool actors, where they queue with the orders like any other swap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ray

from actors.launched import launched_pools
from engine.config import build_market, build_pools, load_market_config
from engine.settings import MarketSettings
from sim.pools import Pool, restore_pool

MARKET_NAME = "market"
log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=100)
class MarketMaker:
    def __init__(self, pools: dict[str, Any], settings: MarketSettings, seed: int, autostart: bool = False,
                 launchpad: tuple[str, str] | None = None) -> None:  # fmt: skip
        self._settings = settings
        self._pools = dict(pools)
        config = load_market_config(settings.config)
        self._market = build_market(config, build_pools(config), seed=seed, tick_s=settings.tick_s)
        self._launches = config.launches.process(seed)
        self._launchpad = launchpad
        self._task: asyncio.Task | None = None
        self._states: dict[str, tuple[str, Pool]] = {}  # pool id -> (version, state) as last seen
        self.ticks = 0
        self.trades = 0
        if autostart or ray.get_runtime_context().was_current_actor_reconstructed:
            # From the constructor (it runs on the actor's event loop), not by a call to
            # ourselves: that call fails while Ray still reports the actor RESTARTING.
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def start(self) -> bool:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        return True

    async def stop(self) -> bool:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        return True

    async def shock(self, symbol: str, move_bps: float) -> tuple[float, float]:
        """Move a token's reference price for good; the arbitrage flow carries its pools after it."""
        return self._market.shock(symbol, move_bps)

    async def stats(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "trades": self.trades, "running": self._task is not None}

    async def add_pool(self, pool_id: str, pair: tuple[str, str], handle: Any, token: Any = None) -> bool:
        """A pool launched during the run: the market trades it from now on, its new token anchored at the
        pool's opening price."""
        if pool_id in self._pools:
            return False
        pool = restore_pool(await handle.snapshot.remote())
        new, paired = pair
        usd = pool.spot_price(new) * self._market.reference_price(paired)
        if self._market.add_pool(pool, {new: usd}):
            self._pools[pool_id] = handle
        return True

    async def _run(self) -> None:
        for pool in await launched_pools(self._launchpad):  # launched before this market (re)started
            await self.add_pool(pool["poolId"], tuple(pool["pair"]), pool["handle"])
        tick_s = self._settings.tick_s
        started = last = time.monotonic()
        while True:
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            try:
                await self.tick(now - last)
                await self._launch_due(now - started)
            except Exception:  # noqa: BLE001 — a pool restarting: try again next tick
                log.exception("market tick failed")
            last = now

    async def _launch_due(self, elapsed_s: float) -> None:
        for launch in self._launches.due(elapsed_s):
            if self._launchpad is None:
                return
            pad = ray.get_actor(self._launchpad[0], namespace=self._launchpad[1])
            request = {"symbol": launch.symbol, "mint": launch.mint, "decimals": launch.decimals,
                       "pairWith": launch.pair_with, "dex": launch.dex, "liquidity": str(launch.liquidity),
                       "price": str(launch.price)}  # fmt: skip
            try:
                opened = await pad.launch.remote(request)
                log.info("launched %s: %s", launch.symbol, opened["poolId"])
            except Exception as exc:  # noqa: BLE001 — e.g. launched before a restart (TOKEN_EXISTS)
                log.info("launch of %s refused: %s", launch.symbol, exc)

    async def tick(self, dt: float) -> int:
        """One step of the market: returns the number of trades sent."""
        ids = list(self._pools)
        seen = self._states
        answers = await asyncio.gather(
            *(self._pools[i].state_since.remote(seen[i][0] if i in seen else None) for i in ids)
        )
        for pool_id, (version, snapshot) in zip(ids, answers):
            if snapshot is not None:  # moved since the last tick (else the state we hold is current)
                seen[pool_id] = (version, restore_pool(snapshot))
        states = {i: seen[i][1] for i in ids}
        flows = self._market.next_flows(dt, states, now=time.time())
        results = await asyncio.gather(
            *(
                self._pools[f.pool_id].apply_flow.remote(f.kind, f.token_in, f.amount_in)
                for f in flows
            )
        )
        sent = sum(r is not None for r in results)
        self.ticks += 1
        self.trades += sent
        return sent
