"""The routing decision the engine shows its clients: pure, on pool states.

``decide_route`` is what the OrderRouter actor runs on the pools it heard
from (and what an in-process gateway runs on its own pools): the best route
under the routing policy, every venue's quote, the two-hop candidates, and,
when nothing can fill, a typed error as data. Shapes are plain JSON-ready
dicts with the API's camelCase keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sim.pools.base import Pool, SimError, SwapQuote
from sim.routing import NoRoute, QuoteFailure, Route, all_quotes, find_best_route, two_hop_routes


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    allow_split: bool = False
    allow_two_hop: bool = True
    intermediates: tuple[str, ...] = ("SOL", "USDC")
    # A route that would move a pool's price more than this is refused: the
    # order is larger than the liquidity there is for it.
    max_price_impact_bps: float = 2500.0


def quote_json(item: SwapQuote | QuoteFailure) -> dict[str, Any]:
    if isinstance(item, QuoteFailure):
        return {"poolId": item.pool_id, "dex": item.dex, "error": item.code, "message": item.message}
    return {
        "poolId": item.pool_id,
        "dex": item.dex,
        "kind": "single",
        "amountIn": str(item.amount_in),
        "amountOut": str(item.amount_out),
        "fee": str(item.fee),
        "feeBps": round(item.fee * 10_000 / item.amount_in, 3) if item.amount_in else 0.0,
        "priceImpactBps": round(item.price_impact_bps, 3),
        "executionPrice": item.execution_price,
    }


def _two_hop_candidates(
    pools: Sequence[Pool], token_in: str, token_out: str, amount_in: int, now: float, vias: Iterable[str]
) -> list[dict[str, Any]]:
    """Each intermediate's best two-hop path, quoted exactly, as one entry each."""
    routes, _ = two_hop_routes(pools, token_in, token_out, amount_in, now, vias)
    return [
        {
            "poolId": " > ".join(leg.pool_id for leg in route.legs),
            "dex": " > ".join(leg.dex for leg in route.legs),
            "kind": "two_hop",
            "via": route.legs[0].token_out,
            "amountIn": str(amount_in),
            "amountOut": str(route.amount_out),
            "priceImpactBps": round(max(leg.price_impact_bps for leg in route.legs), 3),
        }
        for route in routes
    ]


def why(route: Route, quotes: list[dict[str, Any]]) -> str:
    """One line on why this route won, for the client."""
    others = sorted(
        (q for q in quotes if "amountOut" in q and q["poolId"] != " > ".join(route.pool_ids)),
        key=lambda q: int(q["amountOut"]),
        reverse=True,
    )
    others = [q for q in others if not (route.kind == "single" and q["poolId"] == route.legs[0].pool_id)]
    if not others:
        return "only venue that could fill"
    runner_up = others[0]
    second = int(runner_up["amountOut"])
    edge = (route.amount_out - second) * 10_000 / second if second else float("inf")
    what = "best output" if route.kind == "single" else f"{route.kind.replace('_', '-')} route pays most"
    return f"{what}; {edge:.1f} bps more than {runner_up['dex']}"


def decide_route(
    pools: Sequence[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    now: float,
    policy: RoutingPolicy,
    skipped: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """``{"route", "error", "quotes", "skipped", "reason"}``; route None when nothing fills."""
    quotes = [quote_json(q) for q in all_quotes(pools, token_in, token_out, amount_in, now)]
    if policy.allow_two_hop:
        quotes += _two_hop_candidates(pools, token_in, token_out, amount_in, now, policy.intermediates)
    result: dict[str, Any] = {"route": None, "error": None, "quotes": quotes, "skipped": list(skipped)}
    try:
        route = find_best_route(
            pools,
            token_in,
            token_out,
            amount_in,
            now,
            allow_split=policy.allow_split,
            allow_two_hop=policy.allow_two_hop,
            intermediates=policy.intermediates,
        )
    except SimError as exc:
        # A venue that did not answer may be the one that could fill (a pool
        # restarting, the only pool of the pair): worth a retry. A real "no",
        # with every venue heard, is not.
        unreachable = bool(skipped)
        code = "POOLS_UNAVAILABLE" if unreachable else exc.code
        if not unreachable:
            message = str(exc)
        elif not pools and isinstance(exc, NoRoute):
            message = "no pool answered in time"
        else:
            ids = ", ".join(str(s.get("poolId")) for s in skipped)
            message = f"{exc} (without {ids}, which did not answer)"
        result["error"] = {"code": code, "message": message, "transient": unreachable}
        return result
    if route.price_impact_bps > policy.max_price_impact_bps:
        result["error"] = {
            "code": "INSUFFICIENT_LIQUIDITY",
            "message": (
                f"not enough liquidity: the best route would move the price"
                f" {route.price_impact_bps / 100:.1f}% (limit {policy.max_price_impact_bps / 100:.1f}%)"
            ),
            "transient": False,
        }
        return result
    result["route"] = route.to_dict()
    result["reason"] = why(route, quotes)
    return result


def pool_summary(pool: Pool) -> dict[str, Any]:
    """What a client sees of a pool: DEX, kind, pair, fee, spot price, reserves, and
    what its kind adds (a DLMM pool: its active bin and bin count)."""
    base, quote = pool.token_x, pool.token_y
    summary: dict[str, Any] = {
        "poolId": pool.pool_id,
        "dex": pool.dex,
        "kind": pool.kind,
        "base": base.symbol,
        "quote": quote.symbol,
        "feeBps": pool.fee_bps,
        "spotPrice": pool.spot_price(base.symbol),
        "reserves": {k: str(v) for k, v in pool.reserves().items()},
    }
    summary.update(pool.extra_summary())
    return summary
