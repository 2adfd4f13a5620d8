"""sim.market: reference prices, arbitrage and noise flow, determinism."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from sim.market import (
    ArbitrageParams,
    Flow,
    Market,
    MarketParams,
    MarketTrade,
    NoiseParams,
    arbitrage_trade,
)
from sim.pools import CpmmPool, DlmmFeeParams, DlmmPool, Pool, restore_pool
from sim.routing import best_single
from sim.tokens import SOL, USDC, USDT

PRICES = {"SOL": 150.0, "USDC": 1.0, "USDT": 1.0}


def venues() -> list[Pool]:
    """The seed's two SOL/USDC venues (as in configs/market.yaml) plus a SOL/USDT pool."""
    return [
        CpmmPool.at_price("raydium:SOL-USDC", SOL, USDC, price=150.0, value_y=50_000 * USDC.one,
                          fee_num=3_000, fee_den=1_000_000),
        DlmmPool.with_liquidity("meteora:SOL-USDC", SOL, USDC, price=150.0,
                                value_y=120_000 * USDC.one, bin_step=10, bins_each_side=69,
                                params=DlmmFeeParams(base_factor=20_000)),
        CpmmPool.at_price("raydium:SOL-USDT", SOL, USDT, price=150.0, value_y=30_000 * USDT.one,
                          fee_num=2_500, fee_den=1_000_000),
    ]


def params(**changes) -> MarketParams:
    base = dict(
        reference_prices_usd=PRICES,
        volatility={"SOL": 0.8, "USDC": 0.002, "USDT": 0.003},
        mean_reversion={"USDC": 0.01, "USDT": 0.01},
        tick_s=1.0,
        seed=11,
        arbitrage=ArbitrageParams(fraction=0.6, min_profit_usd=0.05),
        noise=NoiseParams(rate_per_s=0.5, median_usd=50.0, sigma=1.0, max_usd=5_000.0),
    )
    base.update(changes)
    return MarketParams(**base)


def snapshots(market: Market) -> dict[str, dict]:
    return {pid: pool.snapshot() for pid, pool in market.pools.items()}


def run(market: Market, ticks: int) -> list[MarketTrade]:
    return [trade for _ in range(ticks) for trade in market.tick()]


def prices(market: Market) -> dict[str, float]:
    return {symbol: market.reference_price(symbol) for symbol in PRICES}


def gap_bps(market: Market, pool: Pool) -> float:
    """How far the pool's spot price of x is above (+) or below (-) the reference."""
    return (pool.spot_price(pool.token_x.symbol) / market.reference_cross(pool) - 1.0) * 10_000


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_path_bit_for_bit() -> None:
    a, b = Market(venues(), params()), Market(venues(), params())
    trades_a = run(a, 300)
    trades_b = run(b, 300)
    assert trades_a == trades_b and len(trades_a) > 100
    assert snapshots(a) == snapshots(b)
    assert prices(a) == prices(b)  # floats compared exactly
    assert a.now == b.now == 300.0 and a.ticks == 300


def test_different_seeds_differ() -> None:
    a, b = Market(venues(), params()), Market(venues(), params(), seed=12)
    assert b.seed == 12
    assert run(a, 50) != run(b, 50)
    assert prices(a) != prices(b)
    assert snapshots(a) != snapshots(b)


def test_tick_is_next_flows_applied_in_order() -> None:
    ticking, planning = Market(venues(), params()), Market(venues(), params())
    pools = {p.pool_id: p for p in venues()}
    for _ in range(100):
        trades = ticking.tick()
        flows = planning.next_flows(None, pools)
        applied = []
        for flow in flows:
            quote = pools[flow.pool_id].swap_exact_in(flow.token_in, flow.amount_in, 0, flow.now)
            applied.append((flow.pool_id, flow.kind, quote.amount_in, quote.amount_out))
        assert applied == [(t.pool_id, t.kind, t.amount_in, t.amount_out) for t in trades]
    assert {pid: p.snapshot() for pid, p in pools.items()} == snapshots(ticking)


