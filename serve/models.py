"""Request and response models (camelCase JSON), and order validation.

Amounts travel in human token units as decimal strings ("1.5" SOL), never
floats; base units (integers) are given beside them as strings where useful.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from serve.errors import ApiError
from sim.orders import OrderStatus
from sim.tokens import (
    InvalidAmount,
    Token,
    TokenRegistry,
    UnknownToken,
    format_units,
    to_base_units,
)

U64_MAX = 2**64 - 1  # an SPL token account holds at most this many base units
MAX_AMOUNT_CHARS = 64
SUPPORTED_TYPES = ("market",)
PLANNED_TYPES = ("limit", "sniper")


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def human(units: int | str | None, token: Token | None) -> str | None:
    """Base units -> a plain decimal string in token units ("1.5", never "1.5E+0")."""
    if units is None:
        return None
    if token is None:
        return str(units)
    return format_units(int(units), token)


def decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


# --------------------------------------------------------------------------- the order request

EXECUTE_EXAMPLES: dict[str, dict[str, Any]] = {
    "market": {
        "summary": "Market order: sell 1.5 SOL for USDC, 1 % slippage",
        "value": {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    },
    "by_mint": {
        "summary": "Tokens by mint address, amount as a JSON number, default slippage (50 bps)",
        "value": {
            "type": "market",
            "tokenIn": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "tokenOut": "So11111111111111111111111111111111111111112",
            "amountIn": 250,
        },
    },
    "seed_aliases": {
        "summary": "The original spec's field names: amount, and slippage as a fraction (0.01 = 1 %)",
        "value": {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 2, "slippage": 0.01},
    },
    "two_hop": {
        "summary": "BONK to USDC (routed through SOL when that pays more)",
        "value": {"type": "market", "tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
    },
}


class ExecuteOrderRequest(CamelModel):
    """A new order. Unknown fields are ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra={"examples": [EXECUTE_EXAMPLES["market"]["value"]]},
    )

    type: str = Field(
        "market",
        validation_alias=AliasChoices("type", "orderType"),
        description="Order type. Only `market` is executed today; `limit` and `sniper` are "
        "planned and answered with 422 UNSUPPORTED_ORDER_TYPE. Alias: `orderType`.",
        examples=["market"],
        max_length=32,
    )
    token_in: str = Field(
        description="Token sold: a symbol (SOL, USDC, USDT, BONK, JUP; any case) or a mint address.",
        examples=["SOL"],
        max_length=64,
    )
    token_out: str = Field(
        description="Token bought: a symbol or a mint address; must differ from tokenIn.",
        examples=["USDC"],
        max_length=64,
    )
    amount_in: Any = Field(
        None,
        description="Amount of tokenIn to sell, in token units (not base units): a decimal string "
        "(preferred, exact) or a JSON number. At most the token's decimals of precision.",
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "number"}], "examples": ["1.5"]},
    )
    amount: Any = Field(
        None,
        description="Alias of amountIn, for clients written for the original spec.",
        json_schema_extra={"anyOf": [{"type": "string"}, {"type": "number"}], "examples": [1.5]},
    )
    slippage_bps: Any = Field(
        None,
        description="Slippage tolerance in basis points, 1..5000 (default 50 = 0.5 %).",
        json_schema_extra={"type": "integer", "minimum": 1, "maximum": 5000, "examples": [100]},
    )
    slippage: Any = Field(
        None,
        description="Alias of slippageBps as a fraction, for clients written for the original spec: "
        "0.01 is 1 % (100 bps); 0.0001..0.5.",
        json_schema_extra={"type": "number", "examples": [0.01]},
    )


