"""The routing decision as clients see it: quotes, candidates, reason, errors."""

from engine.config import build_pools, load_market_config
from engine.settings import DEFAULT_MARKET_CONFIG
from sim.decision import RoutingPolicy, decide_route, why
from sim.routing import find_best_route

POOLS = build_pools(load_market_config(DEFAULT_MARKET_CONFIG))
POLICY = RoutingPolicy()
SOL, BONK = 10**9, 10**5


def test_a_direct_pair_shows_every_venue_and_says_why_the_winner_won():
    decision = decide_route(POOLS, "SOL", "USDC", 3 * SOL, 0.0, POLICY)
    route, quotes = decision["route"], decision["quotes"]
    direct = [q for q in quotes if q["kind"] == "single"]
    assert {q["poolId"] for q in direct} == {"raydium:SOL-USDC", "meteora:SOL-USDC"}
    best = max(int(q["amountOut"]) for q in direct)
    assert route["amount_out"] >= best and decision["error"] is None
    assert decision["reason"].startswith("best output;") and "bps more than" in decision["reason"]


def test_without_a_direct_pool_the_two_hop_candidates_are_the_quotes():
    decision = decide_route(POOLS, "BONK", "USDC", 5_000_000 * BONK, 0.0, POLICY)
    assert decision["route"]["kind"] == "two_hop"
    candidates = [q for q in decision["quotes"] if q["kind"] == "two_hop"]
    assert candidates and all(" > " in q["poolId"] for q in candidates)
    assert max(int(q["amountOut"]) for q in candidates) == decision["route"]["amount_out"]


def test_an_order_that_would_move_the_price_too_far_is_refused_as_illiquid():
    decision = decide_route(POOLS, "SOL", "USDC", 100_000 * SOL, 0.0, POLICY)
    assert decision["route"] is None
    assert decision["error"]["code"] == "INSUFFICIENT_LIQUIDITY"
    assert decision["error"]["transient"] is False
    assert len(decision["quotes"]) >= 2  # the client still sees what was quoted


def test_when_no_pool_answered_the_failure_is_transient():
    skipped = [{"poolId": "raydium:SOL-USDC", "error": "POOL_TIMEOUT"}]
    decision = decide_route([], "SOL", "USDC", SOL, 0.0, POLICY, skipped)
    assert decision["error"]["code"] == "POOLS_UNAVAILABLE" and decision["error"]["transient"]
    assert decision["skipped"] == skipped


def test_a_pair_nothing_connects_is_a_final_no_route():
    decision = decide_route(POOLS, "BONK", "JUP", BONK, 0.0, RoutingPolicy(allow_two_hop=False))
    assert decision["error"]["code"] == "NO_ROUTE" and not decision["error"]["transient"]


def test_the_only_venue_is_said_to_be_the_only_one():
    only = [p for p in POOLS if p.pool_id == "meteora:JUP-USDC"]
    route = find_best_route(only, "JUP", "USDC", 10**6, 0.0, allow_two_hop=False)
    assert why(route, []) == "only venue that could fill"


def test_when_the_venue_that_could_fill_did_not_answer_the_failure_is_transient():
    """JUP/USDC has one pool: while it restarts the others answer, and there is no route
    through them. That is worth a retry, not a final NO_ROUTE."""
    skipped = [{"poolId": "meteora:JUP-USDC", "error": "POOL_UNAVAILABLE"}]
    answered = [p for p in POOLS if p.pool_id != "meteora:JUP-USDC"]
    decision = decide_route(answered, "JUP", "USDC", 300 * 10**6, 0.0, POLICY, skipped)
    assert decision["route"] is None
    assert decision["error"]["code"] == "POOLS_UNAVAILABLE" and decision["error"]["transient"]
    assert "meteora:JUP-USDC" in decision["error"]["message"]


def test_a_pool_summary_names_its_dex_pair_price_and_bins():
    from sim.decision import pool_summary

    by_id = {p.pool_id: p for p in POOLS}
    cpmm, dlmm = pool_summary(by_id["raydium:SOL-USDC"]), pool_summary(by_id["meteora:SOL-USDC"])
    assert (cpmm["dex"], cpmm["kind"], cpmm["base"], cpmm["quote"]) == ("raydium", "cpmm", "SOL", "USDC")
    assert 140 < cpmm["spotPrice"] < 160 and "bins" not in cpmm
    assert dlmm["kind"] == "dlmm" and dlmm["bins"] > 1 and isinstance(dlmm["activeBin"], int)
    assert int(dlmm["reserves"]["USDC"]) > 0
