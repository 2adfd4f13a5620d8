"""The market: every pool now, and a preview of the route an order would take."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from serve.dependencies import ServicesDep, limit_reads
from serve.errors import ApiError, error_example
from serve.presenters.market import pool_view, quote_response, quote_view, skipped_view
from serve.requests import TokenRef
from serve.responses import PoolsResponse, QuoteResponse, QuoteView
from serve.validation import validate_quote
from sim.decision import Rejection, RouteDecision

router = APIRouter(tags=["market"], dependencies=[Depends(limit_reads)])

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
