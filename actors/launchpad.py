"""Launchpad: opens a new token's first pool during a run, and tells every actor that trades it.

A launch is recorded in PostgreSQL first (the token and its pool), then the
pool's actor is created (it writes its genesis), then the executors learn
the token, and the router, the trigger book and the market learn the pool,
in that order: by the time the book sees the pool open (and fires the
snipers waiting for it), everything a sniper's run needs knows it. On start
(``restore``) it re-creates the actors of pools launched in an earlier run.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import ray

from actors.market_maker import MARKET_NAME
from actors.placement import Placement
from actors.pool_actor import PoolActor, pool_actor_name
from actors.trigger_book import TRIGGER_BOOK_NAME
from engine.errors import LaunchRefused, TokenExists
from engine.ports import Connector
from engine.settings import FaultSettings, LatencySettings
from sim.launches import Launch, launch_mint, launch_pool
from sim.pools import restore_pool
from sim.tokens import Token, TokenRegistry, UnknownToken

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=16)
class Launchpad:
    def __init__(self, connector: Connector, tokens: TokenRegistry, router: Any, executors: list[Any],
                 latency: LatencySettings, faults: FaultSettings, seed: int, namespace: str,
                 detached: bool = False, *, placement: Placement | None = None,
                 first_pool: int = 0) -> None:  # fmt: skip
        self._connector, self._tokens = connector, tokens
        # launched pools take their turn on the nodes after the genesis pools
        self._placement, self._next_pool = placement or Placement(), first_pool
        self._router, self._executors = router, executors
        self._latency, self._faults, self._seed = latency, faults, seed
        self._namespace, self._detached = namespace, detached
        self._store: Any = None
        self._lock = asyncio.Lock()  # one launch at a time: a symbol is checked and taken atomically

    async def _launches(self) -> Any:
        if self._store is None:
            self._store = await self._connector.launch_store()
        return self._store

    async def launch(self, request: dict[str, Any]) -> dict[str, Any]:
        """``{symbol, mint?, decimals, pairWith, dex, liquidity, price}`` -> ``{token, poolId}``.

        Raises :class:`LaunchRefused` (``TOKEN_EXISTS``, ``UNKNOWN_TOKEN``, ``INVALID_LAUNCH``)."""
        async with self._lock:
            launch = self._launch_of(request)
            store = await self._launches()
            try:
                await store.record_launch(launch)
            except TokenExists:
                raise LaunchRefused("TOKEN_EXISTS", f"token {launch.symbol} or its mint exists already") from None
            await self._open(launch.token, launch.pool_id, launch.pair_with, launch_pool(launch, self._pair(launch)))
            return {"token": {"symbol": launch.symbol, "mint": launch.mint, "decimals": launch.decimals},
                    "poolId": launch.pool_id, "dex": launch.dex}  # fmt: skip

    def _pair(self, launch: Launch) -> Token:
        return self._tokens[launch.pair_with]

    def _launch_of(self, request: dict[str, Any]) -> Launch:
        symbol = str(request.get("symbol") or "").strip()
        mint = request.get("mint") or launch_mint(self._seed, symbol)
        for ref in (symbol, mint):
            if ref in self._tokens:
                raise LaunchRefused("TOKEN_EXISTS", f"token {ref} exists already")
        try:
            pair = self._tokens.resolve(str(request.get("pairWith") or ""))
        except UnknownToken:
            raise LaunchRefused("UNKNOWN_TOKEN", f"pairWith: unknown token {request.get('pairWith')!r}") from None
        try:
            return Launch(
                symbol=symbol, mint=mint, decimals=int(request.get("decimals", 6)), pair_with=pair.symbol,
                dex=str(request.get("dex") or "raydium"), liquidity=Decimal(str(request["liquidity"])),
                price=Decimal(str(request["price"])),
            )  # fmt: skip
        except (ValueError, KeyError, ArithmeticError) as exc:
            raise LaunchRefused("INVALID_LAUNCH", str(exc)) from None

    async def _open(self, token: Token, pool_id: str, pair_with: str, genesis: Any) -> None:
        """Create (or find) the pool's actor, then tell everyone, in the order the module says."""
        options = {"name": pool_actor_name(pool_id), "namespace": self._namespace, "get_if_exists": True}
        if self._detached:
            options["lifetime"] = "detached"
        options.update(self._placement.options(self._next_pool))
        self._next_pool += 1
        handle = PoolActor.options(**options).remote(
            pool_id, genesis.snapshot(), self._connector, self._latency, self._faults, self._seed,
            (TRIGGER_BOOK_NAME, self._namespace),
        )  # fmt: skip
        await handle.ready.remote()
        self._tokens.add(token)
        await asyncio.gather(*(e.learn_token.remote(token) for e in self._executors))
        pair = (token.symbol, pair_with)
        await self._router.add_pool.remote(pool_id, list(pair), handle)
        for name in (TRIGGER_BOOK_NAME, MARKET_NAME):
            try:
                actor = ray.get_actor(name, namespace=self._namespace)
            except ValueError:
                continue  # the market is off: nothing to tell
            await actor.add_pool.remote(pool_id, pair, handle, token)

    async def launched(self) -> list[dict[str, Any]]:
        """Every pool launched so far, for an actor that restarted: ``[{poolId, pair, handle, token}]``."""
        store = await self._launches()
        tokens = {t.symbol: t for t in await store.tokens()}
        out = []
        for pool_id, token_x, token_y in await store.pools():
            try:
                handle = ray.get_actor(pool_actor_name(pool_id), namespace=self._namespace)
            except ValueError:
                continue  # recorded, its actor not created yet: ``restore`` does it
            out.append({"poolId": pool_id, "pair": (token_x, token_y), "handle": handle, "token": tokens[token_x]})
        return out

    async def restore(self) -> int:
        """Re-create the actors of the pools launched in earlier runs, and tell everyone again (idempotent)."""
        store = await self._launches()
        tokens = {t.symbol: t for t in await store.tokens()}
        restored = 0
        for pool_id, token_x, token_y in await store.pools():
            genesis = await store.genesis(pool_id)
            if genesis is None or token_x not in tokens:
                log.warning("launched pool %s has no genesis yet; skipped", pool_id)
                continue
            await self._open(tokens[token_x], pool_id, token_y, restore_pool(genesis))
            restored += 1
        return restored
