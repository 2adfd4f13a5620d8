"""The API's response models (camelCase JSON); amounts are token units as decimal strings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from serve.camel import CamelModel
from sim.orders import OrderStatus

# --------------------------------------------------------------------------- orders


class OrderTerms(CamelModel):
    type: str = Field(examples=["market"])
    token_in: str = Field(examples=["SOL"])
    token_out: str = Field(examples=["USDC"])
    amount_in: str = Field(description="Token units.", examples=["1.5"])
    slippage_bps: int = Field(examples=[100])


class ExecuteOrderResponse(CamelModel):
    order_id: str = Field(description="The order's id (UUID).", examples=["5b0c3f9e-8f0e-4a52-9d0c-6a3f0b7f6f21"])
    status: OrderStatus = Field(description="Current status: `pending` for a new order.")
    ws_url: str = Field(
        description="Absolute WebSocket URL of the order's status stream.",
        examples=["ws://127.0.0.1:8000/api/orders/5b0c3f9e-8f0e-4a52-9d0c-6a3f0b7f6f21/ws"],
    )
    ws_path: str = Field(
        description="The same, relative to the API.",
        examples=["/api/orders/5b0c3f9e-8f0e-4a52-9d0c-6a3f0b7f6f21/ws"],
    )
    order_url: str = Field(description="Where the order can be read.", examples=["/api/orders/5b0c3f9e-..."])
    created: bool = Field(description="False when an Idempotency-Key returned an existing order.")
    order: OrderTerms = Field(
        description="The order as understood: canonical symbols, amount in token units, slippage in bps."
    )


class RouteLegView(CamelModel):
    pool_id: str
    dex: str
    token_in: str
    token_out: str
    amount_in: str = Field(description="Token units of tokenIn.")
    amount_out: str = Field(description="Token units of tokenOut.")
    fee: str | None = Field(None, description="Token units of tokenIn paid as fee.")
    price_impact_bps: float | None = None


class RouteView(CamelModel):
    kind: str = Field(description="single, split or two_hop", examples=["single"])
    amount_in: str
    amount_out: str = Field(description="Expected output, token units.")
    min_amount_out: str | None = Field(None, description="Output below which the swap is refused.")
    price_impact_bps: float | None = None
    legs: list[RouteLegView]


class OrderError(CamelModel):
    code: str
    message: str | None = None


class OrderView(CamelModel):
    order_id: str
    type: str
    status: OrderStatus
    token_in: str
    token_out: str
    mint_in: str
    mint_out: str
    amount_in: str = Field(description="Token units.", examples=["1.5"])
    amount_in_base_units: str = Field(examples=["1500000000"])
    slippage_bps: int
    seq: int = Field(description="Sequence number of the last status event.")
    attempts: int
    dex: str | None = None
    pool_id: str | None = None
    route: RouteView | None = None
    amount_out: str | None = Field(None, description="Filled output, token units (confirmed orders).")
    amount_out_base_units: str | None = None
    executed_price: str | None = Field(None, description="tokenOut per tokenIn, fees included.")
    fee: str | None = Field(
        None, description="Every leg's fee in token units of `feeToken` (tokenIn; a later hop's fee taken back "
        "through the earlier hops' rates). Each leg shows its own fee in its own tokenIn."
    )
    fee_token: str | None = Field(None, description="The token `fee` is counted in: tokenIn.")
    price_impact_bps: float | None = None
    tx_signature: str | None = None
    transaction: dict[str, Any] | None = Field(
        None, description="With the chain on: the options sent (priorityFee, maxPriorityFeeLamports, "
        "jitoTipLamports) and, once built, the terms signed (computeUnitLimit, computeUnitPrice, recentBlockhash, "
        "lastValidBlockHeight, protected).",
    )
    landing: dict[str, Any] | None = Field(
        None, description="With the chain on, once confirmed: slot, blockHeight, blockTime, landedAt, fees "
        "{baseLamports, priorityLamports, tipLamports, totalSol}, computeUnitsConsumed, resends, sandwiched; "
        "commitment `confirmed`, then `finalized` with finalizedAt once 32 more blocks are on top.",
    )
    error: OrderError | None = None
    idempotency_key: str | None = None
    waiting_for: dict[str, Any] | None = Field(
        None, description="Orders that wait: what for (limitPrice and minAmountOut, triggerPrice and "
        "triggerAmountOut, or trailingBps with the highPrice seen and the triggerPrice it makes) and expiresAt.",
    )
    expires_at: str | None = Field(None, description="Orders that wait: when they stop waiting.")
    created_at: str
    updated_at: str
    ws_path: str


class StatusEventView(CamelModel):
    """One status change (also what the WebSocket sends, with ``"type": "status"``)."""

    order_id: str
    seq: int = Field(description="Per-order sequence number: 1, 2, 3... with no gaps.")
    status: OrderStatus
    attempt: int
    timestamp: str = Field(description="When it was committed (UTC, ISO-8601).")
    details: dict[str, Any] = Field(
        description="Per status: routing: every venue's quote and the choice; building: route, expectedOut, "
        "minOut; submitted: txSignature; confirmed: amountOut, executedPrice, fee, priceImpactBps, dex, "
        "txSignature; failed: error {code, message}, attempts; pending (retry): error, retryInS."
    )


class HistoryResponse(CamelModel):
    order_id: str
    status: OrderStatus
    final: bool
    events: list[StatusEventView]


class OrderListResponse(CamelModel):
    orders: list[OrderView]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last.")
    limit: int


# --------------------------------------------------------------------------- operations


class OldestOpenOrderView(CamelModel):
    order_id: str
    status: str
    age_s: float = Field(description="Seconds since it was accepted.")
    idle_s: float = Field(description="Seconds since its status last changed.")


class QueueMetricsResponse(CamelModel):
    waiting: int = Field(description="Queued, not yet started.")
    running: int | None = Field(description="Being executed now (null when the engine does not answer).")
    retrying: int = Field(description="Waiting for a retry after a transient failure.")
    completed: int = Field(description="Orders confirmed (all time).")
    failed: int = Field(description="Orders failed (all time).")
    rate_limit_per_minute: int
    concurrency: int
    by_status: dict[str, int] = Field(description="Orders per current status, from PostgreSQL.")
    dispatcher: dict[str, Any] | None = Field(
        None, description="The dispatcher's counters since it started (null when it does not answer)."
    )
    engine_available: bool
    oldest_non_final_age_s: float = Field(
        description="Age in seconds of the oldest order that is not final yet (0 when every order is final): "
        "the liveness figure. It stays low while the engine makes progress."
    )
    oldest_non_final: OldestOpenOrderView | None = Field(
        description="That order (null when every order is final)."
    )


class CheckResult(CamelModel):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class HealthResponse(CamelModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckResult] = Field(description="postgres, redis, ray")
    down: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = Field(None, description="The error shape, when something is down (503).")


# --------------------------------------------------------------------------- market


class PoolView(CamelModel):
    pool_id: str
    dex: str
    kind: str = Field(description="cpmm (constant product) or dlmm (bins)")
    pair: str = Field(examples=["SOL/USDC"])
    base: str
    quote: str
    fee_bps: float
    spot_price: float = Field(description="quote per base, human units, fees excluded")
    reserves: dict[str, str] = Field(description="Token units held, by symbol.")
    decimals: dict[str, int] = Field(
        description="Each token's decimals, by symbol: base units per token unit are 10^decimals (the routing "
        "event's quotes are in base units).", examples=[{"SOL": 9, "USDC": 6}],
    )
    active_bin: int | None = None
    bins: int | None = None


class PoolsResponse(CamelModel):
    pools: list[PoolView]


class CandleView(CamelModel):
    time: str = Field(description="Start of the bucket (UTC, ISO-8601): it holds the trades of "
                      "[time, time + interval).", examples=["2030-01-01T12:00:00Z"])
    open: float = Field(description="Price of the bucket's first trade: quote per base, token units, fees included "
                        "(what the trade paid; spotPrice is the same units without the fee).", examples=[149.61])
    high: float = Field(examples=[150.02])
    low: float = Field(examples=[149.28])
    close: float = Field(description="Price of the bucket's last trade.", examples=[149.87])
    volume_base: str = Field(description="Base tokens traded (token units).", examples=["41.25"])
    volume_quote: str = Field(description="Quote tokens traded (token units).", examples=["6173.402117"])
    trades: int = Field(description="Trades in the bucket: orders' fills, the market's flow and shocks.",
                        examples=[37])


class CandlesResponse(CamelModel):
    pool_id: str = Field(examples=["raydium:SOL-USDC"])
    base: str = Field(examples=["SOL"])
    quote: str = Field(examples=["USDC"])
    interval: str = Field(examples=["1m"])
    interval_s: int = Field(description="The interval in seconds.", examples=[60])
    from_: str = Field(alias="from", description="Start of the first bucket (the asked `from`, moved back to its "
                       "bucket's start).", examples=["2030-01-01T10:00:00Z"])
    to: str = Field(description="End of the range, exclusive.", examples=["2030-01-01T12:00:30Z"])
    candles: list[CandleView] = Field(description="Buckets with at least one trade, oldest first (none: no trade).")


class QuoteView(CamelModel):
    pool_id: str = Field(description="The pool, or 'pool > pool' for a two-hop path.")
    dex: str
    kind: str = Field("single", description="'single' (one pool) or 'two_hop' (through `via`).")
    via: str | None = None
    amount_in: str | None = None
    amount_out: str | None = None
    fee: str | None = None
    fee_bps: float | None = None
    price_impact_bps: float | None = None
    execution_price: float | None = None
    error: str | None = Field(None, description="Why this venue has no quote.")
    message: str | None = None


class QuoteResponse(CamelModel):
    token_in: str
    token_out: str
    amount_in: str
    slippage_bps: int
    route: RouteView
    quotes: list[QuoteView] = Field(description="Every venue of the pair, best or not.")
    skipped: list[dict[str, Any]] = Field(description="Venues that did not answer in time.")
    best_dex: str
    reason: str
