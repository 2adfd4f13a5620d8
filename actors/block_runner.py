"""Executing one block against the pool actors: hold its pools, apply its swaps in block order, release.

The chain packs a block synchronously, executing it on copies of the pools
taken when they were held (``sim.chain_swaps.BlockExecution``); nothing else
can move a held pool, so the copies are exact. Then every swap that succeeded
is applied to its pool actor in block order on the existing idempotent path
(a held swap, recorded once per (order, leg) in ``pool_trades``; a searcher's
trade as a ``mev`` flow), and the pools are released.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import ray

from actors.pool_actor import pool_actor_name
from engine.plans import Fill, Rejection, SwapOrder
from sim.chain_swaps import Applied, SwapIntent

log = logging.getLogger(__name__)

HOLD_TIMEOUT_S = 2.0
CALL_TIMEOUT_S = 5.0
LEASE_S = 10.0


class BlockRunner:
    def __init__(self, pools: dict[str, Any], namespace: str | None) -> None:
        self._pools = dict(pools)
        self._namespace = namespace
        self._kinds: dict[str, str] = {}

    def _pool(self, pool_id: str) -> Any | None:
        handle = self._pools.get(pool_id)
        if handle is None:  # launched during the run
            try:
                handle = self._pools[pool_id] = ray.get_actor(pool_actor_name(pool_id), namespace=self._namespace)
            except ValueError:
                return None
        return handle

    async def kind(self, pool_id: str) -> str | None:
        """A pool's kind (cpmm, dlmm), for its swap's compute-unit limit."""
        if pool_id not in self._kinds:
            handle = self._pool(pool_id)
            if handle is None:
                return None
            try:
                snapshot = await asyncio.wait_for(handle.snapshot.remote(), CALL_TIMEOUT_S)
            except Exception:  # noqa: BLE001 — unknown for now: the default limit
                return None
            self._kinds[pool_id] = str(snapshot.get("type"))
        return self._kinds[pool_id]

    async def hold(self, pool_ids: Sequence[str], holder: str,
                   at: float) -> tuple[dict[str, dict], dict[str, float]]:  # fmt: skip
        """Hold the pools (in id order: no cycle with an order's atomic route), their held swaps on the
        block's time ``at``; (snapshots, clocks)."""
        snapshots: dict[str, dict] = {}
        clocks: dict[str, float] = {}
        for pool_id in sorted(pool_ids):
            handle = self._pool(pool_id)
            if handle is None:
                continue
            give_up = time.time() + HOLD_TIMEOUT_S
            try:
                seen = await asyncio.wait_for(handle.hold.remote(holder, LEASE_S, give_up, at), HOLD_TIMEOUT_S + 1)
            except Exception as exc:  # noqa: BLE001 — its transactions fail in this block: AccountNotFound
                log.warning("block %s: pool %s could not be held (%r)", holder, pool_id, exc)
                continue
            if isinstance(seen, Rejection):
                continue
            snapshots[pool_id], clocks[pool_id] = seen.snapshot, seen.now
        return snapshots, clocks

    async def release(self, pool_ids: Sequence[str], holder: str) -> None:
        calls = [self._pool(pid) for pid in pool_ids]
        releases = [handle.release.remote(holder) for handle in calls if handle is not None]
        if releases:
            await asyncio.wait([asyncio.ensure_future(asyncio.wait_for(r, CALL_TIMEOUT_S)) for r in releases])

    async def apply(self, applied: Sequence[Applied], holder: str,
                    stamps: dict[str, dict[str, Any]]) -> dict[str, tuple[list[Fill], str | None]]:  # fmt: skip
        """Apply the block's swaps in order; each order's (fills, error) by signature."""
        results: dict[str, tuple[list[Fill], str | None]] = {}
        for item in applied:
            intent = item.tx.intent
            assert isinstance(intent, SwapIntent)
            if intent.order_id is None:
                for leg in item.legs:
                    await self._flow(leg.pool_id, holder, leg.token_in, leg.amount_in)
                continue
            fills: list[Fill] = []
            error: str | None = None
            for leg in item.legs:
                order = SwapOrder(intent.order_id, leg.leg, leg.token_in, leg.amount_in, leg.amount_out,
                                  time.time() + 3600, item.tx.signature, held=True, holder=holder,
                                  chain=stamps.get(item.tx.signature))  # fmt: skip
                result = await self._swap(leg.pool_id, order)
                if isinstance(result, Rejection):
                    error = f"{result.code}: {result.message}"
                    break
                fills.append(result)
            results[item.tx.signature] = (fills, error)
        return results

    async def _swap(self, pool_id: str, order: SwapOrder) -> Fill | Rejection:
        handle = self._pool(pool_id)
        if handle is None:
            return Rejection("POOL_UNAVAILABLE", f"no pool {pool_id}", True)
        try:
            return await asyncio.wait_for(handle.swap.remote(order), CALL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 — unknown outcome: the ledger knows
            return Rejection("POOL_UNAVAILABLE", f"{pool_id}: {type(exc).__name__}", True)

    async def _flow(self, pool_id: str, holder: str, token_in: str, amount_in: int) -> None:
        handle = self._pool(pool_id)
        if handle is None:
            return
        try:
            await asyncio.wait_for(handle.held_flow.remote(holder, "mev", token_in, amount_in), CALL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 — a searcher's trade lost with its pool: nobody's order
            log.warning("block %s: the searcher's trade on %s was lost (%r)", holder, pool_id, exc)
