"""Routes and their legs, every venue's quote, and the best single pool."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sim.pools.base import AmountTooSmall, InsufficientLiquidity, InvalidSwapAmount, Pool, SimError, SwapQuote

RouteKind = Literal["single", "split", "two_hop"]


class NoRoute(SimError):
    """No pool, and no chain of pools, trades the requested pair."""

    code = "NO_ROUTE"


@dataclass(frozen=True, slots=True)
class RouteLeg:
    pool_id: str
    dex: str
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    fee: int  # base units of token_in
    price_impact_bps: float

    @classmethod
    def from_quote(cls, quote: SwapQuote) -> "RouteLeg":
        return cls(
            pool_id=quote.pool_id,
            dex=quote.dex,
            token_in=quote.token_in,
            token_out=quote.token_out,
            amount_in=quote.amount_in,
            amount_out=quote.amount_out,
            fee=quote.fee,
            price_impact_bps=quote.price_impact_bps,
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True)
class Route:
    """A complete route. Legs of a split share token_in and token_out; legs of
    a two-hop route are chained (leg 2's amount_in is leg 1's amount_out)."""

    kind: RouteKind
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    legs: tuple[RouteLeg, ...]
    fee_by_token: dict[str, int] = field(default_factory=dict)
    price_impact_bps: float = 0.0

    @property
    def pool_ids(self) -> tuple[str, ...]:
        return tuple(leg.pool_id for leg in self.legs)

    @property
    def dexes(self) -> tuple[str, ...]:
        return tuple(leg.dex for leg in self.legs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "token_in": self.token_in,
            "token_out": self.token_out,
            "amount_in": self.amount_in,
            "amount_out": self.amount_out,
            "legs": [leg.to_dict() for leg in self.legs],
            "fee_by_token": dict(self.fee_by_token),
            "price_impact_bps": self.price_impact_bps,
        }


@dataclass(frozen=True, slots=True)
class QuoteFailure:
    """Why one pool has no quote for an order (shown beside the quotes)."""

    pool_id: str
    dex: str
    token_in: str
    token_out: str
    amount_in: int
    code: str
    message: str


# --------------------------------------------------------------------------- helpers


def check_order(token_in: str, token_out: str, amount_in: int) -> None:
    if isinstance(amount_in, bool) or not isinstance(amount_in, int):
        raise InvalidSwapAmount(f"amount_in must be an integer of base units, got {amount_in!r}")
    if amount_in <= 0:
        raise InvalidSwapAmount(f"amount_in must be positive, got {amount_in}")
    if token_in == token_out:
        raise NoRoute(f"cannot route {token_in} to itself")


def direct_pools(pools: Iterable[Pool], token_in: str, token_out: str) -> list[Pool]:
    """Pools of the pair, in a deterministic order (by pool id)."""
    return sorted((p for p in pools if p.serves(token_in, token_out)), key=lambda p: p.pool_id)


def _single_route(quote: SwapQuote) -> Route:
    return Route(
        kind="single",
        token_in=quote.token_in,
        token_out=quote.token_out,
        amount_in=quote.amount_in,
        amount_out=quote.amount_out,
        legs=(RouteLeg.from_quote(quote),),
        fee_by_token={quote.token_in: quote.fee},
        price_impact_bps=quote.price_impact_bps,
    )


def _better(a: SwapQuote, b: SwapQuote | None) -> bool:
    """More output wins; on a tie, the smaller fee."""
    return b is None or (a.amount_out, -a.fee) > (b.amount_out, -b.fee)


def raise_failures(failures: list[InsufficientLiquidity], what: str) -> None:
    """Every candidate failed for liquidity: say so; no candidate at all: no route.

    When every candidate failed only because the amount buys nothing, that is
    what the order is told (``AMOUNT_TOO_SMALL``), not a lack of liquidity.
    """
    if failures and all(isinstance(f, AmountTooSmall) for f in failures):
        raise AmountTooSmall(f"{what}: amount too small: it buys nothing on any route") from failures[0]
    if failures:
        raise InsufficientLiquidity(f"{what}: not enough liquidity ({failures[0]})") from failures[0]
    raise NoRoute(what)


# --------------------------------------------------------------------------- quotes


def all_quotes(
    pools: Iterable[Pool], token_in: str, token_out: str, amount_in: int, now: float = 0.0
) -> list[SwapQuote | QuoteFailure]:
    """Every pool of the pair's quote for the order, or why it has none.

    In pool-id order; a pool that cannot fill gives a :class:`QuoteFailure`
    with the error's stable code instead of a quote.
    """
    results: list[SwapQuote | QuoteFailure] = []
    for pool in direct_pools(pools, token_in, token_out):
        try:
            results.append(pool.quote_exact_in(token_in, amount_in, now))
        except SimError as exc:
            results.append(
                QuoteFailure(pool.pool_id, pool.dex, token_in, token_out, amount_in, exc.code, str(exc))
            )
    return results


def best_single(
    pools: Iterable[Pool], token_in: str, token_out: str, amount_in: int, now: float = 0.0
) -> Route:
    """The single pool that pays the most for the whole order (the seed's rule).

    Pools that cannot fill are skipped. Raises :class:`NoRoute` when no pool
    trades the pair, :class:`InsufficientLiquidity` when none can fill it.
    """
    check_order(token_in, token_out, amount_in)
    candidates = direct_pools(pools, token_in, token_out)
    if not candidates:
        raise NoRoute(f"no pool trades {token_in} -> {token_out}")
    best: SwapQuote | None = None
    failures: list[InsufficientLiquidity] = []
    for pool in candidates:
        try:
            quote = pool.quote_exact_in(token_in, amount_in, now)
        except InsufficientLiquidity as exc:
            failures.append(exc)
            continue
        if quote.amount_out <= 0:  # the pools raise for this; a quote of nothing is no fill either
            failures.append(InsufficientLiquidity(f"{amount_in} {token_in} buys nothing on {pool.pool_id}"))
            continue
        if _better(quote, best):
            best = quote
    if best is None:
        raise_failures(failures, f"no pool can fill {amount_in} {token_in} -> {token_out}")
    assert best is not None
    return _single_route(best)