@dataclass(frozen=True, slots=True)
class ValidOrder:
    """A validated order, ready for ``storage.orders.NewOrder``."""

    type: str
    token_in: Token
    token_out: Token
    amount_in: int
    amount_in_decimal: str
    slippage_bps: int

    def request_hash(self) -> str:
        """Same meaning, same hash: "1.5" and 1.5, amount and amountIn, SOL and its mint."""
        canonical = json.dumps(
            [self.type, self.token_in.mint, self.token_out.mint, self.amount_in, self.slippage_bps],
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def new_order(self) -> Any:
        from storage.orders import NewOrder

        return NewOrder(
            type=self.type,
            token_in=self.token_in.symbol,
            token_out=self.token_out.symbol,
            mint_in=self.token_in.mint,
            mint_out=self.token_out.mint,
            amount_in=self.amount_in,
            amount_in_decimal=self.amount_in_decimal,
            slippage_bps=self.slippage_bps,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "tokenIn": self.token_in.symbol,
            "tokenOut": self.token_out.symbol,
            "amountIn": self.amount_in_decimal,
            "slippageBps": self.slippage_bps,
        }


class _Problems:
    """Collects field problems; raises one 422 naming every field at fault."""

    def __init__(self, location: str = "body") -> None:
        self.items: list[dict[str, Any]] = []
        self.location = location

    def add(self, code: str, field: str, message: str, **extra: Any) -> None:
        self.items.append(
            {"field": field, "location": self.location, "message": message, "type": code, **extra}
        )

    def raise_if_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        if len(self.items) == 1:
            message = f"{first['field']}: {first['message']}"
        else:
            message = "invalid order: " + "; ".join(f"{p['field']}: {p['message']}" for p in self.items)
        raise ApiError(422, first["type"], message, self.items)


def parse_amount(raw: Any, token: Token | None, field: str, problems: _Problems) -> tuple[int, str] | None:
    """A human amount (decimal string or JSON number) -> (base units, normalised text)."""
    if raw is None:
        problems.add("VALIDATION_ERROR", field, "field required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        problems.add("VALIDATION_ERROR", field, "must be a decimal string such as \"1.5\" or a number")
        return None
    text = raw.strip() if isinstance(raw, str) else str(raw)
    if not text:
        problems.add("INVALID_AMOUNT", field, "must not be empty")
        return None
    if len(text) > MAX_AMOUNT_CHARS:
        problems.add("INVALID_AMOUNT", field, f"is longer than {MAX_AMOUNT_CHARS} characters")
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        problems.add("INVALID_AMOUNT", field, f"{text!r} is not a number")
        return None
    if not value.is_finite():
        problems.add("INVALID_AMOUNT", field, "must be a finite number")
        return None
    if value <= 0:
        problems.add("INVALID_AMOUNT", field, f"must be greater than zero, got {text}")
        return None
    if token is None:  # the token is unknown: nothing more can be checked
        return None
    if value.adjusted() > 30:
        problems.add(
            "AMOUNT_TOO_LARGE", field, f"{text} {token.symbol} is more than any token account can hold",
            max=human(U64_MAX, token),
        )  # fmt: skip
        return None
    smallest = human(1, token)
    if value.adjusted() < -token.decimals:  # below one base unit (and beyond the context's exponent range)
        problems.add(
            "INVALID_AMOUNT", field,
            f"{token.symbol} has {token.decimals} decimals; the smallest amount is {smallest}",
            decimals=token.decimals,
        )  # fmt: skip
        return None
    try:
        units = to_base_units(value, token)
    except InvalidAmount as exc:
        problems.add("INVALID_AMOUNT", field, str(exc), decimals=token.decimals)
        return None
    if units <= 0:  # pragma: no cover - excluded above; kept as a guard
        problems.add("INVALID_AMOUNT", field, f"the smallest amount is {smallest}", decimals=token.decimals)
        return None
    if units > U64_MAX:
        problems.add(
            "AMOUNT_TOO_LARGE", field,
            f"{text} {token.symbol} is more than any token account can hold (max {human(U64_MAX, token)})",
            max=human(U64_MAX, token),
        )  # fmt: skip
        return None
    return units, decimal_text(value)


def parse_slippage(
    bps_raw: Any, fraction_raw: Any, problems: _Problems, *, default: int, maximum: int
) -> int | None:
    bps: int | None = None
    if bps_raw is not None:
        if isinstance(bps_raw, bool) or not isinstance(bps_raw, (int, float, str)):
            problems.add("VALIDATION_ERROR", "slippageBps", "must be an integer number of basis points")
            return None
        try:
            value = Decimal(str(bps_raw).strip())
        except InvalidOperation:
            problems.add("INVALID_SLIPPAGE", "slippageBps", f"{bps_raw!r} is not a number")
            return None
        if not value.is_finite() or value != value.to_integral_value():
            problems.add("INVALID_SLIPPAGE", "slippageBps", "must be a whole number of basis points")
            return None
        bps = int(value)
        if not 1 <= bps <= maximum:
            problems.add(
                "INVALID_SLIPPAGE", "slippageBps", f"must be between 1 and {maximum} bps, got {bps}",
                min=1, max=maximum,
            )  # fmt: skip
            return None
    if fraction_raw is not None:
        if isinstance(fraction_raw, bool) or not isinstance(fraction_raw, (int, float, str)):
            problems.add("VALIDATION_ERROR", "slippage", "must be a fraction such as 0.01 (1 %)")
            return None
        try:
            fraction = Decimal(str(fraction_raw).strip())
        except InvalidOperation:
            problems.add("INVALID_SLIPPAGE", "slippage", f"{fraction_raw!r} is not a number")
            return None
        if not fraction.is_finite():
            problems.add("INVALID_SLIPPAGE", "slippage", "must be a finite number")
            return None
        from_fraction = fraction * 10_000
        if from_fraction != from_fraction.to_integral_value():
            problems.add(
                "INVALID_SLIPPAGE", "slippage", "is a fraction (0.01 = 1 %) with at most 4 decimals (1 bp)"
            )
            return None
        as_bps = int(from_fraction)
        if not 1 <= as_bps <= maximum:
            problems.add(
                "INVALID_SLIPPAGE", "slippage",
                f"is a fraction (0.01 = 1 %) and must be between 0.0001 and {Decimal(maximum) / 10_000}, "
                f"got {fraction_raw}",
                min=0.0001, max=float(Decimal(maximum) / 10_000),
            )  # fmt: skip
            return None
        if bps is not None and bps != as_bps:
            problems.add(
                "INVALID_SLIPPAGE", "slippage",
                f"disagrees with slippageBps ({fraction_raw} is {as_bps} bps, slippageBps is {bps}); send one",
            )  # fmt: skip
            return None
        bps = as_bps
    return default if bps is None else bps


def resolve_token(ref: Any, tokens: TokenRegistry, field: str, problems: _Problems) -> Token | None:
    if not isinstance(ref, str) or not ref.strip():
        problems.add("VALIDATION_ERROR", field, "must be a token symbol or mint address")
        return None
    try:
        return tokens.resolve(ref.strip())
    except UnknownToken:
        known = sorted(t.symbol for t in tokens)
        problems.add(
            "UNKNOWN_TOKEN", field, f"unknown token {ref.strip()!r} (known: {', '.join(known)}, or their mints)",
            known=known,
        )  # fmt: skip
        return None


def validate_order(
    req: ExecuteOrderRequest, tokens: TokenRegistry, *, default_slippage_bps: int = 50, max_slippage_bps: int = 5_000
) -> ValidOrder:
    """Every semantic check of an order; raises one ApiError (422) naming the fields."""
    problems = _Problems()
    order_type = (req.type or "market").strip().lower()
    if order_type in PLANNED_TYPES:
        raise ApiError(
            422,
            "UNSUPPORTED_ORDER_TYPE",
            f"type: {order_type!r} orders are not supported yet; only 'market' orders are executed",
            [{"field": "type", "location": "body", "message": "only 'market' is supported",
              "type": "UNSUPPORTED_ORDER_TYPE", "supported": list(SUPPORTED_TYPES)}],
        )  # fmt: skip
    if order_type not in SUPPORTED_TYPES:
        problems.add(
            "UNSUPPORTED_ORDER_TYPE", "type", f"unknown order type {req.type!r}; use 'market'",
            supported=list(SUPPORTED_TYPES),
        )  # fmt: skip
    token_in = resolve_token(req.token_in, tokens, "tokenIn", problems)
    token_out = resolve_token(req.token_out, tokens, "tokenOut", problems)
    if token_in is not None and token_out is not None and token_in == token_out:
        problems.add("SAME_TOKEN", "tokenOut", f"must differ from tokenIn (both are {token_in.symbol})")
    amount_field, amount_raw = "amountIn", req.amount_in
    if req.amount_in is None and req.amount is not None:
        amount_field, amount_raw = "amount", req.amount
    elif req.amount_in is not None and req.amount is not None and str(req.amount_in) != str(req.amount):
        problems.add("VALIDATION_ERROR", "amount", "is an alias of amountIn; send one of them")
    parsed = parse_amount(amount_raw, token_in, amount_field, problems)
    slippage = parse_slippage(
        req.slippage_bps, req.slippage, problems, default=default_slippage_bps, maximum=max_slippage_bps
    )
    problems.raise_if_any()
    assert token_in is not None and token_out is not None and parsed is not None and slippage is not None
    return ValidOrder(order_type, token_in, token_out, parsed[0], parsed[1], slippage)


# --------------------------------------------------------------------------- responses


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
    order: dict[str, Any] = Field(
        description="The order as understood: canonical symbols, amount in token units, slippage in bps.",
        examples=[{"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100}],
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
    fee: str | None = Field(None, description="Fee paid, token units of tokenIn.")
    price_impact_bps: float | None = None
    tx_signature: str | None = None
    error: OrderError | None = None
    idempotency_key: str | None = None
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


class CheckResult(CamelModel):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class HealthResponse(CamelModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckResult] = Field(description="postgres, redis, ray")
    down: list[str] = Field(default_factory=list)
    error: dict[str, Any] | None = Field(None, description="The error shape, when something is down (503).")


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
    active_bin: int | None = None
    bins: int | None = None


class PoolsResponse(CamelModel):
    pools: list[PoolView]


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