def test_next_flows_plans_without_mutating_the_pools() -> None:
    market = Market(venues(), params())
    pools = {p.pool_id: restore_pool(p.snapshot()) for p in venues()}
    pools["raydium:SOL-USDC"].swap_exact_in("SOL", 40 * SOL.one)  # displaced: arbitrage will plan
    before = {pid: p.snapshot() for pid, p in pools.items()}
    flows = market.next_flows(1.0, pools)
    assert any(f.kind == "arbitrage" and f.pool_id == "raydium:SOL-USDC" for f in flows)
    assert {pid: p.snapshot() for pid, p in pools.items()} == before
    assert snapshots(market) == {p.pool_id: p.snapshot() for p in venues()}  # its own untouched
    kinds = [f.kind for f in flows]
    assert kinds == sorted(kinds)  # arbitrage first, then noise
    assert all(isinstance(f, Flow) and f.amount_in > 0 and f.now == 1.0 for f in flows)
    assert flows[0].token_out in ("SOL", "USDC")


def test_missing_pools_get_no_flow_but_do_not_change_the_path() -> None:
    full, partial = Market(venues(), params()), Market(venues(), params())
    pools = {p.pool_id: p for p in venues()}
    subset = {"raydium:SOL-USDT": pools["raydium:SOL-USDT"]}
    for _ in range(30):
        all_flows = full.next_flows(1.0, pools)
        some = partial.next_flows(1.0, subset)
        assert some == [f for f in all_flows if f.pool_id in subset]
    assert prices(full) == prices(partial)


def test_now_can_follow_a_wall_clock() -> None:
    market = Market(venues(), params(start_time=1_000.0))
    assert market.now == 1_000.0
    flows = market.next_flows(0.5, now=5_000.0)
    assert market.now == 5_000.0 and all(f.now == 5_000.0 for f in flows)
    market.next_flows(0.5)
    assert market.now == 5_000.5


# --------------------------------------------------------------------------- the market moves


def test_best_venue_changes_over_time_and_prices_drift_apart_and_back() -> None:
    market = Market(venues(), params(seed=3))
    winners: list[str] = []
    gaps: list[float] = []
    for _ in range(2_000):
        market.tick()
        pools = list(market.pools.values())
        winners.append(best_single(pools, "SOL", "USDC", SOL.one, market.now).pool_ids[0])
        ray, met = market.pools["raydium:SOL-USDC"], market.pools["meteora:SOL-USDC"]
        gaps.append((ray.spot_price("SOL") / met.spot_price("SOL") - 1) * 10_000)
    counts = Counter(winners)
    assert set(counts) == {"raydium:SOL-USDC", "meteora:SOL-USDC"}
    assert min(counts.values()) >= 100  # each venue is best at least 5 % of the time
    switches = sum(a != b for a, b in zip(winners, winners[1:]))
    assert switches >= 50
    g = np.array(gaps)
    assert (g > 40).any() and (g < -40).any()  # apart, both ways
    assert (np.abs(g) < 5).sum() >= 50  # and back together
    # Arbitrage keeps them from wandering off for good.
    assert np.abs(g).mean() < 100


def test_arbitrage_brings_a_displaced_cpmm_back_to_its_fee_band() -> None:
    quiet = params(noise=NoiseParams(enabled=False), volatility={},
                   arbitrage=ArbitrageParams(fraction=1.0, min_profit_usd=0.01))
    market = Market(venues(), quiet)
    pool = market.pools["raydium:SOL-USDC"]
    pool.swap_exact_in("USDC", 3_000 * USDC.one)  # SOL now ~12 % dear on this pool
    assert gap_bps(market, pool) > 1_000
    trades = market.tick()
    assert [(t.pool_id, t.kind, t.token_in) for t in trades] == [
        ("raydium:SOL-USDC", "arbitrage", "SOL")  # sells the dear token into the pool
    ]
    assert isinstance(trades[0], MarketTrade) and trades[0].amount_out > 0
    gap = gap_bps(market, pool)
    assert 0 <= gap <= pool.fee_bps * 1.01 + 0.5  # at the edge of the band, not across it
    assert market.tick() == []  # inside the band: nothing pays


def test_partial_arbitrage_makes_prices_lag() -> None:
    quiet = params(noise=NoiseParams(enabled=False), volatility={},
                   arbitrage=ArbitrageParams(fraction=0.5, min_profit_usd=0.0))
    market = Market(venues(), quiet)
    pool = market.pools["raydium:SOL-USDC"]
    pool.swap_exact_in("SOL", 25 * SOL.one)  # SOL cheap here
    gaps = [gap_bps(market, pool)]
    for _ in range(10):
        market.tick()
        gaps.append(gap_bps(market, pool))
    assert gaps[0] < -300
    assert all(a < b for a, b in zip(gaps, gaps[1:4]))  # closing step by step
    assert gaps[1] < -pool.fee_bps * 1.5  # one tick is not enough
    assert gaps[-1] >= -pool.fee_bps * 1.5


