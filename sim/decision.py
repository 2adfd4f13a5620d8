"""The routing decision the engine shows its clients: pure, on pool states.

``decide_route`` is what the OrderRouter actor runs on the pools it heard
from (and what the in-process gateway runs on its own pools): the best route
under the routing policy, every venue's quote, the two-hop candidates, and,
when nothing can fill, why, as a typed refusal. Amounts are base units; how
a client sees them is the API's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sim.pools.base import Pool, SimError, SwapQuote
from sim.routing import NoRoute, QuoteFailure, Route, RouteKind, all_quotes, find_best_route, two_hop_routes


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    allow_split: bool = False
    allow_two_hop: bool = True
    intermediates: tuple[str, ...] = ("SOL", "USDC")
    # A route that would move a pool's price more than this is refused: the
    # order is larger than the liquidity there is for it.
    max_price_impact_bps: float = 2500.0


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why something did not happen; ``transient`` ones are worth a retry."""

    code: str
    message: str
    transient: bool

    @classmethod
    def of(cls, exc: SimError) -> Rejection:
        return cls(exc.code, str(exc), exc.transient)


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """One candidate the router weighed: a pool's quote, or a two-hop path's (``pool_id`` "a > b")."""

    pool_id: str
    dex: str
    kind: RouteKind
    amount_in: int
    amount_out: int
    price_impact_bps: float
    fee: int | None = None  # base units of the input token (single pools)
    execution_price: float | None = None
    via: str | None = None  # the intermediate token of a two-hop path

    @property
    def fee_bps(self) -> float | None:
        if self.fee is None:
            return None
        return round(self.fee * 10_000 / self.amount_in, 3) if self.amount_in else 0.0

    @classmethod
    def of(cls, quote: SwapQuote) -> VenueQuote:
        return cls(quote.pool_id, quote.dex, "single", quote.amount_in, quote.amount_out,
                   round(quote.price_impact_bps, 3), quote.fee, quote.execution_price)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Skipped:
    """A pool that did not answer the router in time (or whose actor was down)."""

    pool_id: str
    code: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The best route (or why there is none), every quote seen, and the pools that were skipped."""

    route: Route | None
    quotes: tuple[VenueQuote | QuoteFailure, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    reason: str | None = None
    failure: Rejection | None = None


def _two_hop_candidates(
    pools: Sequence[Pool], token_in: str, token_out: str, amount_in: int, now: float, vias: Iterable[str]
) -> list[VenueQuote]:
    """Each intermediate's best two-hop path, quoted exactly, as one entry each."""
    routes, _ = two_hop_routes(pools, token_in, token_out, amount_in, now, vias)
    return [
        VenueQuote(
            pool_id=" > ".join(leg.pool_id for leg in route.legs),
            dex=" > ".join(leg.dex for leg in route.legs),
            kind="two_hop",
            amount_in=amount_in,
            amount_out=route.amount_out,
            price_impact_bps=round(max(leg.price_impact_bps for leg in route.legs), 3),
            via=route.legs[0].token_out,
        )
        for route in routes
    ]


def why(route: Route, quotes: Sequence[VenueQuote | QuoteFailure]) -> str:
    """One line on why this route won, for the client."""
    chosen = " > ".join(route.pool_ids)
    others = sorted(
        (q for q in quotes if isinstance(q, VenueQuote) and q.pool_id != chosen),
        key=lambda q: q.amount_out,
        reverse=True,
    )
    others = [q for q in others if not (route.kind == "single" and q.pool_id == route.legs[0].pool_id)]
    if not others:
        return "only venue that could fill"
    runner_up = others[0]
    second = runner_up.amount_out
    edge = (route.amount_out - second) * 10_000 / second if second else float("inf")
    what = "best output" if route.kind == "single" else f"{route.kind.replace('_', '-')} route pays most"
    return f"{what}; {edge:.1f} bps more than {runner_up.dex}"


