"""sim.routing: best single pool, optimal split, two-hop, typed errors."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.pools import CpmmPool, DlmmFeeParams, DlmmPool, Pool
from sim.pools.base import InsufficientLiquidity, InvalidSwapAmount, SimError
from sim.routing import (
    NoRoute,
    QuoteFailure,
    Route,
    RouteLeg,
    all_quotes,
    best_single,
    best_split,
    find_best_route,
    two_hop,
)
from sim.tokens import BONK, SOL, USDC, USDT, Token

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def cpmm(pid: str, x: int, y: int, fee_bps: int = 30, tx=SOL, ty=USDC) -> CpmmPool:
    return CpmmPool(pid, tx, ty, x, y, fee_num=fee_bps, fee_den=10_000,
                    dex="meteora" if pid.startswith("meteora") else "raydium")


def cpmm_at(pid: str, price: float, usd_side: float, fee_bps: int = 30, tx=SOL, ty=USDC) -> CpmmPool:
    return CpmmPool.at_price(pid, tx, ty, price=price, value_y=int(usd_side * ty.one),
                             fee_num=fee_bps, fee_den=10_000,
                             dex="meteora" if pid.startswith("meteora") else "raydium")


def dlmm(pid: str, price: float, value_usd: float, *, bin_step: int = 10, each: int = 20,
         base_factor: int = 20_000, tx=SOL, ty=USDC) -> DlmmPool:
    return DlmmPool.with_liquidity(pid, tx, ty, price=price, value_y=int(value_usd * ty.one),
                                   bin_step=bin_step, bins_each_side=each,
                                   params=DlmmFeeParams(base_factor=base_factor))


def out(pool: Pool, token_in: str, amount: int) -> int | None:
    if amount == 0:
        return 0
    try:
        return pool.quote_exact_in(token_in, amount, 0.0).amount_out
    except InsufficientLiquidity:
        return None


def check_legs_exact(route: Route, pools: list[Pool]) -> None:
    """Every leg is the pool's exact quote for that leg's input."""
    by_id = {p.pool_id: p for p in pools}
    for leg in route.legs:
        quote = by_id[leg.pool_id].quote_exact_in(leg.token_in, leg.amount_in, 0.0)
        assert (quote.amount_out, quote.fee) == (leg.amount_out, leg.fee)


# --------------------------------------------------------------------------- single


def test_best_single_takes_the_pool_that_pays_most() -> None:
    cheap = cpmm_at("raydium:SOL-USDC", 150.0, 50_000, fee_bps=30)
    rich = cpmm_at("meteora:SOL-USDC", 151.0, 60_000, fee_bps=20)
    route = best_single([cheap, rich], "SOL", "USDC", 2 * SOL.one)
    outs = {p.pool_id: out(p, "SOL", 2 * SOL.one) for p in (cheap, rich)}
    assert route.kind == "single"
    assert route.pool_ids == ("meteora:SOL-USDC",)
    assert route.dexes == ("meteora",)
    assert route.amount_out == max(outs.values())
    assert route.fee_by_token == {"SOL": route.legs[0].fee}
    assert route.price_impact_bps == route.legs[0].price_impact_bps > 0
    # The other direction too.
    back = best_single([cheap, rich], "USDC", "SOL", 300 * USDC.one)
    assert back.amount_out == max(out(p, "USDC", 300 * USDC.one) for p in (cheap, rich))


def test_best_single_ties_break_on_pool_id_not_on_order() -> None:
    a = cpmm("b-pool", 10**12, 150 * 10**9)
    b = cpmm("a-pool", 10**12, 150 * 10**9)
    for pools in ([a, b], [b, a]):
        assert best_single(pools, "SOL", "USDC", 10**9).pool_ids == ("a-pool",)


def test_best_single_skips_pools_without_liquidity() -> None:
    thin = dlmm("meteora:SOL-USDC", 150.0, 2_000, each=3)  # ~1000 USDC on the bid side
    deep = cpmm_at("raydium:SOL-USDC", 150.0, 50_000)
    amount = 20 * SOL.one  # 3000 USD: more than the thin pool holds
    with pytest.raises(InsufficientLiquidity):
        thin.quote_exact_in("SOL", amount)
    assert best_single([thin, deep], "SOL", "USDC", amount).pool_ids == ("raydium:SOL-USDC",)


def test_no_pool_for_the_pair_is_a_typed_no_route() -> None:
    pools = [cpmm_at("raydium:SOL-USDC", 150.0, 50_000)]
    with pytest.raises(NoRoute) as info:
        best_single(pools, "JUP", "USDC", 10**6)
    assert isinstance(info.value, SimError)
    assert info.value.code == "NO_ROUTE" and not info.value.transient
    with pytest.raises(NoRoute):
        best_single([], "SOL", "USDC", 10**9)


def test_every_pool_short_of_liquidity_raises_insufficient_liquidity() -> None:
    thin_a = dlmm("meteora:a", 150.0, 2_000, each=3)
    thin_b = dlmm("meteora:b", 150.0, 3_000, each=3)
    with pytest.raises(InsufficientLiquidity) as info:
        best_single([thin_a, thin_b], "SOL", "USDC", 100 * SOL.one)
    assert info.value.code == "INSUFFICIENT_LIQUIDITY"
    # A dust order that buys nothing anywhere is also not fillable.
    with pytest.raises(InsufficientLiquidity):
        best_single([cpmm_at("raydium:SOL-USDC", 150.0, 50_000)], "SOL", "USDC", 1)


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, "10"])
def test_bad_amounts_are_rejected(amount: object) -> None:
    pools = [cpmm_at("raydium:SOL-USDC", 150.0, 50_000)]
    for finder in (best_single, best_split, find_best_route, two_hop):
        with pytest.raises(InvalidSwapAmount):
            finder(pools, "SOL", "USDC", amount)  # type: ignore[arg-type]


def test_same_token_in_and_out_is_no_route() -> None:
    with pytest.raises(NoRoute):
        find_best_route([cpmm_at("r", 150.0, 50_000)], "SOL", "SOL", 10**9)


def test_all_quotes_shows_every_venue_and_every_failure() -> None:
    thin = dlmm("meteora:SOL-USDC", 150.0, 2_000, each=3)
    deep = cpmm_at("raydium:SOL-USDC", 150.0, 50_000)
    other = cpmm_at("raydium:SOL-USDT", 150.0, 50_000, ty=USDT)
    small = all_quotes([deep, other, thin], "SOL", "USDC", SOL.one, 0.0)
    assert [q.pool_id for q in small] == ["meteora:SOL-USDC", "raydium:SOL-USDC"]
    assert all(not isinstance(q, QuoteFailure) for q in small)
    big = all_quotes([deep, thin], "SOL", "USDC", 20 * SOL.one, 0.0)
    failure = big[0]
    assert isinstance(failure, QuoteFailure)
    assert failure.code == "INSUFFICIENT_LIQUIDITY" and failure.pool_id == "meteora:SOL-USDC"
    assert failure.message
    assert big[1].amount_out == out(deep, "SOL", 20 * SOL.one)


def test_routing_never_mutates_the_pools() -> None:
    pools: list[Pool] = [
        cpmm_at("raydium:SOL-USDC", 150.0, 50_000),
        dlmm("meteora:SOL-USDC", 150.2, 120_000, each=30),
        cpmm_at("raydium:BONK-SOL", 0.00002 / 150, 30_000 / 150, tx=BONK, ty=SOL),
    ]
    before = [p.snapshot() for p in pools]
    find_best_route(pools, "SOL", "USDC", 40 * SOL.one, allow_split=True)
    find_best_route(pools, "BONK", "USDC", 10**6 * BONK.one, allow_split=True)
    all_quotes(pools, "SOL", "USDC", SOL.one)
    assert [p.snapshot() for p in pools] == before


def test_route_and_leg_serialise() -> None:
    pools = [cpmm_at("raydium:SOL-USDC", 150.0, 50_000), dlmm("meteora:SOL-USDC", 150.0, 120_000)]
    route = best_split(pools, "SOL", "USDC", 30 * SOL.one)
    data = route.to_dict()
    assert data["kind"] == "split" and data["amount_in"] == 30 * SOL.one
    assert data["amount_out"] == sum(leg["amount_out"] for leg in data["legs"])
    assert set(data["legs"][0]) == {
        "pool_id", "dex", "token_in", "token_out", "amount_in", "amount_out", "fee", "price_impact_bps",
    }
    quote = pools[0].quote_exact_in("SOL", 10**9)
    assert RouteLeg.from_quote(quote).to_dict()["amount_out"] == quote.amount_out


# --------------------------------------------------------------------------- split


def test_split_of_two_equal_pools_is_half_and_half() -> None:
    a = cpmm("raydium:a", 10**12, 150 * 10**9)
    b = cpmm("raydium:b", 10**12, 150 * 10**9)
    amount = 100 * SOL.one
    route = best_split([a, b], "SOL", "USDC", amount)
    assert route.kind == "split"
    for leg in route.legs:  # an exchange that gains a rounding unit may shift a few millionths
        assert leg.amount_in == pytest.approx(amount / 2, rel=1e-5)
    assert route.amount_out >= out(a, "SOL", amount // 2) + out(b, "SOL", amount // 2)


def test_split_shares_follow_depth_for_pools_at_one_price() -> None:
    """Same price and fee: equal marginal rates mean equal a/x, shares in proportion to depth."""
    shallow = cpmm("raydium:shallow", 10**12, 150 * 10**9)
    deep = cpmm("raydium:deep", 3 * 10**12, 450 * 10**9)
    route = best_split([shallow, deep], "SOL", "USDC", 400 * SOL.one)
    shares = {leg.pool_id: leg.amount_in for leg in route.legs}
    assert shares["raydium:deep"] == pytest.approx(3 * shares["raydium:shallow"], rel=1e-6)


def test_split_falls_back_to_single_when_one_pool_dominates() -> None:
    good = cpmm_at("raydium:good", 150.0, 500_000, fee_bps=5)
    bad = cpmm_at("raydium:bad", 140.0, 5_000, fee_bps=100)
    route = best_split([good, bad], "SOL", "USDC", SOL.one)
    assert route.kind == "single" and route.pool_ids == ("raydium:good",)
    assert route == best_single([good, bad], "SOL", "USDC", SOL.one)


def test_split_of_one_pool_is_the_single_route() -> None:
    pool = cpmm_at("raydium:SOL-USDC", 150.0, 50_000)
    other = cpmm_at("raydium:SOL-USDT", 150.0, 50_000, ty=USDT)
    assert best_split([pool, other], "SOL", "USDC", SOL.one) == best_single([pool], "SOL", "USDC", SOL.one)
    with pytest.raises(InsufficientLiquidity):
        best_split([dlmm("m", 150.0, 2_000, each=2)], "SOL", "USDC", 100 * SOL.one)
    with pytest.raises(NoRoute):
        best_split([pool], "JUP", "USDC", 10**6)


def test_split_fills_what_no_single_pool_can() -> None:
    a = dlmm("meteora:a", 150.0, 3_000, each=4)
    b = dlmm("meteora:b", 150.0, 3_000, each=4)
    amount = 12 * SOL.one  # 1800 USD; each pool holds ~1500 USDC of bids
    with pytest.raises(InsufficientLiquidity):
        best_single([a, b], "SOL", "USDC", amount)
    route = best_split([a, b], "SOL", "USDC", amount)
    assert route.kind == "split" and sum(leg.amount_in for leg in route.legs) == amount
    check_legs_exact(route, [a, b])
    with pytest.raises(InsufficientLiquidity):
        best_split([a, b], "SOL", "USDC", 40 * SOL.one)


def test_split_never_returns_a_dust_leg() -> None:
    # Pool b is so shallow that a few base units buy nothing there.
    a = cpmm("raydium:a", 10**6, 10**6)
    b = cpmm("raydium:b", 10**3, 10**3)
    route = best_split([a, b], "SOL", "USDC", 5)
    assert all(leg.amount_out > 0 for leg in route.legs)


@st.composite
def cpmm_pools(draw: st.DrawFn, n_min: int = 2, n_max: int = 3) -> list[CpmmPool]:
    n = draw(st.integers(n_min, n_max))
    pools = []
    for i in range(n):
        x = draw(st.integers(10**6, 10**13))
        price = draw(st.floats(0.5, 2.0))  # raw units of y per unit of x, near 1 so pools compete
        y = max(10**3, int(x * price * draw(st.sampled_from([1e-3, 1.0]))))
        fee = draw(st.sampled_from([0, 1, 5, 25, 30, 100]))
        pools.append(CpmmPool(f"raydium:{i}", SOL, USDC, x, y, fee_num=fee, fee_den=10_000))
    return pools


@PROPERTY
@given(pools=cpmm_pools(), fraction=st.floats(1e-6, 2.0), direction=st.booleans())
def test_split_is_never_worse_than_the_best_single_pool(pools, fraction, direction) -> None:
    token_in, token_out = ("SOL", "USDC") if direction else ("USDC", "SOL")
    depth = min(p.reserves()[token_in] for p in pools)
    amount = max(1, int(depth * fraction))
    try:
        single = best_single(pools, token_in, token_out, amount)
    except InsufficientLiquidity:
        single = None
    try:
        split = best_split(pools, token_in, token_out, amount)
    except InsufficientLiquidity:
        assert single is None
        return
    assert sum(leg.amount_in for leg in split.legs) == amount == split.amount_in
    assert split.amount_out == sum(leg.amount_out for leg in split.legs)
    check_legs_exact(split, pools)
    if single is not None:
        assert split.amount_out >= single.amount_out
        assert (split.kind == "split") == (split.amount_out > single.amount_out)
    assert len({leg.pool_id for leg in split.legs}) == len(split.legs)


@PROPERTY
@given(
    price_gap=st.floats(-0.02, 0.02),
    cpmm_usd=st.floats(5_000, 100_000),
    dlmm_usd=st.floats(5_000, 150_000),
    sol=st.floats(0.01, 400.0),
    sell_sol=st.booleans(),
)
def test_mixed_split_is_never_worse_than_the_best_single_pool(price_gap, cpmm_usd, dlmm_usd, sol, sell_sol):
    pools: list[Pool] = [
        cpmm_at("raydium:SOL-USDC", 150.0 * (1 + price_gap), cpmm_usd),
        dlmm("meteora:SOL-USDC", 150.0, dlmm_usd, each=30),
    ]
    token_in, token_out = ("SOL", "USDC") if sell_sol else ("USDC", "SOL")
    amount = int(sol * SOL.one) if sell_sol else int(sol * 150 * USDC.one)
    try:
        single = best_single(pools, token_in, token_out, amount)
    except InsufficientLiquidity:
        single = None
    try:
        split = best_split(pools, token_in, token_out, amount)
    except InsufficientLiquidity:
        assert single is None
        return
    assert sum(leg.amount_in for leg in split.legs) == amount
    check_legs_exact(split, pools)
    if single is not None:
        assert split.amount_out >= single.amount_out


def brute_force_two(a: Pool, b: Pool, token_in: str, amount: int, step: int = 1) -> int:
    best = 0
    for share in range(0, amount + 1, step):
        oa, ob = out(a, token_in, share), out(b, token_in, amount - share)
        if oa is not None and ob is not None:
            best = max(best, oa + ob)
    return best


@pytest.mark.parametrize(
    ("ra", "rb", "fa", "fb", "amount"),
    [
        ((20_000, 30_000), (50_000, 70_000), 30, 20, 3_000),
        ((100_000, 100_000), (100_000, 100_000), 25, 25, 4_000),
        ((10_000, 40_000), (80_000, 300_000), 0, 100, 2_500),
        ((5_000, 5_100), (7_000, 6_800), 30, 30, 1_500),
        ((1_000_000, 9_000_000), (200_000, 1_850_000), 5, 30, 3_333),
    ],
)
def test_cpmm_split_matches_brute_force_over_every_integer_split(ra, rb, fa, fb, amount) -> None:
    """Within integer rounding of the exhaustive optimum.

    On such tiny pools the exact output is jagged: each leg's output is
    floored and its fee rounded up (one input unit, worth up to ``price``
    output units), so two legs can miss the best integer split by at most
    2 * (1 + price) units; they can never beat it.
    """
    a = cpmm("raydium:a", *ra, fee_bps=fa)
    b = cpmm("raydium:b", *rb, fee_bps=fb)
    for token_in, token_out in (("SOL", "USDC"), ("USDC", "SOL")):
        route = best_split([a, b], token_in, token_out, amount)
        best = brute_force_two(a, b, token_in, amount)
        price = max(p.reserves()[token_out] / p.reserves()[token_in] for p in (a, b))
        assert best - 2 * (1 + math.ceil(price)) <= route.amount_out <= best


@pytest.mark.parametrize("fees", [(30, 20), (25, 25), (5, 100)])
@pytest.mark.parametrize("sol", [3, 40, 250])
def test_cpmm_split_beats_a_fine_brute_force_grid(fees, sol) -> None:
    a = cpmm_at("raydium:a", 150.0, 50_000, fee_bps=fees[0])
    b = cpmm_at("raydium:b", 150.6, 30_000, fee_bps=fees[1])
    amount = sol * SOL.one
    route = best_split([a, b], "SOL", "USDC", amount)
    rounding = 2 * (1 + 1)  # two legs, each floored, with its fee rounded up (0.15 USDC unit/lamport)
    assert route.amount_out >= brute_force_two(a, b, "SOL", amount, step=amount // 2_000) - rounding


A_TOKEN = Token("AAA", "A" * 32, 0)  # no decimals: base units are whole tokens
B_TOKEN = Token("BBB", "B" * 32, 0)


@pytest.mark.parametrize("gap", [-0.01, 0.0, 0.004, 0.02])
@pytest.mark.parametrize("amount", [300, 1_000, 2_500])
@pytest.mark.parametrize("sell_a", [True, False])
def test_mixed_split_matches_brute_force_over_every_integer_split(gap, amount, sell_a) -> None:
    """A DLMM book of 11 bins of 0.5 % (500 units each) beside a CPMM of 20k a side."""
    a = CpmmPool.at_price("raydium:a", A_TOKEN, B_TOKEN, price=1.0 + gap, value_y=20_000,
                          fee_num=30, fee_den=10_000)
    b = DlmmPool.with_liquidity("meteora:b", A_TOKEN, B_TOKEN, price=1.0, value_y=5_500,
                                bin_step=50, bins_each_side=5,
                                params=DlmmFeeParams(base_factor=4_000))
    token_in, token_out = ("AAA", "BBB") if sell_a else ("BBB", "AAA")
    route = best_split([a, b], token_in, token_out, amount)
    best = brute_force_two(a, b, token_in, amount)
    assert best - 2 * (1 + 1) <= route.amount_out <= best
    single = best_single([a, b], token_in, token_out, amount)
    assert route.amount_out >= single.amount_out


def test_mixed_split_uses_both_venues_when_it_pays() -> None:
    a = CpmmPool.at_price("raydium:a", A_TOKEN, B_TOKEN, price=1.0, value_y=20_000,
                          fee_num=30, fee_den=10_000)
    b = DlmmPool.with_liquidity("meteora:b", A_TOKEN, B_TOKEN, price=1.0, value_y=5_500,
                                bin_step=50, bins_each_side=5,
                                params=DlmmFeeParams(base_factor=4_000))
    route = best_split([a, b], "AAA", "BBB", 2_500)
    assert route.kind == "split"
    assert route.amount_out > best_single([a, b], "AAA", "BBB", 2_500).amount_out


def test_three_pool_split_beats_every_grid_split() -> None:
    pools: list[Pool] = [
        cpmm_at("raydium:a", 150.0, 40_000, fee_bps=30),
        cpmm_at("raydium:b", 150.4, 20_000, fee_bps=25),
        dlmm("meteora:c", 149.8, 60_000, each=25),
    ]
    amount = 120 * SOL.one
    route = best_split(pools, "SOL", "USDC", amount)
    steps = 40
    grid_best = 0
    for i, j in itertools.product(range(steps + 1), repeat=2):
        if i + j > steps:
            continue
        shares = [amount * i // steps, amount * j // steps]
        shares.append(amount - sum(shares))
        outs = [out(p, "SOL", s) for p, s in zip(pools, shares)]
        if None not in outs:
            grid_best = max(grid_best, sum(outs))  # type: ignore[arg-type]
    assert route.kind == "split" and len(route.legs) == 3
    assert route.amount_out >= grid_best
    assert route.fee_by_token == {"SOL": sum(leg.fee for leg in route.legs)}
    assert min(l.price_impact_bps for l in route.legs) <= route.price_impact_bps <= max(
        l.price_impact_bps for l in route.legs
    )


# --------------------------------------------------------------------------- two hops


def bonk_market() -> list[Pool]:
    return [
        cpmm_at("raydium:BONK-SOL", 0.00002 / 150, 25_000 / 150, fee_bps=25, tx=BONK, ty=SOL),
        dlmm("meteora:BONK-SOL", 0.00002 / 150, 40_000 / 150, bin_step=80, each=20,
             base_factor=1250, tx=BONK, ty=SOL),
        cpmm_at("raydium:SOL-USDC", 150.0, 50_000, fee_bps=30),
        dlmm("meteora:SOL-USDC", 150.0, 120_000, each=40),
        cpmm_at("raydium:SOL-USDT", 150.0, 30_000, fee_bps=25, ty=USDT),
    ]


def test_two_hop_is_chosen_when_no_direct_pool_exists() -> None:
    pools = bonk_market()
    amount = 5_000_000 * BONK.one  # ~100 USD
    route = find_best_route(pools, "BONK", "USDC", amount, 0.0)
    assert route.kind == "two_hop"
    first, second = route.legs
    assert (first.token_in, first.token_out, second.token_in, second.token_out) == (
        "BONK", "SOL", "SOL", "USDC",
    )
    assert second.amount_in == first.amount_out  # chained with exact amounts
    assert route.amount_in == first.amount_in == amount
    assert route.amount_out == second.amount_out
    check_legs_exact(route, pools)
    # Each hop took the best pool for its own input.
    assert first.amount_out == best_single(pools, "BONK", "SOL", amount).amount_out
    assert second.amount_out == best_single(pools, "SOL", "USDC", first.amount_out).amount_out
    assert route.fee_by_token == {"BONK": first.fee, "SOL": second.fee}
    expected_impact = 1 - (1 - first.price_impact_bps / 1e4) * (1 - second.price_impact_bps / 1e4)
    assert route.price_impact_bps == pytest.approx(expected_impact * 1e4)
    with pytest.raises(NoRoute):
        find_best_route(pools, "BONK", "USDC", amount, 0.0, allow_two_hop=False)


def test_two_hop_picks_the_better_intermediate() -> None:
    pools = bonk_market() + [
        cpmm_at("raydium:USDC-USDT", 1.0, 5_000_000, fee_bps=1, tx=USDC, ty=USDT),
    ]
    amount = 2 * SOL.one
    via_usdc = two_hop(pools, "SOL", "USDT", amount, 0.0, via="USDC")
    direct = best_single(pools, "SOL", "USDT", amount)
    both = two_hop(pools, "SOL", "USDT", amount, 0.0, via=("SOL", "BONK", "USDC"))
    assert both.legs[0].token_out == "USDC" and both == via_usdc
    best = find_best_route(pools, "SOL", "USDT", amount, 0.0, intermediates=("USDC",))
    assert best.amount_out == max(direct.amount_out, via_usdc.amount_out)


def test_two_hop_errors() -> None:
    pools = bonk_market()
    with pytest.raises(NoRoute):
        two_hop(pools, "JUP", "USDC", 10**6, 0.0, via=("SOL",))
    with pytest.raises(NoRoute):
        two_hop(pools, "BONK", "USDC", 10**6, 0.0, via=("BONK", "USDC"))  # nothing in between
    thin = [
        dlmm("meteora:BONK-SOL", 0.00002 / 150, 100 / 150, bin_step=80, each=2, base_factor=1250,
             tx=BONK, ty=SOL),
        cpmm_at("raydium:SOL-USDC", 150.0, 50_000),
    ]
    with pytest.raises(InsufficientLiquidity):
        two_hop(thin, "BONK", "USDC", 10**9 * BONK.one, 0.0, via="SOL")
    with pytest.raises(InsufficientLiquidity):
        find_best_route(thin, "BONK", "USDC", 10**9 * BONK.one, 0.0)


# --------------------------------------------------------------------------- choice


def test_find_best_route_prefers_direct_when_it_pays_more() -> None:
    pools = bonk_market()
    route = find_best_route(pools, "SOL", "USDC", SOL.one, 0.0)
    assert route.kind == "single"
    assert route == best_single(pools, "SOL", "USDC", SOL.one)


def test_find_best_route_takes_two_hop_over_a_bad_direct_pool() -> None:
    pools = bonk_market() + [
        cpmm_at("raydium:BONK-USDC", 0.00002 * 0.9, 500, fee_bps=100, tx=BONK, ty=USDC),
    ]
    amount = 5_000_000 * BONK.one
    direct = best_single(pools, "BONK", "USDC", amount)
    route = find_best_route(pools, "BONK", "USDC", amount, 0.0)
    assert route.kind == "two_hop" and route.amount_out > direct.amount_out


def test_find_best_route_splits_when_allowed_and_better() -> None:
    pools = bonk_market()
    amount = 100 * SOL.one
    single = find_best_route(pools, "SOL", "USDC", amount, 0.0, allow_two_hop=False)
    split = find_best_route(pools, "SOL", "USDC", amount, 0.0, allow_split=True, allow_two_hop=False)
    assert single.kind == "single" and split.kind == "split"
    assert split.amount_out > single.amount_out
    assert find_best_route(pools, "SOL", "USDC", amount, 0.0, allow_split=True) == split


def test_find_best_route_with_no_connection_is_no_route() -> None:
    with pytest.raises(NoRoute):
        find_best_route(bonk_market(), "JUP", "USDC", 10**6, 0.0)
    with pytest.raises(NoRoute):
        find_best_route([], "SOL", "USDC", 10**6, 0.0)


class NothingPool(CpmmPool):
    """A pool that quotes zero output instead of raising (the contract allows neither, but
    routing must not take such a quote for a fill)."""

    def quote_exact_in(self, token_in, amount_in, now=0.0):
        quote = super().quote_exact_in(token_in, amount_in, now)
        return type(quote)(**{**quote.to_dict(), "amount_out": 0})


def test_a_quote_of_nothing_is_not_a_fill() -> None:
    nothing = NothingPool("raydium:nothing", SOL, USDC, 10**12, 150 * 10**9, fee_num=0)
    with pytest.raises(InsufficientLiquidity, match="buys nothing"):
        best_single([nothing], "SOL", "USDC", SOL.one)
    good = cpmm_at("raydium:good", 150.0, 1_000)
    # The split would give the zero-quoting pool a share: it falls back to the single pool.
    assert best_split([nothing, good], "SOL", "USDC", 50 * SOL.one) == best_single(
        [nothing, good], "SOL", "USDC", 50 * SOL.one
    )


def test_a_dust_order_between_books_is_insufficient_liquidity() -> None:
    a = dlmm("meteora:a", 150.0, 1_000, each=3)
    b = dlmm("meteora:b", 150.0, 1_000, each=3)
    with pytest.raises(InsufficientLiquidity):
        best_split([a, b], "SOL", "USDC", 1)


def test_a_direct_pool_too_thin_gives_way_to_two_hop_or_fails() -> None:
    pools = bonk_market() + [
        dlmm("meteora:BONK-USDC", 0.00002, 50, bin_step=80, each=2, base_factor=1250,
             tx=BONK, ty=USDC),
    ]
    amount = 50_000_000 * BONK.one  # 1000 USD, far more than the direct book holds
    with pytest.raises(InsufficientLiquidity):
        find_best_route(pools, "BONK", "USDC", amount, 0.0, allow_two_hop=False)
    route = find_best_route(pools, "BONK", "USDC", amount, 0.0)
    assert route.kind == "two_hop"


def test_an_amount_that_buys_nothing_anywhere_is_too_small_not_illiquid() -> None:
    from engine.config import build_pools, load_market_config
    from engine.settings import DEFAULT_MARKET_CONFIG
    from sim.pools import AmountTooSmall

    pools = build_pools(load_market_config(DEFAULT_MARKET_CONFIG))
    for token_in, token_out in (("SOL", "USDC"), ("BONK", "USDC")):  # direct, and only through SOL
        with pytest.raises(AmountTooSmall) as caught:
            find_best_route(pools, token_in, token_out, 1, 0.0)
        assert caught.value.code == "AMOUNT_TOO_SMALL"
        assert str(caught.value).startswith("amount too small: 1 base units of")
    assert find_best_route(pools, "SOL", "USDC", 10, 0.0).amount_out >= 1  # ten lamports buy something
