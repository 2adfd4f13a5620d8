"""The lifecycle on the real chain desk (``engine.chain_desk``, ``sim.chain``), with its pools in memory.

``MemoryBlockPools`` is the block runner's in-memory twin: it holds nothing
(one event loop: nothing else runs between the hold and the release) and
applies a block's swaps to the same ``sim`` pools the fake venues hold,
recording each order's fill once per (order, leg) in the fake ledger, as the
pool actors do in PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from engine.chain_config import DEFAULT_CHAIN_CONFIG, ChainConfig, chain_config_with
from engine.chain_desk import ChainDesk
from engine.chain_tx import Landing, TxTerms
from engine.lifecycle import LifecycleConfig, LifecyclePorts, OrderLifecycle
from engine.plans import Fill
from engine.ports import ChainUnavailable
from engine.records import TradeRecord
from sim.chain import Transaction
from sim.chain_swaps import Applied, SwapIntent
from sim.orders import RetryPolicy
from tests.unit.lifecycle_fakes import TOKENS, FakeClock, FakeLedger, FakeVenues, World, make_world

QUIET = {"load": 0.0, "bundles_per_slot": 0.0, "hot_load": 0.0, "ingress_loss": 0.0, "wave_sigma": 0.0}


def chain_config(*, chain: dict[str, Any] | None = None, mev: dict[str, Any] | None = None,
                 presets: dict[str, dict[str, Any]] | None = None, preset: str = "calm") -> ChainConfig:  # fmt: skip
    overrides: dict[str, Any] = {"chain": {"skip_rate": 0.0, **(chain or {})}, "preset": preset,
                                 "presets": {"calm": QUIET, **(presets or {})}}  # fmt: skip
    if mev:
        overrides["mev"] = mev
    return chain_config_with(DEFAULT_CHAIN_CONFIG, overrides)


class MemoryBlockPools:
    def __init__(self, venues: FakeVenues, ledger: FakeLedger, clock: FakeClock) -> None:
        self.venues, self.ledger, self.clock = venues, ledger, clock
        self.mev_trades: list[tuple[str, str, int]] = []
        self.blocks = 0
        self.held_at = 0.0

    async def kind(self, pool_id: str) -> str | None:
        pool = self.venues.pools.get(pool_id)
        return None if pool is None else pool.kind

    async def hold(self, pool_ids: Sequence[str], holder: str,
                   at: float) -> tuple[dict[str, dict], dict[str, float]]:  # fmt: skip
        self.blocks += 1
        self.held_at = at  # the held swaps run on the block's time, as the pool actors' do
        pools = {pid: self.venues.pools[pid] for pid in pool_ids if pid in self.venues.pools}
        return {pid: p.snapshot() for pid, p in pools.items()}, {pid: at for pid in pools}

    async def apply(self, applied: Sequence[Applied], holder: str,
                    stamps: dict[str, dict[str, Any]]) -> dict[str, tuple[list[Fill], str | None]]:  # fmt: skip
        out: dict[str, tuple[list[Fill], str | None]] = {}
        for item in applied:
            intent = item.tx.intent
            assert isinstance(intent, SwapIntent)
            fills: list[Fill] = []
            for leg in item.legs:
                pool = self.venues.pools[leg.pool_id]
                if intent.order_id is None:
                    pool.swap_exact_in(leg.token_in, leg.amount_in, 0, self.held_at)
                    self.mev_trades.append((leg.pool_id, leg.token_in, leg.amount_in))
                    continue
                existing = self.ledger.trades.get((intent.order_id, leg.leg))
                if existing is not None:
                    fills.append(Fill.from_trade(existing, existing=True))
                    continue
                quote = pool.swap_exact_in(leg.token_in, leg.amount_in, leg.amount_out, self.held_at)
                assert quote.amount_out == leg.amount_out, "the block's copy and the pool disagree"
                record = TradeRecord(
                    pool_id=leg.pool_id, seq=len(self.ledger.trades) + 1, kind="order", order_id=intent.order_id,
                    leg=leg.leg, token_in=leg.token_in, amount_in=quote.amount_in, token_out=quote.token_out,
                    amount_out=quote.amount_out, fee=quote.fee, sim_time=self.held_at,
                    state_after=pool.snapshot(), created_at=datetime.fromtimestamp(self.clock.time(), UTC),
                    details={"priceImpactBps": quote.price_impact_bps, "txSignature": item.tx.signature,
                             "chain": stamps.get(item.tx.signature)},
                )  # fmt: skip
                self.ledger.trades[(intent.order_id, leg.leg)] = record
                fills.append(Fill.from_trade(record, existing=False))
            if intent.order_id is not None:
                out[item.tx.signature] = (fills, None)
        return out

    async def release(self, pool_ids: Sequence[str], holder: str) -> None:
        return None


class DeskChain:
    """The desk as the lifecycle's ``ChainPort``; ``down``: it does not answer (dead, restarting)."""

    def __init__(self, desk: ChainDesk) -> None:
        self.desk = desk
        self.down = False
        self.sent: list[str] = []

    async def prepare(self, pool_ids: tuple[str, ...], *, priority_fee: str | int | None,
                      max_priority_fee_lamports: int | None, jito_tip_lamports: int) -> TxTerms:  # fmt: skip
        if self.down:
            raise ChainUnavailable("RayActorError")
        return await self.desk.prepare(pool_ids, priority_fee=priority_fee,
                                       max_priority_fee_lamports=max_priority_fee_lamports,
                                       jito_tip_lamports=jito_tip_lamports)  # fmt: skip

    async def transact(self, tx: Transaction, *, timeout: float) -> Landing:
        if self.down:
            raise ChainUnavailable("RayActorError")
        self.sent.append(tx.signature)
        return await self.desk.transact(tx)


