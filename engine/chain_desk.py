"""The chain as a service: an RPC node over ``sim.chain``, its clock, and the blocks executed on the pools.

``ChainDesk`` holds one :class:`sim.chain.Chain`. It does nothing while idle:
a ticker runs only while transactions are pending, waking when the slot in
progress ends; otherwise every call first catches the chain up to now
(``advance_to``, which costs little for idle slots). Each slot with pending
transactions: hold the pools they write (``BlockPools``) at the block's time
(``block_time``, whole seconds, the clock their programs see), pack the block on
copies of them (``sim.chain_swaps.BlockExecution``; the searcher plans its
sandwiches on the same copies), apply what succeeded to the pools in block
order, release them, and answer each transaction's waiters with its
:class:`engine.chain_tx.Landing`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import replace
from collections.abc import Sequence
from typing import Any, Protocol

from sim.chain import AlreadyProcessed, Block, BlockhashNotFound, Chain, RpcQueueFull, Transaction, TxStatus
from sim.chain_fees import MAX_CU_PER_TX, fee_percentile, priority_fee_for, unit
from sim.chain_swaps import Applied, BlockExecution
from sim.mev import SandwichSearcher
from sim.sandwich_plans import sandwich_port

from engine.chain_config import ChainConfig
from engine.chain_tx import EXPIRED, FAILED, LANDED, REFUSED, REVERTED, Landing, TxTerms
from engine.plans import Fill
from engine.ports import Clock

log = logging.getLogger(__name__)

PERCENTILES = (25, 50, 75, 95)


class BlockPools(Protocol):
    """The pools as a block sees them (``actors.block_runner.BlockRunner`` on Ray)."""

    async def kind(self, pool_id: str) -> str | None: ...

    async def hold(self, pool_ids: Sequence[str], holder: str,
                   at: float) -> tuple[dict[str, dict], dict[str, float]]: ...  # fmt: skip

    async def apply(self, applied: Sequence[Applied], holder: str,
                    stamps: dict[str, dict[str, Any]]) -> dict[str, tuple[list[Fill], str | None]]: ...  # fmt: skip

    async def release(self, pool_ids: Sequence[str], holder: str) -> None: ...


class ChainDesk:
    KEEP_OUTCOMES = 100_000

    def __init__(self, config: ChainConfig, *, seed: int, genesis_time: float, pools: BlockPools,
                 clock: Clock) -> None:  # fmt: skip
        self.config = config
        self._pools, self._clock = pools, clock
        self._block: BlockExecution | None = None  # the block being packed: the searcher plans on it
        searcher = None
        if config.mev.rate > 0:
            port = sandwich_port(lambda: self._block.pools if self._block else {},
                                 lambda: self._block.now if self._block else {})  # fmt: skip
            searcher = SandwichSearcher(port, config.mev.to_params(), seed=seed)
        self.chain = Chain(config.params(seed=seed, genesis_time=genesis_time), searcher=searcher)
        self._txs: dict[str, Transaction] = {}  # pending, ours
        self._sends: dict[str, list[dict[str, Any]]] = {}
        self._waiters: dict[str, list[asyncio.Future[Landing]]] = {}
        self._outcomes: OrderedDict[str, Landing] = OrderedDict()
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self.blocks_executed = 0

    # -- what the executors ask -------------------------------------------------------------------
    async def prepare(self, pool_ids: Sequence[str], *, priority_fee: str | int | None = None,
                      max_priority_fee_lamports: int | None = None, jito_tip_lamports: int = 0) -> TxTerms:  # fmt: skip
        await self.catch_up()
        spec = self.config.transactions
        kinds = [await self._pools.kind(pid) for pid in pool_ids]
        cu_limit = min(MAX_CU_PER_TX, sum(spec.cu_limit_for(kind or "") for kind in kinds) or spec.default_cu_limit)
        level = spec.priority_fee if priority_fee is None else priority_fee
        cap = spec.max_priority_fee_lamports if max_priority_fee_lamports is None else max_priority_fee_lamports
        account = pool_ids[0] if spec.fee_estimate == "account" and pool_ids else None
        price = priority_fee_for(level, self.chain.recent_fees(account), cu_limit=cu_limit,
                                 max_priority_fee_lamports=cap)  # fmt: skip
        recent = self.chain.latest_blockhash()
        p = self.chain.params
        blocks_left = recent.last_valid_block_height - self.chain.height
        return TxTerms(recent.blockhash, recent.last_valid_block_height, cu_limit, price, level, jito_tip_lamports,
                       expires_in_s=blocks_left * p.slot_s / (1 - p.skip_rate), slot=recent.slot)  # fmt: skip

    async def transact(self, tx: Transaction) -> Landing:
        """Send (or find) ``tx``; its landing, once it landed, expired or reverted."""
        signature = tx.signature
        if signature in self._outcomes:
            return self._outcomes[signature]
        if signature not in self._txs:
            await self.catch_up()
            now = self._clock.time()
            try:
                self.chain.submit(tx, now)
            except BlockhashNotFound as exc:
                return Landing(EXPIRED, signature, error=f"BlockhashNotFound: {exc}")
            except AlreadyProcessed:
                return Landing(REFUSED, signature, error="ALREADY_PROCESSED")  # finished, outcome forgotten
            except RpcQueueFull as exc:
                return Landing(REFUSED, signature, error=f"RPC_QUEUE_FULL: {exc}")
            self._txs[signature] = tx
            self._sends[signature] = [{"attempt": 1, "at": now, "received": True, "bundle": True}] if tx.protected else []
            self._start_ticker()
        waiter: asyncio.Future[Landing] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(signature, []).append(waiter)
        return await asyncio.shield(waiter)

    # -- what the API asks ------------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        await self.catch_up()
        chain, fees = self.chain, self.chain.recent_fees()
        stats = chain.stats
        return {
            "slot": chain.slot, "blockHeight": chain.height, "slotTimeS": chain.params.slot_s,
            "congestion": chain.congestion.name, "load": round(chain.load(), 4),
            "recentFees": {f"p{q}": fee_percentile(fees, q) for q in PERCENTILES} | {"samples": int(len(fees))},
            "pending": chain.pending_count, "submitted": stats["submitted"], "landed": stats["landed"],
            "failed": stats["failed"], "dropped": stats["expired"] + stats["reverted"], "expired": stats["expired"],
            "reverted": stats["reverted"], "sandwiched": stats["sandwiched"], "skippedSlots": stats["skipped_slots"],
            "mevRate": self.config.mev.rate,
        }  # fmt: skip

    async def set_congestion(self, preset: str) -> dict[str, Any]:
        """Switch the other traffic to a preset now (KeyError names the known ones)."""
        congestion = self.config.congestion(preset)
        await self.catch_up()
        self.chain.set_congestion(congestion)
        return await self.info()

    # -- time -------------------------------------------------------------------------------------
    async def catch_up(self) -> None:
        """Produce every slot that ended by now (executing those with transactions of ours)."""
        async with self._lock:
            while True:
                now = self._clock.time()
                if self.chain.slot_start(self.chain.slot + 1) > now + 1e-9:
                    return
                if not self.chain.pending_count:
                    self.chain.advance_to(now)
                    return
                await self._produce_slot()

    def _start_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        while self.chain.pending_count:
            await self._clock.sleep(max(0.0, self.chain.slot_start(self.chain.slot + 1) - self._clock.time()))
            try:
                await self.catch_up()
            except Exception:  # noqa: BLE001 — a slot that broke is retried on the next tick
                log.exception("the chain could not produce slot %d", self.chain.slot)
                await self._clock.sleep(self.chain.params.slot_s)

    async def _produce_slot(self) -> None:
        slot = self.chain.slot
        holder = f"chain:block:{slot}"
        accounts = sorted({account for tx in self._txs.values() for account in tx.accounts})
        # The pools run on the block's time, as their programs do: the copies the block packs on
        # and the pools its swaps are applied to see the same clock (the held pools report it).
        snapshots, clocks = await self._pools.hold(accounts, holder, at=self.chain.block_time(slot))
        try:
            self._block = BlockExecution.of(snapshots, clocks)
            block = self.chain.next_slot(self._block)
            applied, self._block = self._block.applied, None
            if block is not None:
                await self._settle(block, applied, holder)
        finally:
            self._block = None
            await self._pools.release(list(snapshots), holder)

    async def _settle(self, block: Block, applied: list[Applied], holder: str) -> None:
        self.blocks_executed += 1
        for send in block.sends:
            if send.signature in self._sends:
                self._sends[send.signature].append({"attempt": send.attempt, "at": send.at, "received": send.received})
        landed_at = self.chain.slot_start(block.slot + 1)
        ours = {item.tx.signature: item for item in block.landed if item.tx.signature in self._txs}
        stamps = {sig: self._landing(LANDED, item, block, landed_at).stamp() for sig, item in ours.items()}
        fills = await self._pools.apply(applied, holder, stamps)
        for signature, item in ours.items():
            landing = self._landing(LANDED if item.ok else FAILED, item, block, landed_at)
            if item.ok:
                got, error = fills.get(signature, ([], "the swap was not applied"))
                landing = _with_fills(landing, got, error)
            self._finish(signature, landing)
        for dropped in block.dropped:
            signature = dropped.tx.signature
            if signature in self._txs:
                status = EXPIRED if dropped.status is TxStatus.EXPIRED else REVERTED
                self._finish(signature, Landing(status, signature, error=dropped.error,
                                                sends=tuple(self._sends.get(signature, ()))))  # fmt: skip

    def _landing(self, status: str, item: Any, block: Block, landed_at: float) -> Landing:
        return Landing(
            status, item.tx.signature, error=item.error, slot=block.slot, height=block.height,
            block_time=block.block_time, landed_at=landed_at, finalizes_at=self._finalizes_at(block.slot),
            fees=item.fees.to_dict(), cu_consumed=item.cu_consumed, sends=tuple(self._sends.get(item.tx.signature, ())),
            role=item.role,
        )  # fmt: skip

    def _finalizes_at(self, slot: int) -> float:
        """When the block of ``slot`` has ``finalize_depth`` blocks on top: which slots skip is the seed's."""
        p, blocks = self.chain.params, 0
        while blocks < p.finalize_depth:
            slot += 1
            blocks += unit("skip", p.seed, slot) >= p.skip_rate
        return self.chain.slot_start(slot + 1)

    def _finish(self, signature: str, landing: Landing) -> None:
        self._txs.pop(signature, None)
        self._sends.pop(signature, None)
        self._outcomes[signature] = landing
        if len(self._outcomes) > self.KEEP_OUTCOMES:
            self._outcomes.popitem(last=False)
        for waiter in self._waiters.pop(signature, []):
            if not waiter.done():
                waiter.set_result(landing)


def _with_fills(landing: Landing, fills: list[Fill], error: str | None) -> Landing:
    return replace(landing, fills=tuple(fills), fill_error=error)


__all__ = ["BlockPools", "ChainDesk"]
