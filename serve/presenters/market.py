"""The market as the API shows it: pools and route previews, amounts in token units."""

from __future__ import annotations

from typing import Any

from serve.amounts import human, known_token
from serve.presenters.orders import route_view
from serve.responses import PoolView, QuoteResponse, QuoteView
from serve.validation import QuoteTerms
from sim.tokens import Token, TokenRegistry


def quote_view(quote: dict[str, Any], t_in: Token, t_out: Token) -> QuoteView:
    """One venue's quote; a venue with no quote shows why (``error``, ``message``)."""
    if "error" in quote:
        return QuoteView.model_validate(
            {"poolId": quote.get("poolId"), "dex": quote.get("dex", "?"), "error": quote["error"],
             "message": quote.get("message")}
        )  # fmt: skip
    return QuoteView.model_validate(
        {
            "poolId": quote["poolId"],
            "dex": quote["dex"],
            "kind": quote.get("kind", "single"),
            "via": quote.get("via"),
            "amountIn": human(quote.get("amountIn"), t_in),
            "amountOut": human(quote.get("amountOut"), t_out),
            "fee": human(quote.get("fee"), t_in),
            "feeBps": quote.get("feeBps"),
            "priceImpactBps": quote.get("priceImpactBps"),
            "executionPrice": quote.get("executionPrice"),
        }
    )


def quote_response(
    terms: QuoteTerms, decision: dict[str, Any], quotes: list[QuoteView], tokens: TokenRegistry
) -> QuoteResponse:
    """The router's choice (a decision with a route) and every venue's quote beside it."""
    route = route_view(decision["route"], tokens, terms.slippage_bps)
    assert route is not None
    return QuoteResponse(
        token_in=terms.token_in.symbol,
        token_out=terms.token_out.symbol,
        amount_in=terms.amount_in_decimal,
        slippage_bps=terms.slippage_bps,
        route=route,
        quotes=quotes,
        skipped=list(decision.get("skipped") or []),
        best_dex="+".join(sorted({leg.dex for leg in route.legs})),
        reason=decision.get("reason") or "",
    )


def pool_view(summary: dict[str, Any], tokens: TokenRegistry) -> PoolView:
    reserves = {symbol: human(units, known_token(tokens, symbol)) or "0"
                for symbol, units in (summary.get("reserves") or {}).items()}  # fmt: skip
    return PoolView.model_validate(
        {
            "poolId": summary["poolId"],
            "dex": summary["dex"],
            "kind": summary.get("kind", "?"),
            "pair": f"{summary['base']}/{summary['quote']}",
            "base": summary["base"],
            "quote": summary["quote"],
            "feeBps": summary["feeBps"],
            "spotPrice": summary["spotPrice"],
            "reserves": reserves,
            "activeBin": summary.get("activeBin"),
            "bins": summary.get("bins"),
        }
    )