def route_pool_ids(
    pool_tokens: Mapping[str, Iterable[str]], token_in: str, token_out: str, policy: RoutingPolicy
) -> list[str]:
    """The pools that can take part in a route from token_in to token_out (direct, or two-hop
    through the policy's intermediates), from each pool's pair of token symbols."""
    wanted: list[set[str]] = [{token_in, token_out}]
    if policy.allow_two_hop:
        for via in policy.intermediates:
            if via not in (token_in, token_out):
                wanted += [{token_in, via}, {via, token_out}]
    return [pool_id for pool_id, pair in pool_tokens.items() if set(pair) in wanted]


def best_route_or_none(
    pools: Sequence[Pool], token_in: str, token_out: str, amount_in: int, now: float, policy: RoutingPolicy
) -> Route | None:
    """The route ``decide_route`` would take, or None when it would refuse (what a trigger compares)."""
    try:
        route = find_best_route(
            pools, token_in, token_out, amount_in, now,
            allow_split=policy.allow_split, allow_two_hop=policy.allow_two_hop, intermediates=policy.intermediates,
        )  # fmt: skip
    except SimError:
        return None
    return None if route.price_impact_bps > policy.max_price_impact_bps else route


def decide_route(
    pools: Sequence[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    now: float,
    policy: RoutingPolicy,
    skipped: Sequence[Skipped] = (),
) -> RouteDecision:
    """The decision; its ``route`` is None (and ``failure`` says why) when nothing can fill."""
    quotes: list[VenueQuote | QuoteFailure] = [
        q if isinstance(q, QuoteFailure) else VenueQuote.of(q)
        for q in all_quotes(pools, token_in, token_out, amount_in, now)
    ]
    if policy.allow_two_hop:
        quotes += _two_hop_candidates(pools, token_in, token_out, amount_in, now, policy.intermediates)
    seen = (tuple(quotes), tuple(skipped))
    try:
        route = find_best_route(
            pools, token_in, token_out, amount_in, now,
            allow_split=policy.allow_split, allow_two_hop=policy.allow_two_hop, intermediates=policy.intermediates,
        )  # fmt: skip
    except SimError as exc:
        return RouteDecision(None, *seen, failure=_refusal(exc, pools, skipped))
    if route.price_impact_bps > policy.max_price_impact_bps:
        message = (
            f"not enough liquidity: the best route would move the price"
            f" {route.price_impact_bps / 100:.1f}% (limit {policy.max_price_impact_bps / 100:.1f}%)"
        )
        return RouteDecision(None, *seen, failure=Rejection("INSUFFICIENT_LIQUIDITY", message, False))
    return RouteDecision(route, *seen, reason=why(route, quotes))


def _refusal(exc: SimError, pools: Sequence[Pool], skipped: Sequence[Skipped]) -> Rejection:
    # A venue that did not answer may be the one that could fill (a pool
    # restarting, the only pool of the pair): worth a retry. A real "no",
    # with every venue heard, is not.
    if not skipped:
        return Rejection.of(exc)
    if not pools and isinstance(exc, NoRoute):
        return Rejection("POOLS_UNAVAILABLE", "no pool answered in time", True)
    ids = ", ".join(s.pool_id for s in skipped)
    return Rejection("POOLS_UNAVAILABLE", f"{exc} (without {ids}, which did not answer)", True)


@dataclass(frozen=True, slots=True)
class PoolSummary:
    """What a client sees of a pool (base units), and what its kind adds (a DLMM pool: its bins)."""

    pool_id: str
    dex: str
    kind: str
    base: str
    quote: str
    fee_bps: float
    spot_price: float
    reserves: dict[str, int]
    extra: dict[str, object] = field(default_factory=dict)


def pool_summary(pool: Pool) -> PoolSummary:
    base, quote = pool.token_x, pool.token_y
    return PoolSummary(
        pool.pool_id, pool.dex, pool.kind, base.symbol, quote.symbol, pool.fee_bps,
        pool.spot_price(base.symbol), dict(pool.reserves()), dict(pool.extra_summary()),
    )  # fmt: skip
