"""ChainActor "chain": the simulated chain (``engine.chain_desk``) in one actor, looked up by name.

Idle, it does nothing: a timer runs only while transactions are pending,
and any call first catches the chain up to now. Restarted (``max_restarts``),
it is the same chain: every draw is fixed by the seed and the slot, and the
genesis time is an argument, so blockhashes and slots are what they were.
What was pending is gone, as from a restarted RPC node: each waiting executor
sees the call fail, asks the trade ledger whether its swap landed, and
re-sends or retries.
"""

from __future__ import annotations

from typing import Any

import ray

from actors.block_runner import BlockRunner
from engine.chain_config import ChainConfig
from engine.chain_desk import ChainDesk
from engine.chain_tx import Landing, TxTerms
from engine.clock import SystemClock
from sim.chain import Transaction

CHAIN_NAME = "chain"


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)
class ChainActor:
    def __init__(self, config: ChainConfig, seed: int, genesis_time: float, pools: dict[str, Any],
                 namespace: str | None = None) -> None:  # fmt: skip
        self._desk = ChainDesk(config, seed=seed, genesis_time=genesis_time, pools=BlockRunner(pools, namespace),
                               clock=SystemClock())  # fmt: skip

    async def ready(self) -> int:
        await self._desk.catch_up()
        return self._desk.chain.slot

    async def prepare(self, pool_ids: tuple[str, ...], priority_fee: str | int | None,
                      max_priority_fee_lamports: int | None, jito_tip_lamports: int) -> TxTerms:  # fmt: skip
        return await self._desk.prepare(pool_ids, priority_fee=priority_fee,
                                        max_priority_fee_lamports=max_priority_fee_lamports,
                                        jito_tip_lamports=jito_tip_lamports)  # fmt: skip

    async def transact(self, tx: Transaction) -> Landing:
        return await self._desk.transact(tx)

    async def info(self) -> dict[str, Any]:
        return await self._desk.info()

    async def set_congestion(self, preset: str) -> dict[str, Any]:
        return await self._desk.set_congestion(preset)
