"""The market: every pool now, its recorded trades as candles, and a preview of the route an order would take."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from serve.candle_query import INTERVALS, MAX_CANDLES, MAX_TIME_CHARS, candle_range
from serve.auth import UNAUTHORIZED_EXAMPLE
from serve.dependencies import ServicesDep, limit_reads
from serve.errors import ApiError, error_example
from serve.presenters.market import candles_response, pool_view, quote_response, quote_view, skipped_view
from serve.requests import TokenRef
from serve.responses import CandlesResponse, PoolsResponse, QuoteResponse, QuoteView
from serve.validation import validate_quote
from sim.decision import Rejection, RouteDecision

router = APIRouter(tags=["market"], dependencies=[Depends(limit_reads)], responses={401: UNAUTHORIZED_EXAMPLE})

_ENGINE_DOWN = error_example(503, "ENGINE_UNAVAILABLE", "the engine did not answer")


@router.get(
    "/api/pools",
    response_model=PoolsResponse,
    summary="Every pool",
    description="DEX, pair, fee, spot price and reserves (token units) of every simulated pool, now.",
    responses={503: _ENGINE_DOWN},
)
async def pools(services: ServicesDep) -> PoolsResponse:
    summaries = await services.engine.pool_summaries()
    await services.learn_tokens(*(symbol for s in summaries for symbol in (s.base, s.quote)))
    return PoolsResponse(pools=[pool_view(s, services.tokens) for s in summaries])


_CANDLE_TIME = "ISO 8601 (`2030-01-01T12:00:00Z`; no offset: UTC) or Unix seconds (`1893499200`)."


@router.get(
    "/api/pools/{poolId}/candles",
    response_model=CandlesResponse,
    summary="A pool's candles",
    description="OHLCV from the pool's recorded trades (orders' fills, the market's flow, shocks), one candle "
    "per `interval` with at least one trade, oldest first. Prices are quote per base token (the pool's `pair`, "
    "as `spotPrice`), each trade's price being what it paid, fees included; volumes are token units of each "
    "side. Buckets start on multiples of the interval since the Unix epoch (UTC); `from` is moved back to "
    f"its bucket's start, `to` is exclusive. Default: the last 2 hours. At most {MAX_CANDLES} buckets per "
    "request (422 TOO_MANY_CANDLES).",
    responses={
        200: {"content": {"application/json": {"example": {
            "poolId": "raydium:SOL-USDC", "base": "SOL", "quote": "USDC", "interval": "1m", "intervalS": 60,
            "from": "2030-01-01T10:00:00Z", "to": "2030-01-01T12:00:30Z",
            "candles": [
                {"time": "2030-01-01T11:59:00Z", "open": 149.61, "high": 150.02, "low": 149.28, "close": 149.87,
                 "volumeBase": "41.25", "volumeQuote": "6173.402117", "trades": 37},
                {"time": "2030-01-01T12:00:00Z", "open": 149.9, "high": 150.11, "low": 149.75, "close": 150.04,
                 "volumeBase": "12.5", "volumeQuote": "1875.9", "trades": 9},
            ],
        }}}},
        404: error_example(404, "POOL_NOT_FOUND", "no pool raydium:DOGE-USDC", {"poolId": "raydium:DOGE-USDC"}),
        422: error_example(422, "INVALID_INTERVAL", "interval: '2m' is not an interval; use one of "
                           f"{', '.join(INTERVALS)}",
                           [{"field": "interval", "location": "query", "message": "'2m' is not an interval",
                             "type": "INVALID_INTERVAL"}],
                           summary="A bad interval, time or range (INVALID_INTERVAL, INVALID_TIME, INVALID_RANGE, "
                           "TOO_MANY_CANDLES)"),
        503: error_example(503, "DATABASE_UNAVAILABLE", "PostgreSQL is unavailable; nothing was stored. "
                           "Retry shortly."),
    },
)  # fmt: skip
async def candles(
    services: ServicesDep,
    pool_id: Annotated[str, Path(alias="poolId", max_length=128, description="As GET /api/pools names it.",
                                 examples=["raydium:SOL-USDC"])],
    interval: Annotated[str, Query(max_length=16, description=f"One of {', '.join(INTERVALS)}.",
                                   json_schema_extra={"enum": list(INTERVALS)}, examples=["1m"])] = "1m",
    start: Annotated[str | None, Query(alias="from", max_length=MAX_TIME_CHARS,
                                       description=f"First time included. {_CANDLE_TIME} Default: `to` - 2 h.",
                                       examples=["2030-01-01T10:00:00Z"])] = None,
    end: Annotated[str | None, Query(alias="to", max_length=MAX_TIME_CHARS,
                                     description=f"End, exclusive. {_CANDLE_TIME} Default: now.",
                                     examples=["2030-01-01T12:00:00Z"])] = None,
) -> CandlesResponse:  # fmt: skip
    span = candle_range(interval, start, end, now=datetime.now(UTC))
    if services.trades is None:
        raise ApiError(503, "SERVICE_UNAVAILABLE", "the trade history is not wired on this API")
    # A pool id is printable (PostgreSQL text cannot even hold a NUL): anything else names no pool.
    found = None
    if pool_id.isprintable():
        found = await services.trades.candles(pool_id, interval=span.step, start=span.start, end=span.end)
    if found is None:
        raise ApiError(404, "POOL_NOT_FOUND", f"no pool {pool_id}", {"poolId": pool_id})
    return candles_response(found, span)


def _no_route(decision: RouteDecision, quotes: list[QuoteView]) -> ApiError:
    """422 when nothing can fill the order (503 when that may pass), with every venue's quote."""
    failure = decision.failure or Rejection("NO_ROUTE", "no route", False)
    details = {
        "quotes": [q.model_dump(by_alias=True, exclude_none=True) for q in quotes],
        "skipped": [skipped_view(s) for s in decision.skipped],
    }
    return ApiError(503 if failure.transient else 422, failure.code, failure.message, details)


