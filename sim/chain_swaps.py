"""Swaps as chain transactions: what a swap transaction carries, and its execution in a block.

A :class:`SwapIntent` is the payload of a ``sim.chain.Transaction``: one or
more legs against pools, all or nothing (a multi-leg route is one
transaction), with the order's minimum out. :class:`BlockExecution` is a
``sim.chain.Executor`` over copies of the pools taken for one block: it runs
each landed transaction in block order on them, so a swap sees everything
ordered before it in its slot, and records what applied, for the caller to
apply to the real pools in the same order. A failed transaction changes no
pool; a failing bundle rolls back whole.

Errors are the programs' own names (``PROGRAM_ERRORS``): a swap that gets
less than its minimum fails with the pool program's slippage error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sim.chain import Execution, Transaction
from sim.pools import restore_pool
from sim.pools.base import Pool, SimError

# (program error name, custom error code) by pool kind; a route of several pools goes through the
# aggregator's program (Jupiter), whose slippage check is on the whole route.
SLIPPAGE_ERRORS: dict[str, tuple[str, int]] = {
    "cpmm": ("ExceededSlippage", 6005),  # Raydium CPMM, 0x1775
    "dlmm": ("ExceededAmountSlippageTolerance", 6003),  # Meteora DLMM, 0x1773
}
ROUTE_SLIPPAGE_ERROR = ("SlippageToleranceExceeded", 6001)  # Jupiter, 0x1771
LIQUIDITY_ERRORS: dict[str, tuple[str, int]] = {"dlmm": ("PairInsufficientLiquidity", 6012)}
POOL_MISSING = "AccountNotFound"  # the pool could not be read for this block


@dataclass(frozen=True, slots=True)
class SwapLeg:
    pool_id: str
    token_in: str
    amount_in: int  # a chained leg sells what the leg before it bought instead


@dataclass(frozen=True, slots=True)
class SwapIntent:
    """One swap transaction: ``order_id`` None is a searcher's trade (no order behind it)."""

    order_id: str | None
    legs: tuple[SwapLeg, ...]
    min_out: int = 0
    chained: bool = False  # two-hop: each leg sells the previous leg's output

    @property
    def pool_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(leg.pool_id for leg in self.legs))


@dataclass(frozen=True, slots=True)
class LegResult:
    """One leg as it executed in the block (exact amounts, on the pool as it was in its slot)."""

    leg: int
    pool_id: str
    token_in: str
    amount_in: int
    token_out: str
    amount_out: int


@dataclass(frozen=True, slots=True)
class Applied:
    """A transaction that succeeded in the block, with its legs: to apply to the real pools, in order."""

    tx: Transaction
    legs: tuple[LegResult, ...]


def program_error(kind: str | None, legs: int, exc: SimError) -> str:
    """The program error a failed swap reports, as ``Name (code)``."""
    if exc.code == "SLIPPAGE_EXCEEDED":
        name, code = ROUTE_SLIPPAGE_ERROR if legs > 1 else SLIPPAGE_ERRORS.get(kind or "", ("SlippageExceeded", 0))
        return f"{name} ({code})"
    if exc.code == "INSUFFICIENT_LIQUIDITY" and kind in LIQUIDITY_ERRORS:
        name, code = LIQUIDITY_ERRORS[kind]
        return f"{name} ({code})"
    return exc.code


class _Failed(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class BlockExecution:
    """Executes one block's transactions on copies of its pools (``sim.chain.Executor``)."""

    pools: dict[str, Pool]
    now: Mapping[str, float]  # each pool's clock, as its program sees it in this block
    applied: list[Applied] = field(default_factory=list)

    @classmethod
    def of(cls, snapshots: Mapping[str, dict], now: Mapping[str, float]) -> BlockExecution:
        return cls({pid: restore_pool(snapshot) for pid, snapshot in snapshots.items()}, dict(now))

    def __call__(self, txs: Sequence[Transaction], atomic: bool) -> list[Execution]:
        saved = {pid: pool.snapshot() for pid, pool in self.pools.items()} if atomic else {}
        first = len(self.applied)
        results = [self._one(tx) for tx in txs]
        if atomic and not all(result.ok for result in results):
            self.pools.update({pid: restore_pool(snapshot) for pid, snapshot in saved.items()})
            del self.applied[first:]
        return results

    def _one(self, tx: Transaction) -> Execution:
        intent = tx.intent
        if not isinstance(intent, SwapIntent):
            return Execution()  # not a swap: nothing of ours to move
        saved = {pid: self.pools[pid].snapshot() for pid in intent.pool_ids if pid in self.pools}
        try:
            legs = self._legs(intent)
        except _Failed as failed:
            self.pools.update({pid: restore_pool(snapshot) for pid, snapshot in saved.items()})
            return Execution(ok=False, error=failed.error)
        self.applied.append(Applied(tx, legs))
        return Execution()

    def _legs(self, intent: SwapIntent) -> tuple[LegResult, ...]:
        results: list[LegResult] = []
        amount, total = 0, 0
        for index, leg in enumerate(intent.legs):
            pool = self.pools.get(leg.pool_id)
            if pool is None:
                raise _Failed(POOL_MISSING)
            amount_in = amount if intent.chained and index else leg.amount_in
            single = len(intent.legs) == 1
            try:
                quote = pool.swap_exact_in(leg.token_in, amount_in, intent.min_out if single else 0,
                                           self.now.get(leg.pool_id, 0.0))  # fmt: skip
            except SimError as exc:
                raise _Failed(program_error(pool.kind, len(intent.legs), exc)) from exc
            results.append(LegResult(index, leg.pool_id, leg.token_in, quote.amount_in, quote.token_out,
                                     quote.amount_out))  # fmt: skip
            amount = quote.amount_out
            total = amount if intent.chained else total + amount
        if len(intent.legs) > 1 and total < intent.min_out:
            name, code = ROUTE_SLIPPAGE_ERROR
            raise _Failed(f"{name} ({code})")
        return tuple(results)


__all__ = [
    "Applied", "BlockExecution", "LegResult", "POOL_MISSING", "ROUTE_SLIPPAGE_ERROR", "SLIPPAGE_ERRORS",
    "SwapIntent", "SwapLeg", "program_error",
]  # fmt: skip
