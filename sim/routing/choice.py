"""Routes through an intermediate token, and the choice among route kinds."""

from __future__ import annotations

from collections.abc import Iterable

from sim.pools.base import AmountTooSmall, InsufficientLiquidity, Pool
from sim.routing.routes import NoRoute, Route, best_single, check_order, raise_failures
from sim.routing.split import best_split


def two_hop(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    now: float = 0.0,
    via: str | Iterable[str] = ("SOL", "USDC"),
) -> Route:
    """The best route through one intermediate token of ``via``.

    Each hop takes its best single pool; the second hop is quoted on the
    first hop's exact output. (Greedy is optimal here: the second hop's
    output only grows with its input, and the two hops use different pools.)
    """
    check_order(token_in, token_out, amount_in)
    vias = [via] if isinstance(via, str) else list(via)
    routes, failures = two_hop_routes(pools, token_in, token_out, amount_in, now, vias)
    best = max(routes, key=lambda r: r.amount_out, default=None)
    if best is None:
        raise_failures(failures, f"no two-hop route {token_in} -> {token_out} via {'/'.join(vias)}")
    assert best is not None
    return best


def two_hop_routes(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    now: float,
    vias: Iterable[str],
) -> tuple[list[Route], list[InsufficientLiquidity]]:
    """Each intermediate's best two-hop route, and the liquidity failures met."""
    pools = list(pools)
    routes: list[Route] = []
    failures: list[InsufficientLiquidity] = []
    for mid in vias:
        if mid in (token_in, token_out):
            continue
        try:
            first = best_single(pools, token_in, mid, amount_in, now)
            second = best_single(pools, mid, token_out, first.amount_out, now)
        except NoRoute:
            continue
        except InsufficientLiquidity as exc:
            failures.append(exc)
            continue
        leg1, leg2 = first.legs[0], second.legs[0]
        impact = 1 - (1 - leg1.price_impact_bps / 10_000) * (1 - leg2.price_impact_bps / 10_000)
        routes.append(
            Route(
                kind="two_hop",
                token_in=token_in,
                token_out=token_out,
                amount_in=amount_in,
                amount_out=leg2.amount_out,
                legs=(leg1, leg2),
                fee_by_token={token_in: leg1.fee, mid: leg2.fee},
                price_impact_bps=impact * 10_000,
            )
        )
    return routes, failures


# --------------------------------------------------------------------------- choice


def find_best_route(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    now: float = 0.0,
    *,
    allow_split: bool = False,
    allow_two_hop: bool = True,
    intermediates: Iterable[str] = ("SOL", "USDC"),
) -> Route:
    """The route with the largest output among the allowed kinds.

    On equal output the simpler route wins (direct before two-hop). Raises
    :class:`NoRoute` when nothing connects the pair, otherwise
    :class:`InsufficientLiquidity` when nothing can fill the order.
    """
    check_order(token_in, token_out, amount_in)
    pools = list(pools)
    candidates: list[Route] = []
    failures: list[InsufficientLiquidity] = []
    if any(p.serves(token_in, token_out) for p in pools):
        try:
            finder = best_split if allow_split else best_single
            candidates.append(finder(pools, token_in, token_out, amount_in, now))
        except InsufficientLiquidity as exc:
            failures.append(exc)
    if allow_two_hop:
        try:
            candidates.append(two_hop(pools, token_in, token_out, amount_in, now, via=tuple(intermediates)))
        except NoRoute:
            pass
        except InsufficientLiquidity as exc:
            failures.append(exc)
    best: Route | None = None
    for route in candidates:
        if best is None or route.amount_out > best.amount_out:
            best = route
    if best is None and failures and all(isinstance(f, AmountTooSmall) for f in failures):
        raise AmountTooSmall(f"amount too small: {amount_in} base units of {token_in} buy no {token_out} on any route")
    if best is None:
        raise_failures(failures, f"no route {token_in} -> {token_out}")
    assert best is not None
    return best
