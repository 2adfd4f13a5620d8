"""Orders as the API shows them: the order view (the one order presenter), its route, its history."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from serve.amounts import human, known_token
from serve.responses import (
    ExecuteOrderResponse,
    HistoryResponse,
    OrderTerms,
    OrderView,
    RouteLegView,
    RouteView,
    StatusEventView,
)
from engine.waiting import waiting_for
from serve.presenters.chain import landing_view, transaction_view
from sim.tokens import TokenRegistry, format_decimal


def _leg_view(leg: dict[str, Any], tokens: TokenRegistry) -> RouteLegView:
    t_in, t_out = known_token(tokens, leg.get("token_in")), known_token(tokens, leg.get("token_out"))
    return RouteLegView.model_validate(
        {
            "poolId": leg.get("pool_id"),
            "dex": leg.get("dex"),
            "tokenIn": leg.get("token_in"),
            "tokenOut": leg.get("token_out"),
            "amountIn": human(leg.get("amount_in"), t_in),
            "amountOut": human(leg.get("amount_out"), t_out),
            "fee": human(leg.get("fee"), t_in),
            "priceImpactBps": leg.get("price_impact_bps"),
        }
    )


def route_view(
    route: dict[str, Any] | None, tokens: TokenRegistry, slippage_bps: int | None = None
) -> RouteView | None:
    """The engine's route (snake_case, base units) in token units; minAmountOut from the slippage when unset."""
    if not isinstance(route, dict) or "legs" not in route:
        return None
    t_in = known_token(tokens, route.get("token_in"))
    t_out = known_token(tokens, route.get("token_out"))
    min_out = route.get("min_out")
    if min_out is None and slippage_bps is not None and route.get("amount_out") is not None:
        min_out = int(route["amount_out"]) * (10_000 - slippage_bps) // 10_000
    return RouteView.model_validate(
        {
            "kind": route.get("kind", "single"),
            "amountIn": human(route.get("amount_in"), t_in),
            "amountOut": human(route.get("amount_out"), t_out),
            "minAmountOut": human(min_out, t_out),
            "priceImpactBps": route.get("price_impact_bps"),
            "legs": [_leg_view(leg, tokens) for leg in route["legs"]],
        }
    )


def _timestamp(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def order_view(record: Any, tokens: TokenRegistry) -> OrderView:
    t_in, t_out = known_token(tokens, record.token_in), known_token(tokens, record.token_out)
    error = None
    if record.error_code:
        error = {"code": record.error_code, "message": record.error_message}
    return OrderView.model_validate(
        {
            "orderId": record.id,
            "type": record.type,
            "status": record.status,
            "tokenIn": record.token_in,
            "tokenOut": record.token_out,
            "mintIn": record.mint_in,
            "mintOut": record.mint_out,
            "amountIn": record.amount_in_decimal or human(record.amount_in, t_in),
            "amountInBaseUnits": str(record.amount_in),
            "slippageBps": record.slippage_bps,
            "seq": record.seq,
            "attempts": record.attempts,
            "dex": record.dex,
            "poolId": record.pool_id,
            "route": route_view(record.route, tokens, record.slippage_bps),
            "amountOut": human(record.amount_out, t_out),
            "amountOutBaseUnits": None if record.amount_out is None else str(record.amount_out),
            "executedPrice": None if record.executed_price is None else format_decimal(Decimal(record.executed_price)),
            "fee": human(record.fee, t_in),
            "feeToken": None if record.fee is None else record.token_in,
            "priceImpactBps": record.price_impact_bps,
            "txSignature": record.tx_signature,
            "transaction": transaction_view(getattr(record, "tx_options", None), record.route),
            "landing": landing_view(record.route),
            "error": error,
            "idempotencyKey": record.idempotency_key,
            "waitingFor": waiting_for(record, tokens) if record.trigger is not None else None,
            "expiresAt": None if record.expires_at is None else _timestamp(record.expires_at),
            "createdAt": _timestamp(record.created_at),
            "updatedAt": _timestamp(record.updated_at),
            "wsPath": f"/api/orders/{record.id}/ws",
        }
    )


def accepted_view(
    record: Any, tokens: TokenRegistry, *, ws_url: str, ws_path: str, created: bool
) -> ExecuteOrderResponse:
    """The answer to a submission: where to follow the order, and its terms as the order view shows them."""
    view = order_view(record, tokens)
    terms = OrderTerms(
        type=view.type,
        token_in=view.token_in,
        token_out=view.token_out,
        amount_in=view.amount_in,
        slippage_bps=view.slippage_bps,
    )
    return ExecuteOrderResponse(
        order_id=view.order_id,
        status=view.status,
        ws_url=ws_url,
        ws_path=ws_path,
        order_url=f"/api/orders/{view.order_id}",
        created=created,
        order=terms,
    )


def history_view(record: Any, events: Iterable[Any]) -> HistoryResponse:
    return HistoryResponse(
        order_id=record.id,
        status=record.status,
        final=record.is_final,
        events=[StatusEventView.model_validate(e.to_json()) for e in events],
    )
