"""What each status event tells its followers (the ``details`` of a history row).

These payloads are the feed's published format (the WebSocket and the
history endpoint carry them as they are), so their keys are the API's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sim.tokens import Token, TokenRegistry, format_decimal, format_units, from_base_units

from engine.plans import ExecutionPlan, Fill
from sim.decision import Rejection, RouteDecision, Skipped, VenueQuote
from sim.routing import QuoteFailure


def error_details(rejection: Rejection) -> dict[str, Any]:
    return {"code": rejection.code, "message": rejection.message}


def quote_details(quote: VenueQuote | QuoteFailure) -> dict[str, Any]:
    """One venue's quote as the routing event shows it (base units)."""
    if isinstance(quote, QuoteFailure):
        return {"poolId": quote.pool_id, "dex": quote.dex, "error": quote.code, "message": quote.message}
    details: dict[str, Any] = {
        "poolId": quote.pool_id, "dex": quote.dex, "kind": quote.kind,
        "amountIn": str(quote.amount_in), "amountOut": str(quote.amount_out),
        "priceImpactBps": quote.price_impact_bps,
    }  # fmt: skip
    if quote.via is not None:
        details["via"] = quote.via
    if quote.fee is not None:
        details.update(fee=str(quote.fee), feeBps=quote.fee_bps, executionPrice=quote.execution_price)
    return details


def skipped_details(skipped: Skipped) -> dict[str, Any]:
    return {"poolId": skipped.pool_id, "error": skipped.code, "message": skipped.message}


def routing_details(decision: RouteDecision, started_at: float | None) -> dict[str, Any]:
    details: dict[str, Any] = {
        "quotes": [quote_details(q) for q in decision.quotes],
        "skipped": [skipped_details(s) for s in decision.skipped],
    }
    route = decision.route
    if route is None:
        assert decision.failure is not None
        details["error"] = error_details(decision.failure)
    else:
        details["chosen"] = {
            "kind": route.kind,
            "poolIds": list(route.pool_ids),
            "dex": route.legs[0].dex,
            "amountOut": str(route.amount_out),
        }
        details["reason"] = decision.reason
    details["startedAt"] = started_at
    return details


def route_summary(plan: ExecutionPlan) -> dict[str, Any]:
    return {
        "kind": plan.route.kind,
        "legs": [
            {
                "poolId": leg.pool_id,
                "dex": leg.dex,
                "tokenIn": leg.token_in,
                "tokenOut": leg.token_out,
                "amountIn": str(leg.amount_in),
                "amountOut": str(leg.amount_out),
            }
            for leg in plan.route.legs
        ],
    }


def building_details(plan: ExecutionPlan, token_out: Token, slippage_bps: int) -> dict[str, Any]:
    return {
        "route": route_summary(plan),
        "expectedOut": format_units(plan.route.amount_out, token_out),
        "minOut": format_units(plan.min_out, token_out),
        "slippageBps": slippage_bps,
    }


@dataclass(frozen=True, slots=True)
class Settlement:
    """What an order got from its fills (amounts in base units)."""

    fills: tuple[Fill, ...]
    amount_in: int
    amount_out: int
    fee_in: int  # every leg's fee, in the order's input token
    price: Decimal  # token_out per token_in, human units
    price_impact_bps: float
    signature: str


def settle(plan: ExecutionPlan, fills: list[Fill], token_in: Token, token_out: Token) -> Settlement:
    if plan.route.kind == "two_hop":
        amount_in, amount_out = fills[0].amount_in, fills[-1].amount_out
    else:
        amount_in = sum(f.amount_in for f in fills)
        amount_out = sum(f.amount_out for f in fills)
    human_in = from_base_units(amount_in, token_in)
    human_out = from_base_units(amount_out, token_out)
    price = (human_out / human_in).quantize(Decimal("1e-12")) if human_in else Decimal(0)
    return Settlement(
        fills=tuple(fills),
        amount_in=amount_in,
        amount_out=amount_out,
        fee_in=_fees_in_input(plan, fills),
        price=price,
        price_impact_bps=round(max((f.price_impact_bps or 0.0) for f in fills), 4),
        signature=plan.signature or fills[0].tx_signature,
    )


def _fees_in_input(plan: ExecutionPlan, fills: list[Fill]) -> int:
    """Every leg's fee in the order's input token: a later hop's fee is taken back
    through the rates the earlier hops paid (BONK → SOL → USDC: the SOL fee in BONK)."""
    if plan.route.kind != "two_hop":
        return sum(f.fee for f in fills)
    total = 0
    num, den = 1, 1  # input-token units per unit of this leg's input
    for fill in fills:
        total += fill.fee * num // den
        num, den = num * fill.amount_in, den * max(fill.amount_out, 1)
    return total


def confirmed_details(settlement: Settlement, tokens: TokenRegistry, token_in: str, token_out: str,
                      dex: str) -> dict[str, Any]:  # fmt: skip
    price = settlement.price
    return {
        "amountOut": format_units(settlement.amount_out, tokens[token_out]),
        "executedPrice": format_decimal(price),
        "fee": format_units(settlement.fee_in, tokens[token_in]),
        "feeToken": token_in,
        "priceImpactBps": settlement.price_impact_bps,
        "dex": dex,
        "txSignature": settlement.signature,
        "fills": [_fill_details(f, tokens) for f in settlement.fills],
    }


def _fill_details(fill: Fill, tokens: TokenRegistry) -> dict[str, Any]:
    return {
        "poolId": fill.pool_id,
        "tokenIn": fill.token_in,
        "tokenOut": fill.token_out,
        "amountIn": str(fill.amount_in),
        "amountOut": str(fill.amount_out),
        "fee": format_units(fill.fee, tokens[fill.token_in]),
        "feeToken": fill.token_in,
    }
