"""TriggerBookActor: the armed orders, fired by the pools' own state changes.

Every pool actor pushes its new state here after each change (an order's
fill, the market's flow, a shock); nothing polls. Pushes are coalesced: the
book keeps the latest state of each pool and, once per batch, asks the desk
(``engine.waiting``) to fire what the moved directions now pay. Expiries
wake a timer set for the next one due. On (re)start the book rebuilds
itself from PostgreSQL's open orders and pulls every pool's current state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ray

from actors.launched import launched_pools
from engine.clock import SystemClock
from engine.ports import Connector
from engine.settings import RoutingSettings
from engine.waiting import QuoteFn, TriggerDesk
from sim.decision import best_route_or_none, route_pool_ids
from sim.pools import Pool, restore_pool
from sim.tokens import TokenRegistry

TRIGGER_BOOK_NAME = "trigger-book"
log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)
class TriggerBookActor:
    def __init__(self, pools: dict[str, Any], pool_tokens: dict[str, tuple[str, str]], connector: Connector,
                 tokens: TokenRegistry, routing: RoutingSettings, *, reconcile_s: float = 60.0,
                 highs_every_s: float = 1.0, launchpad: tuple[str, str] | None = None) -> None:  # fmt: skip
        self._pools = dict(pools)
        self._pool_tokens = dict(pool_tokens)
        self._launchpad = launchpad
        self._connector, self._tokens = connector, tokens
        self._policy = routing.policy()
        self._reconcile_s, self._highs_every_s = reconcile_s, highs_every_s
        self._states: dict[str, tuple[str, Pool]] = {}  # pool id -> (version, state)
        self._dirty: set[str] = set()
        self._moved = asyncio.Event()
        self._armed = asyncio.Event()  # an arm may bring an expiry sooner than the timer's
        self._highs_moved = asyncio.Event()  # trailing highs may have moved: keep them
        self._desk: TriggerDesk | None = None
        self._ready = asyncio.Event()
        # From the constructor (it runs on the actor's event loop): a restarted book starts on its own.
        self._main = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        while self._desk is None:
            try:
                stores = await self._connector.trigger_stores()
                if stores.launches is not None:
                    for token in await stores.launches.tokens():
                        self._tokens.add(token)
                desk = TriggerDesk(stores.orders, stores.events, stores.queue, self._tokens, SystemClock())
                await desk.rebuild()
                self._desk = desk
            except Exception:  # noqa: BLE001 — PostgreSQL or Redis away at this moment
                log.exception("trigger book: could not open its stores; retrying in 1 s")
                await asyncio.sleep(1.0)
        for pool in await launched_pools(self._launchpad):  # launched before this book (re)started
            self._pools[pool["poolId"]] = pool["handle"]
            self._pool_tokens[pool["poolId"]] = tuple(pool["pair"])
        await self._pull_states()
        # A pool that opened while the book was away still fires the snipers waiting for it.
        await self._desk.pools_opened([state for _version, state in self._states.values()])
        self._ready.set()
        await asyncio.gather(
            self._pump(), self._expire_forever(), self._reconcile_forever(), self._keep_highs_forever()
        )

    async def _pull_states(self) -> None:
        ids = list(self._pools)
        answers = await asyncio.gather(*(self._pools[i].state_since.remote(None) for i in ids), return_exceptions=True)
        for pool_id, answer in zip(ids, answers):
            if isinstance(answer, BaseException):
                log.warning("trigger book: pool %s did not answer (%r); waiting for its push", pool_id, answer)
                continue
            version, snapshot = answer
            self._take(pool_id, version, snapshot)

    def _take(self, pool_id: str, version: str, snapshot: dict[str, Any] | None) -> None:
        if snapshot is None or self._states.get(pool_id, ("",))[0] == version:
            return
        self._states[pool_id] = (version, restore_pool(snapshot))
        self._dirty.add(pool_id)
        self._moved.set()

    async def ready(self) -> bool:
        await self._ready.wait()
        return True

    async def pool_moved(self, pool_id: str, version: str, snapshot: dict[str, Any]) -> None:
        """A pool's new state (pushed by the pool actor after every change)."""
        if pool_id in self._pools:
            self._take(pool_id, version, snapshot)

    async def add_pool(self, pool_id: str, pair: tuple[str, str], handle: Any, token: Any = None) -> bool:
        """A pool launched during the run: watch it, and fire the snipers it satisfies."""
        await self._ready.wait()
        assert self._desk is not None
        if token is not None:
            self._tokens.add(token)
        known = pool_id in self._pools
        self._pools[pool_id] = handle
        self._pool_tokens[pool_id] = tuple(pair)
        version, snapshot = await handle.state_since.remote(None)
        self._take(pool_id, version, snapshot)
        await self._desk.pools_opened([self._states[pool_id][1]])
        return not known

    async def arm(self, order_id: str) -> bool:
        """Arm an order just committed ``open`` (idempotent)."""
        await self._ready.wait()
        assert self._desk is not None
        armed = await self._desk.arm_by_id(order_id)
        if armed and order_id in self._desk.snipers:
            # Its token may have opened while it was on its way here.
            await self._desk.pools_opened([state for _version, state in self._states.values()])
        trigger = self._desk.book.get(order_id)
        if armed and trigger is not None:
            # Its direction may pay already: look at it (only it) with the states we hold.
            self._look_again(route_pool_ids(self._pool_tokens, trigger.token_in, trigger.token_out, self._policy))
        elif armed:
            self._armed.set()  # a sniper: only its expiry is the timer's business
        return armed

    async def disarm(self, order_id: str) -> bool:
        await self._ready.wait()
        assert self._desk is not None
        return self._desk.disarm(order_id)

    async def rebuild(self) -> int:
        """Arm every open order of the store not armed yet (orders written straight to PostgreSQL),
        then look at every direction again; returns how many were armed."""
        await self._ready.wait()
        assert self._desk is not None
        count = await self._desk.rebuild()
        self._look_again(self._pools)
        return count

    def _look_again(self, pool_ids: Any) -> None:
        """Orders were armed: their expiries may be sooner than the timer's, and their directions may pay
        already on the states we hold."""
        self._armed.set()
        self._dirty.update(pool_ids)
        self._moved.set()

    async def stats(self) -> dict[str, Any]:
        desk = self._desk
        if desk is None:
            return {"ready": False}
        figures = desk.figures
        return {
            "ready": True, "armed": len(desk.book), "fired": figures.fired, "expired": figures.expired,
            "stale": figures.stale, "priceEvents": figures.events, "nextExpiry": desk.next_expiry(),
            "snipers": len(desk.snipers), "pools": len(self._pools),
        }  # fmt: skip

    def _quote_fn(self, token_in: str, token_out: str) -> QuoteFn:
        pools = [self._states[p][1] for p in route_pool_ids(self._pool_tokens, token_in, token_out, self._policy)
                 if p in self._states]  # fmt: skip
        now = time.time()
        return lambda amount: best_route_or_none(pools, token_in, token_out, amount, now, self._policy)

    def _touched(self, dirty: set[str]) -> list[tuple[str, str]]:
        assert self._desk is not None
        return [
            (a, b) for a, b in self._desk.book.directions()
            if dirty.intersection(route_pool_ids(self._pool_tokens, a, b, self._policy))
        ]  # fmt: skip

    async def _pump(self) -> None:
        desk = self._desk
        assert desk is not None
        while True:
            await self._moved.wait()
            self._moved.clear()
            dirty, self._dirty = self._dirty, set()
            try:
                moves = [(a, b, self._quote_fn(a, b)) for a, b in self._touched(dirty)]
                if moves:
                    await desk.prices_moved(moves)
                    self._highs_moved.set()
            except Exception:  # noqa: BLE001 — the store away: those orders stay armed, the next move retries
                log.exception("trigger book: a price event failed")
                self._dirty |= dirty
                await asyncio.sleep(0.5)
                self._moved.set()

    async def _keep_highs_forever(self) -> None:
        """Write moved trailing highs at once, then at most once per ``highs_every_s`` (one statement each)."""
        desk = self._desk
        assert desk is not None
        while True:
            await self._highs_moved.wait()
            self._highs_moved.clear()
            await desk.save_highs()  # never raises: what failed is carried by the next save
            await asyncio.sleep(self._highs_every_s)

    async def _expire_forever(self) -> None:
        desk = self._desk
        assert desk is not None
        while True:
            due = desk.next_expiry()
            wait = 3600.0 if due is None else min(3600.0, max(0.0, due - time.time()))
            try:
                await asyncio.wait_for(self._armed.wait(), wait)
                self._armed.clear()
                continue  # something was armed: its expiry may be sooner
            except TimeoutError:
                pass
            try:
                await desk.expire_due()
            except Exception:  # noqa: BLE001
                log.exception("trigger book: expiring failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    async def _reconcile_forever(self) -> None:
        """Arm open orders the book never heard of (an arm call lost on its way): a slow safety net."""
        desk = self._desk
        assert desk is not None
        while True:
            await asyncio.sleep(self._reconcile_s)
            try:
                if await desk.reconcile():
                    self._look_again(self._pools)
            except Exception:  # noqa: BLE001
                log.exception("trigger book: reconciling with the store failed")
