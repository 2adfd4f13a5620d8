"""The market as the API shows it: pools and route previews, amounts in token units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.candles import Candle, PoolCandles
from engine.records import iso
from serve.amounts import human, known_token
from serve.candle_query import CandleRange
from serve.presenters.orders import route_view
from serve.responses import CandlesResponse, CandleView, PoolView, QuoteResponse, QuoteView
from serve.validation import QuoteTerms
from sim.decision import PoolSummary, RouteDecision, Skipped, VenueQuote
from sim.routing import QuoteFailure
from sim.tokens import Token, TokenRegistry, format_decimal


def quote_view(quote: VenueQuote | QuoteFailure, t_in: Token, t_out: Token) -> QuoteView:
    """One venue's quote; a venue with no quote shows why (``error``, ``message``)."""
    if isinstance(quote, QuoteFailure):
        return QuoteView(pool_id=quote.pool_id, dex=quote.dex, error=quote.code, message=quote.message)
    return QuoteView(
        pool_id=quote.pool_id,
        dex=quote.dex,
        kind=quote.kind,
        via=quote.via,
        amount_in=human(quote.amount_in, t_in),
        amount_out=human(quote.amount_out, t_out),
        fee=human(quote.fee, t_in),
        fee_bps=quote.fee_bps,
        price_impact_bps=quote.price_impact_bps,
        execution_price=quote.execution_price,
    )


def skipped_view(skipped: Skipped) -> dict[str, Any]:
    return {"poolId": skipped.pool_id, "error": skipped.code, "message": skipped.message}


def quote_response(
    terms: QuoteTerms, decision: RouteDecision, quotes: list[QuoteView], tokens: TokenRegistry
) -> QuoteResponse:
    """The router's choice (a decision with a route) and every venue's quote beside it."""
    assert decision.route is not None
    route = route_view(decision.route.to_dict(), tokens, terms.slippage_bps)
    assert route is not None
    return QuoteResponse(
        token_in=terms.token_in.symbol,
        token_out=terms.token_out.symbol,
        amount_in=terms.amount_in_decimal,
        slippage_bps=terms.slippage_bps,
        route=route,
        quotes=quotes,
        skipped=[skipped_view(s) for s in decision.skipped],
        best_dex="+".join(sorted({leg.dex for leg in route.legs})),
        reason=decision.reason or "",
    )


def pool_view(summary: PoolSummary, tokens: TokenRegistry) -> PoolView:
    reserves = {symbol: human(units, known_token(tokens, symbol)) or "0" for symbol, units in summary.reserves.items()}
    return PoolView(
        pool_id=summary.pool_id,
        dex=summary.dex,
        kind=summary.kind,
        pair=f"{summary.base}/{summary.quote}",
        base=summary.base,
        quote=summary.quote,
        fee_bps=summary.fee_bps,
        spot_price=summary.spot_price,
        reserves=reserves,
        decimals={symbol: token.decimals for symbol in (summary.base, summary.quote)
                  if (token := known_token(tokens, symbol)) is not None},
        active_bin=summary.extra.get("active_bin"),
        bins=summary.extra.get("bins"),
    )


def _time(value: datetime) -> str:
    return iso(value).replace(".000000Z", "Z")


def candle_view(candle: Candle) -> CandleView:
    return CandleView(
        time=_time(candle.start),
        open=float(candle.open),
        high=float(candle.high),
        low=float(candle.low),
        close=float(candle.close),
        volume_base=format_decimal(candle.volume_base),
        volume_quote=format_decimal(candle.volume_quote),
        trades=candle.trades,
    )


def candles_response(found: PoolCandles, span: CandleRange) -> CandlesResponse:
    return CandlesResponse(
        pool_id=found.pool_id,
        base=found.base,
        quote=found.quote,
        interval=span.interval,
        interval_s=int(span.step.total_seconds()),
        from_=_time(span.start),
        to=_time(span.end),
        candles=[candle_view(c) for c in found.candles],
    )
