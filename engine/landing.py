"""Landing an order's swap on the chain: take the terms at ``building``, send and wait at ``submitted``.

The chain executes a landed swap in its slot (the pools record the fill once
per (order, leg), as without the chain), so the fills come back with the
landing. A run that resumes a submitted order first asks the trade ledger:
a transaction that landed before the executor died is found there, with
where it landed; otherwise the same transaction is sent again (the chain
answers what became of it, or waits for it, or takes it anew while its
blockhash lasts). Outcomes that are not a fill become failures:
``BLOCKHASH_EXPIRED`` (transient: signed again with a fresh blockhash on the
retry), the pool program's slippage error as ``SLIPPAGE_EXCEEDED`` (fees paid),
``BUNDLE_REVERTED``, ``RPC_QUEUE_FULL``, ``CHAIN_UNAVAILABLE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.chain_tx import EXPIRED, FAILED, LANDED, REFUSED, REVERTED, Landing, TxTerms, swap_transaction
from engine.plans import ExecutionPlan, Fill, OrderFailure
from engine.ports import ChainPort, ChainUnavailable, Clock, TradeLedger
from engine.records import OrderRecord

SLIPPAGE_NAMES = ("ExceededSlippage", "ExceededAmountSlippageTolerance", "SlippageToleranceExceeded")


@dataclass(frozen=True, slots=True)
class LandedSwap:
    fills: list[Fill]
    details: dict[str, Any]  # what the confirmed event shows of the landing


def tx_options(order: OrderRecord) -> dict[str, Any]:
    return dict(order.tx_options or {})


class ChainLanding:
    def __init__(self, chain: ChainPort, trades: TradeLedger, clock: Clock, *, margin_s: float = 10.0) -> None:
        self._chain, self._trades, self._clock, self._margin_s = chain, trades, clock, margin_s

    async def terms(self, order: OrderRecord, plan: ExecutionPlan) -> TxTerms:
        options = tx_options(order)
        try:
            return await self._chain.prepare(
                plan.pool_ids, priority_fee=options.get("priorityFee"),
                max_priority_fee_lamports=options.get("maxPriorityFeeLamports"),
                jito_tip_lamports=int(options.get("jitoTipLamports") or 0),
            )  # fmt: skip
        except ChainUnavailable as exc:
            raise OrderFailure("CHAIN_UNAVAILABLE", f"no recent blockhash: {exc}"[:300], True) from exc

    async def land(self, order_id: str, plan: ExecutionPlan) -> LandedSwap:
        recorded = await self._recorded(order_id, plan)
        if recorded is not None:
            return recorded
        assert plan.tx is not None and plan.signature is not None and plan.expires_at is not None
        terms = TxTerms.from_json(plan.tx)
        tx = swap_transaction(plan.signature, order_id, plan.route, plan.min_out, terms)
        timeout = max(1.0, plan.expires_at - self._clock.time()) + self._margin_s
        try:
            landing: Landing = await self._chain.transact(tx, timeout=timeout)
        except ChainUnavailable as exc:
            recorded = await self._recorded(order_id, plan)  # it may have landed before the chain went away
            if recorded is not None:
                return recorded
            raise OrderFailure("CHAIN_UNAVAILABLE", f"the chain did not answer: {exc}"[:300], True) from exc
        if landing.status == LANDED and len(landing.fills) == len(plan.route.legs):
            return LandedSwap(list(landing.fills), landing.chain_details())
        recorded = await self._recorded(order_id, plan)  # a landed swap a pool refused: it filled before?
        if recorded is not None:
            return recorded
        if landing.fills:  # some legs filled, not all (a pool restarted mid-block): as without the chain
            raise OrderFailure("PARTIAL_FILL", f"landed in slot {landing.slot}; {landing.fill_error}", False,
                               {"chain": landing.chain_details()})  # fmt: skip
        raise _failure(landing)

    async def _recorded(self, order_id: str, plan: ExecutionPlan) -> LandedSwap | None:
        fills: list[Fill] = []
        for leg in range(len(plan.route.legs)):
            record = await self._trades.trade_for_order(order_id, leg)
            if record is None:
                return None
            fills.append(Fill.from_trade(record, existing=True))
        return LandedSwap(fills, dict(fills[0].chain or {}))


def _failure(landing: Landing) -> OrderFailure:
    details = {"chain": landing.chain_details()}
    error = landing.error or ""
    if landing.status == EXPIRED:
        return OrderFailure("BLOCKHASH_EXPIRED", "BlockhashNotFound: the transaction's blockhash expired "
                            f"before it landed (sent {len(landing.sends)} times)", True, details)  # fmt: skip
    if landing.status == REFUSED:
        return OrderFailure(error or "RPC_QUEUE_FULL", f"the RPC node refused the transaction: {error}", True, details)
    slippage = any(name in error for name in SLIPPAGE_NAMES)
    if landing.status == REVERTED:
        code = "SLIPPAGE_EXCEEDED" if slippage else "BUNDLE_REVERTED"
        return OrderFailure(code, f"the protected bundle reverted ({error}); nothing was paid", True, details)
    if landing.status == FAILED:
        code = "SLIPPAGE_EXCEEDED" if slippage else "TRANSACTION_FAILED"
        message = f"the transaction landed in slot {landing.slot} and failed: {error}; its fees were paid"
        return OrderFailure(code, message, True, details)
    # Landed, but a pool did not take the swap (it restarted between the block and its fill).
    return OrderFailure("POOL_UNAVAILABLE", f"landed in slot {landing.slot}, not filled: {landing.fill_error}",
                        True, details)  # fmt: skip


__all__ = ["ChainLanding", "LandedSwap", "SLIPPAGE_NAMES"]