class ChainWorld:
    def __init__(self, config: ChainConfig, *, pool_ids: tuple[str, ...], seed: int = 3,
                 retry: RetryPolicy | None = None) -> None:  # fmt: skip
        self.world: World = make_world(pool_ids=pool_ids, retry=retry)
        w = self.world
        self.pools = MemoryBlockPools(w.venues, w.ledger, w.clock)
        self.config, self.seed = config, seed
        self.desk = ChainDesk(config, seed=seed, genesis_time=w.clock.now - 60.0, pools=self.pools, clock=w.clock)
        self.chain = DeskChain(self.desk)
        self.lifecycle = self._lifecycle()

    def _lifecycle(self) -> OrderLifecycle:
        w = self.world
        ports = LifecyclePorts(orders=w.book, trades=w.ledger, events=w.feed, router=w.router, venues=w.venues,
                               clock=w.clock, metrics=w.metrics, triggers=_NoTriggers(), chain=self.chain)  # fmt: skip
        return OrderLifecycle(ports, TOKENS, LifecycleConfig(retry=w.lifecycle._config.retry))

    def restart_chain(self) -> None:
        """A new chain actor: the same seed and genesis, nothing pending."""
        w = self.world
        self.desk = ChainDesk(self.config, seed=self.seed, genesis_time=self.desk.chain.params.genesis_time,
                              pools=self.pools, clock=w.clock)  # fmt: skip
        self.chain.desk, self.chain.down = self.desk, False

    def with_options(self, order_id: str, **options: Any) -> None:
        book = self.world.book
        book.put(replace(book.orders[order_id], tx_options=options))

    async def settle(self) -> None:
        """Let the desk's ticker finish whatever is pending."""
        while self.desk.chain.pending_count:
            await asyncio.sleep(0)
            await self.world.clock.sleep(self.desk.chain.params.slot_s)
            await self.desk.catch_up()


class _NoTriggers:
    async def arm(self, order_id: str) -> None:
        return None
