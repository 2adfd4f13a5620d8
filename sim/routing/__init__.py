"""Routing: the best way to turn ``amount_in`` of one token into another.

Pure functions over :class:`~sim.pools.base.Pool` objects. The engine's router
actor fetches pool snapshots from the pool actors, restores them locally and
calls these; nothing here mutates a pool (only quotes are taken).

* :func:`best_single` — the seed's rule: the one pool that pays the most.
* :func:`best_split` — one order split across several pools of the same pair
  so that every leg ends at the same marginal rate (closed form for
  constant-product pools, bisection on the marginal rate otherwise), re-quoted
  leg by leg with the pools' exact integer math; never worse than
  :func:`best_single`.
* :func:`two_hop` — through an intermediate token (BONK -> SOL -> USDC), the
  second leg's input being the first leg's exact output.
* :func:`find_best_route` — the largest output among the allowed kinds.
* :func:`all_quotes` — every venue's quote (or why it has none), for display.
"""

from sim.routing.choice import find_best_route, two_hop, two_hop_routes
from sim.routing.routes import (
    NoRoute,
    QuoteFailure,
    Route,
    RouteKind,
    RouteLeg,
    all_quotes,
    best_single,
)
from sim.routing.split import best_split

__all__ = [
    "NoRoute",
    "QuoteFailure",
    "Route",
    "RouteKind",
    "RouteLeg",
    "all_quotes",
    "best_single",
    "best_split",
    "find_best_route",
    "two_hop",
    "two_hop_routes",
]