def test_arbitrage_brings_a_displaced_dlmm_back() -> None:
    quiet = params(noise=NoiseParams(enabled=False), volatility={},
                   arbitrage=ArbitrageParams(fraction=1.0, min_profit_usd=0.0))
    market = Market(venues(), quiet)
    pool = market.pools["meteora:SOL-USDC"]
    pool.swap_exact_in("SOL", 100 * SOL.one, now=0.0)  # walks the book down many bins
    assert gap_bps(market, pool) < -150
    for _ in range(3):
        market.tick()
    # Back within the fee plus one bin of 10 bps.
    assert abs(gap_bps(market, pool)) <= pool.fee_bps_at(market.now) + 10 + 1


def test_arbitrage_trade_is_none_inside_the_band_and_sized_on_quotes() -> None:
    pool = venues()[0]
    assert arbitrage_trade(pool, 150.0) is None
    assert arbitrage_trade(pool, 150.0 * 1.002) is None  # gap smaller than the 30 bps fee
    token_in, amount = arbitrage_trade(pool, 150.0 * 1.05)  # SOL cheap here: buy it
    assert token_in == "USDC"
    after = pool.quote_exact_in("USDC", amount).spot_price_after
    target = 1 / (150.0 * 1.05 * (1 - 0.003))
    assert after >= target and pool.quote_exact_in("USDC", amount * 1_002 // 1_000).spot_price_after < target


def test_arbitrage_of_a_book_it_cannot_restore_takes_what_is_there() -> None:
    thin = DlmmPool.with_liquidity("meteora:thin", SOL, USDC, price=150.0, value_y=2_000 * USDC.one,
                                   bin_step=10, bins_each_side=3,
                                   params=DlmmFeeParams(base_factor=20_000))
    token_in, amount = arbitrage_trade(thin, 200.0)  # far beyond the book's top bin
    assert token_in == "USDC" and amount > 0
    thin.swap_exact_in(token_in, amount)


def test_small_gaps_that_do_not_pay_min_profit_are_left() -> None:
    picky = params(noise=NoiseParams(enabled=False), volatility={},
                   arbitrage=ArbitrageParams(fraction=1.0, min_profit_usd=1_000.0))
    market = Market(venues(), picky)
    market.pools["raydium:SOL-USDC"].swap_exact_in("USDC", 1_000 * USDC.one)
    assert market.tick() == []
    off = params(noise=NoiseParams(enabled=False), arbitrage=ArbitrageParams(enabled=False))
    market = Market(venues(), off)
    market.pools["raydium:SOL-USDC"].swap_exact_in("USDC", 5_000 * USDC.one)
    assert run(market, 5) == []


# --------------------------------------------------------------------------- reference prices and noise


def test_reference_prices_follow_gbm_and_stables_stay_pinned() -> None:
    p = params(volatility={"SOL": 0.01, "USDC": 0.0005}, volatility_unit="per_second",
               noise=NoiseParams(enabled=False), arbitrage=ArbitrageParams(enabled=False),
               mean_reversion={"USDC": 0.05})
    market = Market([], p)
    sol, usdc = [], []
    for _ in range(5_000):
        market.next_flows(1.0, {})
        sol.append(market.reference_price("SOL"))
        usdc.append(market.reference_price("USDC"))
    returns = np.diff(np.log(sol))
    assert returns.std() == pytest.approx(0.01, rel=0.05)
    assert abs(returns.mean()) < 0.001
    assert max(abs(u - 1) for u in usdc) < 0.01
    # OU stationary spread: sigma / sqrt(2 theta) = 0.0005 / sqrt(0.1)
    assert np.log(usdc).std() == pytest.approx(0.0005 / math.sqrt(0.1), rel=0.25)
    assert market.reference_price("USDT") == 1.0  # no volatility given: still


def test_annual_volatility_is_scaled_to_seconds() -> None:
    p = params(volatility={"SOL": 0.8})
    assert p.sigma_per_second("SOL") == pytest.approx(0.8 / math.sqrt(365.25 * 86_400))
    assert p.sigma_per_second("USDC") == 0.0


def test_noise_arrivals_sizes_and_directions() -> None:
    noise = NoiseParams(rate_per_s=0.4, median_usd=80.0, sigma=0.8, max_usd=400.0,
                        pool_rates={"raydium:SOL-USDT": 0.0})
    market = Market(venues(), params(noise=noise, arbitrage=ArbitrageParams(enabled=False),
                                     volatility={}))
    flows: list[Flow] = []
    ticks = 2_000
    for _ in range(ticks):
        flows += market.next_flows(0.5)
    by_pool = Counter(f.pool_id for f in flows)
    assert "raydium:SOL-USDT" not in by_pool
    for pid in ("raydium:SOL-USDC", "meteora:SOL-USDC"):
        expected = 0.4 * 0.5 * ticks
        assert abs(by_pool[pid] - expected) < 4 * math.sqrt(expected)
    usd = np.array([f.amount_in / 10**9 * 150 if f.token_in == "SOL" else f.amount_in / 10**6
                    for f in flows])
    assert usd.max() <= 400.0 + 1e-6
    assert np.median(usd) == pytest.approx(80.0, rel=0.1)
    sides = Counter(f.token_in for f in flows)
    assert abs(sides["SOL"] - sides["USDC"]) < 4 * math.sqrt(len(flows))
    assert {f.kind for f in flows} == {"noise"}


def test_a_noise_trade_the_pool_cannot_fill_is_skipped() -> None:
    thin = DlmmPool.with_liquidity("meteora:thin", SOL, USDC, price=150.0, value_y=200 * USDC.one,
                                   bin_step=10, bins_each_side=2,
                                   params=DlmmFeeParams(base_factor=20_000))
    huge = NoiseParams(rate_per_s=5.0, median_usd=10_000.0, sigma=0.1)
    market = Market([thin], params(noise=huge, arbitrage=ArbitrageParams(enabled=False)))
    assert market.next_flows(1.0, {"meteora:thin": thin})  # it plans them ...
    assert market.tick() == []  # ... and the pool refuses every one


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ArbitrageParams(fraction=0.0), "fraction"),
        (lambda: ArbitrageParams(fraction=1.5), "fraction"),
        (lambda: ArbitrageParams(min_profit_usd=-1), "min_profit_usd"),
        (lambda: NoiseParams(rate_per_s=-1), "rates"),
        (lambda: NoiseParams(pool_rates={"x": -1.0}), "rates"),
        (lambda: NoiseParams(median_usd=0), "median_usd"),
        (lambda: NoiseParams(sigma=-0.1), "sigma"),
        (lambda: NoiseParams(max_usd=0), "max_usd"),
        (lambda: MarketParams(reference_prices_usd={"SOL": 0.0}), "reference price"),
        (lambda: MarketParams(reference_prices_usd={"SOL": math.nan}), "reference price"),
        (lambda: MarketParams(reference_prices_usd={"SOL": 1.0}, volatility={"JUP": 1.0}), "JUP"),
        (lambda: MarketParams(reference_prices_usd={"SOL": 1.0}, volatility={"SOL": -1.0}), "volatility"),
        (lambda: MarketParams(reference_prices_usd={"SOL": 1.0}, mean_reversion={"SOL": -1.0}),
         "mean_reversion"),
        (lambda: MarketParams(reference_prices_usd={"SOL": 1.0}, volatility_unit="daily"), "volatility_unit"),
        (lambda: MarketParams(reference_prices_usd={"SOL": 1.0}, tick_s=0), "tick_s"),
    ],
)
def test_params_are_validated(build, message) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_market_rejects_pools_it_cannot_price_and_duplicates() -> None:
    with pytest.raises(ValueError, match="no reference price"):
        Market(venues(), params(reference_prices_usd={"SOL": 150.0, "USDC": 1.0},
                                volatility={}, mean_reversion={}))
    pool = venues()[0]
    with pytest.raises(ValueError, match="duplicate pool id"):
        Market([pool, restore_pool(pool.snapshot())], params())
    with pytest.raises(ValueError, match="dt"):
        Market(venues(), params()).next_flows(0.0)


def test_reference_cross_is_the_fair_price_of_x_in_y() -> None:
    market = Market(venues(), params())
    assert market.reference_cross(market.pools["raydium:SOL-USDC"]) == pytest.approx(150.0)
    assert market.reference_cross(market.pools["raydium:SOL-USDT"]) == pytest.approx(150.0)
    assert abs(gap_bps(market, market.pools["raydium:SOL-USDC"])) < 1e-6


def test_an_arbitrage_fraction_that_rounds_to_nothing_is_no_trade() -> None:
    tiny = params(noise=NoiseParams(enabled=False), volatility={},
                  arbitrage=ArbitrageParams(fraction=1e-15, min_profit_usd=0.0))
    market = Market(venues(), tiny)
    market.pools["raydium:SOL-USDC"].swap_exact_in("USDC", 3_000 * USDC.one)
    assert market.next_flows(1.0) == []