@router.get(
    "/api/quote",
    response_model=QuoteResponse,
    summary="Preview a route",
    description="The route the router would take now for this order, with every venue's quote "
    "(amounts in token units). Nothing is stored or executed. Answers 422 (NO_ROUTE, "
    "INSUFFICIENT_LIQUIDITY, ...) when nothing can fill it, with the quotes in `details`.",
    responses={
        422: error_example(
            422, "INSUFFICIENT_LIQUIDITY", "no pool can fill 1000000 SOL -> USDC", {"quotes": [], "skipped": []}
        ),
        503: _ENGINE_DOWN,
    },
)
async def quote(
    services: ServicesDep,
    token_in: Annotated[TokenRef, Query(alias="tokenIn", description="Symbol or mint.", examples=["SOL"])],
    token_out: Annotated[TokenRef, Query(alias="tokenOut", description="Symbol or mint.", examples=["USDC"])],
    amount_in: Annotated[
        str | None, Query(alias="amountIn", max_length=64, description="Token units.", examples=["1.5"])
    ] = None,
    amount: Annotated[str | None, Query(max_length=64, description="Alias of amountIn.")] = None,
    slippage_bps: Annotated[
        int | None, Query(alias="slippageBps", description="For minAmountOut (default 50).", examples=[100])
    ] = None,
) -> QuoteResponse:
    opts = services.options
    await services.learn_tokens(token_in, token_out)
    terms = validate_quote(
        token_in, token_out, amount_in, amount, slippage_bps, services.tokens,
        default_slippage_bps=opts.default_slippage_bps, max_slippage_bps=opts.max_slippage_bps,
    )  # fmt: skip
    decision = await services.engine.route(terms.token_in.symbol, terms.token_out.symbol, terms.amount_in)
    quotes = [quote_view(q, terms.token_in, terms.token_out) for q in decision.quotes]
    if decision.route is None:
        raise _no_route(decision, quotes)
    return quote_response(terms, decision, quotes, services.tokens)
