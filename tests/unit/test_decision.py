"""The routing decision as clients see it: quotes, candidates, reason, refusals (typed, base units)."""

from engine.config import build_pools, load_market_config
from engine.settings import DEFAULT_MARKET_CONFIG
from sim.decision import RoutingPolicy, Skipped, VenueQuote, decide_route, pool_summary, why
from sim.routing import QuoteFailure, find_best_route

POOLS = build_pools(load_market_config(DEFAULT_MARKET_CONFIG))
POLICY = RoutingPolicy()
SOL, BONK = 10**9, 10**5


def test_a_direct_pair_shows_every_venue_and_says_why_the_winner_won():
    decision = decide_route(POOLS, "SOL", "USDC", 3 * SOL, 0.0, POLICY)
    direct = [q for q in decision.quotes if isinstance(q, VenueQuote) and q.kind == "single"]
    assert {q.pool_id for q in direct} == {"raydium:SOL-USDC", "meteora:SOL-USDC"}
    assert decision.route is not None and decision.failure is None
    assert decision.route.amount_out >= max(q.amount_out for q in direct)
    assert all(q.fee is not None and 0 < q.fee_bps < 100 for q in direct)
    assert decision.reason.startswith("best output;") and "bps more than" in decision.reason


def test_without_a_direct_pool_the_two_hop_candidates_are_the_quotes():
    decision = decide_route(POOLS, "BONK", "USDC", 5_000_000 * BONK, 0.0, POLICY)
    assert decision.route is not None and decision.route.kind == "two_hop"
    candidates = [q for q in decision.quotes if q.kind == "two_hop"]
    assert candidates and all(" > " in q.pool_id and q.via in ("SOL", "USDC") for q in candidates)
    assert max(q.amount_out for q in candidates) == decision.route.amount_out
    assert all(q.fee is None and q.fee_bps is None for q in candidates)


def test_an_order_that_would_move_the_price_too_far_is_refused_as_illiquid():
    decision = decide_route(POOLS, "SOL", "USDC", 100_000 * SOL, 0.0, POLICY)
    assert decision.route is None
    assert decision.failure.code == "INSUFFICIENT_LIQUIDITY" and decision.failure.transient is False
    assert len(decision.quotes) >= 2  # the client still sees what was quoted


def test_a_pool_that_cannot_quote_is_shown_with_its_reason():
    decision = decide_route(POOLS, "SOL", "USDC", 1, 0.0, POLICY)
    failures = [q for q in decision.quotes if isinstance(q, QuoteFailure)]
    assert failures and {f.code for f in failures} == {"AMOUNT_TOO_SMALL"}
    assert decision.failure.code == "AMOUNT_TOO_SMALL"


def test_when_no_pool_answered_the_failure_is_transient():
    skipped = [Skipped("raydium:SOL-USDC", "POOL_TIMEOUT", "no answer in 1.0s")]
    decision = decide_route([], "SOL", "USDC", SOL, 0.0, POLICY, skipped)
    assert decision.failure.code == "POOLS_UNAVAILABLE" and decision.failure.transient
    assert decision.failure.message == "no pool answered in time"
    assert decision.skipped == tuple(skipped)


def test_a_pair_nothing_connects_is_a_final_no_route():
    decision = decide_route(POOLS, "BONK", "JUP", BONK, 0.0, RoutingPolicy(allow_two_hop=False))
    assert decision.failure.code == "NO_ROUTE" and not decision.failure.transient


def test_the_only_venue_is_said_to_be_the_only_one():
    only = [p for p in POOLS if p.pool_id == "meteora:JUP-USDC"]
    route = find_best_route(only, "JUP", "USDC", 10**6, 0.0, allow_two_hop=False)
    assert why(route, []) == "only venue that could fill"


def test_when_the_venue_that_could_fill_did_not_answer_the_failure_is_transient():
    """JUP/USDC has one pool: while it restarts the others answer, and there is no route
    through them. That is worth a retry, not a final NO_ROUTE."""
    skipped = [Skipped("meteora:JUP-USDC", "POOL_UNAVAILABLE")]
    answered = [p for p in POOLS if p.pool_id != "meteora:JUP-USDC"]
    decision = decide_route(answered, "JUP", "USDC", 300 * 10**6, 0.0, POLICY, skipped)
    assert decision.route is None
    assert decision.failure.code == "POOLS_UNAVAILABLE" and decision.failure.transient
    assert "meteora:JUP-USDC" in decision.failure.message


def test_a_pool_summary_names_its_dex_pair_price_and_bins():
    by_id = {p.pool_id: p for p in POOLS}
    cpmm, dlmm = pool_summary(by_id["raydium:SOL-USDC"]), pool_summary(by_id["meteora:SOL-USDC"])
    assert (cpmm.dex, cpmm.kind, cpmm.base, cpmm.quote) == ("raydium", "cpmm", "SOL", "USDC")
    assert 140 < cpmm.spot_price < 160 and cpmm.extra == {}
    assert dlmm.kind == "dlmm" and dlmm.extra["bins"] > 1 and isinstance(dlmm.extra["active_bin"], int)
    assert dlmm.reserves["USDC"] > 0
