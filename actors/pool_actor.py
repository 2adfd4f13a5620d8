"""PoolActor: one live DEX pool. Its state changes only here, one swap at a time.

Every trade is written to PostgreSQL (with the pool's state after it) before
the in-memory state moves, so a restarted actor rebuilds itself exactly from
what was recorded, and the unique (order_id, leg) key makes a fill happen at
most once however often a swap is redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from typing import Any

import ray

from actors import metrics
from engine.plans import Fill, HeldPool, Rejection, SwapOrder
from engine.ports import Connector, PoolLedger
from engine.settings import FaultSettings, LatencySettings
from sim.decision import PoolSummary, pool_summary
from sim.impact import amount_to_move_price
from sim.pools import Pool, restore_pool
from sim.pools.base import SimError


class TransactionExpired(SimError):
    code = "TRANSACTION_EXPIRED"
    transient = True


class LeaseExpired(SimError):
    code = "LEASE_EXPIRED"
    transient = True


def _rejected(exc: SimError) -> Rejection:
    return Rejection(exc.code, str(exc), exc.transient)


def pool_actor_name(pool_id: str) -> str:
    return f"pool:{pool_id}"


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)
class PoolActor:
    def __init__(self, pool_id: str, genesis: dict[str, Any], connector: Connector,
                 latency: LatencySettings, faults: FaultSettings, seed: int,
                 watcher: tuple[str, str] | None = None) -> None:  # fmt: skip
        """``watcher``: (name, namespace) of the actor told of every state change (the trigger book)."""
        self.pool_id = pool_id
        self._watcher_name = watcher
        self._watcher: Any = None
        self._connector = connector
        self._genesis = genesis
        self._latency, self._faults = latency, faults
        self._rng = random.Random(f"{seed}:{pool_id}")
        self._lock = asyncio.Lock()
        self._loaded = asyncio.Event()
        self._loading: asyncio.Task | None = None
        self._pool: Pool | None = None
        self._trades: PoolLedger | None = None
        # Bumped on every state change; observers cache by it. The incarnation
        # prefix keeps a restarted actor's versions distinct from its past.
        self._incarnation = uuid.uuid4().hex[:8]
        self._version = 0
        self._seq = 0  # the last trade written (we are its pool's only writer: no lock in PostgreSQL)
        self._holder: str | None = None  # order holding this pool for an atomic route
        self._held_at = 0.0
        self._lease: asyncio.TimerHandle | None = None
        # A held swap under way: its lease cannot end until the swap is written.
        self._held_swap = asyncio.Lock()
        self._moved = asyncio.Event()  # set, and replaced, on every change: wakes those who ``watch``
        self._closing = False  # the engine is stopping: ``watch`` answers at once

    async def _ensure_loaded(self) -> Pool:
        if self._pool is None:
            if self._loading is None:
                self._loading = asyncio.ensure_future(self._load())
            loading = self._loading
            try:
                await asyncio.shield(loading)
            except Exception:
                if self._loading is loading:
                    self._loading = None  # a failed load is not kept: the next call loads again
                raise
        assert self._pool is not None
        return self._pool

    async def _load(self) -> None:
        if self._trades is None:
            self._trades = await self._connector.pool_ledger()
        genesis = await self._trades.ensure_genesis(self.pool_id, self._genesis)
        self._seq, state = await self._trades.latest(self.pool_id)
        self._pool = restore_pool(state or genesis)
        self._changed()

    async def ready(self) -> str:
        await self._ensure_loaded()
        return self.pool_id

    async def observe(self, known_version: str | None = None) -> dict[str, Any]:
        """The pool's state as a quoting client sees it, after the quote latency.

        A client that already holds ``known_version`` gets no snapshot back
        (``snapshot`` None): the state has not moved since.
        """
        latency = self._latency
        delay = latency.quote_s + self._rng.uniform(0, latency.quote_jitter_s)
        if delay > 0:
            await asyncio.sleep(delay)
        version, snapshot = await self.state_since(known_version)
        return {"pool_id": self.pool_id, "version": version, "snapshot": snapshot, "now": time.time()}

    async def state_since(self, known_version: str | None = None) -> tuple[str, dict[str, Any] | None]:
        """The state's version, and its snapshot unless the caller's ``known_version`` is current."""
        pool = await self._ensure_loaded()
        version = f"{self._incarnation}:{self._version}"
        return version, None if known_version == version else pool.snapshot()

    async def watch(self, known_version: str | None = None, wait_s: float = 20.0) -> tuple[str, dict[str, Any] | None]:
        """``state_since``, once the state is no longer ``known_version`` (or ``wait_s`` passed: then the
        snapshot is None). A follower keeps one such call open: it hears of every change at once, and of
        this actor's death as the call failing."""
        await self._ensure_loaded()
        if known_version == f"{self._incarnation}:{self._version}" and not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), wait_s)
        return await self.state_since(known_version)

    async def stop_watching(self) -> None:
        """Answer every open ``watch`` now and every later one at once, so that this actor can exit (an
        actor waits for its running calls before it exits)."""
        self._closing = True
        self._moved.set()

    async def snapshot(self) -> dict[str, Any]:
        pool = await self._ensure_loaded()
        return pool.snapshot()

    async def summary(self) -> PoolSummary:
        return pool_summary(await self._ensure_loaded())

    async def swap(self, order: SwapOrder) -> Fill | Rejection:
        """Execute one leg of an order. Idempotent per (order_id, leg).

        Returns the fill, or a rejection when the pool refused it (slippage,
        liquidity, expiry). A ``held`` swap is part of an atomic multi-pool
        route: the caller already holds this pool (``hold``) and the transit
        delay was paid before that.
        """
        pool = await self._ensure_loaded()
        if order.held:
            # One held swap at a time (a re-sent one waits for the first), and the
            # lease waits for it: ended mid-write, it let another swap apply on top
            # of a trade not yet committed, which PostgreSQL might never see.
            async with self._held_swap:
                if self._holder != (order.holder or order.order_id):
                    return _rejected(LeaseExpired("the pool was not held for this order any more"))
                return await self._swap_locked(order, now=self._held_at)
        latency = self._latency
        if latency.execution_max_s > 0:
            await asyncio.sleep(self._rng.uniform(latency.execution_min_s, latency.execution_max_s))
        async with self._lock:
            if self._faults_apply():
                await self._front_run(pool, order.token_in)
            return await self._swap_locked(order, now=time.time())

    async def _swap_locked(self, order: SwapOrder, now: float) -> Fill | Rejection:
        # A leg filled already (the swap re-sent after its caller died) is found by the write's unique key:
        # no read first on the way every fill takes. Only a swap that would be refused looks for it first.
        if time.time() > order.expires_at:
            return await self._filled_else(order, _rejected(TransactionExpired("transaction expired before it landed")))
        pool = self._pool
        before = pool.snapshot()
        try:
            quote = pool.swap_exact_in(order.token_in, order.amount_in, order.min_out, now)
        except SimError as exc:
            return await self._filled_else(order, _rejected(exc))
        record = await self._record(
            self.pool_id,
            kind="order",
            order_id=order.order_id,
            leg=order.leg,
            token_in=order.token_in,
            amount_in=quote.amount_in,
            token_out=quote.token_out,
            amount_out=quote.amount_out,
            fee=quote.fee,
            sim_time=now,
            state_after=pool.snapshot(),
            details={
                "priceImpactBps": quote.price_impact_bps,
                "spotPriceBefore": quote.spot_price_before,
                "executionPrice": quote.execution_price,
                "txSignature": order.signature,
                **({"chain": order.chain} if order.chain else {}),
            },
        )
        if record.existing:
            # Filled elsewhere first (another pool won the unique key): undo ours.
            self._pool = restore_pool(before)
            self._changed()
            return Fill.from_trade(record, existing=True)
        self._changed()
        return Fill.from_trade(record, existing=False)

    async def _filled_else(self, order: SwapOrder, refusal: Rejection) -> Fill | Rejection:
        """The leg's fill if it has one already, else ``refusal``."""
        assert self._trades is not None
        existing = await self._trades.trade_for_order(order.order_id, order.leg)
        return refusal if existing is None else Fill.from_trade(existing, existing=True)

    async def _record(self, pool_id: str, **trade: Any) -> Any:
        """Write a trade that is already applied in memory, keeping memory equal to PG.

        A caller that goes away (its call cancelled) does not cut the write
        short: we wait for it. If it failed, the actor reloads its state from
        PG, which holds exactly the trades that were committed.
        """
        write = asyncio.ensure_future(self._trades.record_trade(pool_id, seq=self._seq + 1, **trade))
        write.add_done_callback(self._wrote)  # however our caller fares, the pool's seq moves on
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            try:
                await write
            except Exception:  # noqa: BLE001
                self._forget_state()
            raise
        except Exception:
            self._forget_state()
            raise

    def _wrote(self, write: asyncio.Future) -> None:
        if not write.cancelled() and write.exception() is None and not write.result().existing:
            self._seq = write.result().seq

    def _forget_state(self) -> None:
        """After a write whose outcome is unknown, PostgreSQL is the truth: reload it."""
        self._pool = None
        self._loading = None

    async def hold(self, order_id: str, lease_s: float, give_up_at: float | None = None,
                   at: float | None = None) -> HeldPool | Rejection:  # fmt: skip
        """Take this pool for one order until ``release`` (or the lease runs out).

        Multi-pool routes hold every pool they touch (in pool-id order, so two
        orders never wait on each other in a cycle), check the whole route on
        the states returned here, then swap with ``held=True``: all legs land
        on unchanged states at one instant, like one Solana transaction.

        ``give_up_at`` (epoch seconds) is when the caller stops waiting: a hold
        that gets the pool later lets it go at once, instead of keeping it
        locked for nobody until the lease runs out.

        ``at`` is the clock the held swaps run on (a block's time); by default, now.
        """
        await self._ensure_loaded()
        await self._lock.acquire()
        if give_up_at is not None and time.time() > give_up_at:
            self._lock.release()
            return _rejected(LeaseExpired("the pool was free only after the order stopped waiting for it"))
        self._holder = order_id
        self._held_at = time.time() if at is None else at
        loop = asyncio.get_running_loop()
        self._lease = loop.call_later(lease_s, self._lease_over, order_id)
        return HeldPool(self._pool.snapshot(), self._held_at)

    def _lease_over(self, order_id: str) -> None:
        if self._held_swap.locked():  # a held swap is being written: end the lease after it
            self._lease = asyncio.get_running_loop().call_later(0.05, self._lease_over, order_id)
            return
        self._release_if(order_id)

    async def release(self, order_id: str) -> bool:
        return self._release_if(order_id)

    def _release_if(self, order_id: str) -> bool:
        if self._holder != order_id:
            return False
        self._holder = None
        if self._lease is not None:
            self._lease.cancel()
            self._lease = None
        self._lock.release()
        return True

    async def apply_flow(self, kind: str, token_in: str, amount_in: int) -> dict[str, Any] | None:
        """A market trade (arbitrage or noise); None when the pool cannot take it."""
        await self._ensure_loaded()
        async with self._lock:
            return await self._apply_flow_locked(kind, token_in, amount_in)

    async def held_flow(self, holder: str, kind: str, token_in: str, amount_in: int) -> dict[str, Any] | None:
        """A trade with no order behind it (a searcher's, kind ``mev``) inside a block the holder executes."""
        await self._ensure_loaded()
        async with self._held_swap:
            if self._holder != holder:
                return None
            return await self._apply_flow_locked(kind, token_in, amount_in, now=self._held_at)

    async def _apply_flow_locked(self, kind: str, token_in: str, amount_in: int,
                                 now: float | None = None) -> dict[str, Any] | None:  # fmt: skip
        pool = self._pool  # the live object (a failed write may have replaced it)
        now = time.time() if now is None else now
        try:
            quote = pool.swap_exact_in(token_in, amount_in, 0, now)
        except SimError:
            return None
        await self._record(
            self.pool_id,
            kind=kind,
            order_id=None,
            leg=0,
            token_in=token_in,
            amount_in=quote.amount_in,
            token_out=quote.token_out,
            amount_out=quote.amount_out,
            fee=quote.fee,
            sim_time=now,
            state_after=pool.snapshot(),
            details={},
        )
        self._changed()
        return quote.to_dict()

    async def shock(self, move_bps: float) -> dict[str, Any]:
        """Move this pool's price of token_x by ``move_bps`` (signed) with a real trade, recorded as a shock.

        ``trade`` is None when the pool's liquidity cannot move it that far (nothing traded)."""
        await self._ensure_loaded()
        async with self._lock:
            pool = self._pool
            x, y = pool.token_x.symbol, pool.token_y.symbol
            before = pool.spot_price(x)
            sell = x if move_bps < 0 else y  # selling x pushes its price down; buying it (selling y), up
            # Selling y moves y's price down by b, i.e. x's up by b / (1 - b): ask for the move that makes +move_bps.
            bps = abs(move_bps) if move_bps < 0 else 10_000 * move_bps / (10_000 + move_bps)
            try:
                amount = amount_to_move_price(pool, sell, bps, time.time())
            except SimError:
                amount = 0
            traded = await self._apply_flow_locked("shock", sell, amount) if amount > 0 else None
            return {"poolId": self.pool_id, "token": x, "quoteToken": y, "priceBefore": before,
                    "priceAfter": self._pool.spot_price(x), "trade": traded}  # fmt: skip

    def _faults_apply(self) -> bool:
        faults = self._faults
        return faults.front_run_bps > 0 and self._rng.random() < faults.front_run_probability

    async def _front_run(self, pool: Pool, token_in: str) -> None:
        faults = self._faults
        amount = amount_to_move_price(pool, token_in, faults.front_run_bps, time.time())
        await self._apply_flow_locked("noise", token_in, amount)

    async def reserves(self) -> dict[str, int]:
        pool = await self._ensure_loaded()
        return pool.reserves()

    async def settled_reserves(self) -> dict[str, int]:
        """The reserves once no trade is being applied or written (and no route holds the pool):
        what PostgreSQL holds by then. ``reserves`` may include a trade still being written."""
        await self._ensure_loaded()
        async with self._lock:
            return (await self._ensure_loaded()).reserves()  # a write that failed meanwhile reloaded it

    def _changed(self) -> None:
        """The state moved: a new version for observers' caches, fresh metrics, a push to the watcher."""
        self._version += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        self._export_metrics()
        self._push()

    def _push(self) -> None:
        if self._watcher_name is None or self._pool is None:
            return
        if self._watcher is None:
            name, namespace = self._watcher_name
            try:
                self._watcher = ray.get_actor(name, namespace=namespace)
            except ValueError:
                return  # not created yet: it pulls every pool's state when it starts
        # Fire and forget: the book coalesces, and pulls again when it restarts.
        self._watcher.pool_moved.remote(self.pool_id, f"{self._incarnation}:{self._version}", self._pool.snapshot())

    def _export_metrics(self) -> None:
        pool = self._pool
        if pool is None:
            return
        metrics.pool_price().set(pool.spot_price(pool.token_x.symbol), tags={"pool": self.pool_id})
        for token in pool.tokens:
            held = pool.reserves()[token.symbol] / token.one
            metrics.pool_reserve().set(held, tags={"pool": self.pool_id, "token": token.symbol})
