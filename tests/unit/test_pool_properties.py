"""Properties every pool must have, whatever its math."""

import json
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.pools import (
    CpmmPool,
    DlmmFeeParams,
    DlmmPool,
    InsufficientLiquidity,
    Pool,
    SlippageExceeded,
    restore_pool,
)
from sim.pools.cpmm_fees import FeeShares
from sim.pools.dlmm_params import ONE, price_from_id
from sim.tokens import BONK, SOL, USDC

FAST = settings(max_examples=40, derandomize=True, deadline=None)


def raydium() -> Pool:
    return CpmmPool.at_price("ray", SOL, USDC, price=150.0, value_y=50_000 * USDC.one)


def raydium_no_fee() -> Pool:
    return CpmmPool.at_price("ray0", SOL, USDC, price=150.0, value_y=50_000 * USDC.one, fee_num=0)


def raydium_fee_shares() -> Pool:
    # Raydium's standard config: 0.25 %, of which 12 % to the protocol and 4 % to the fund.
    return CpmmPool.at_price("ray-shares", SOL, USDC, price=150.0, value_y=50_000 * USDC.one, fee_num=2_500,
                             fee_den=1_000_000, shares=FeeShares(protocol=120_000, fund=40_000))  # fmt: skip


def meteora() -> Pool:
    return DlmmPool.with_liquidity(
        "met",
        SOL,
        USDC,
        price=150.0,
        value_y=120_000 * USDC.one,
        bin_step=20,
        bins_each_side=35,
        params=DlmmFeeParams(base_factor=10_000),
    )


def meteora_bonk_curve() -> Pool:
    # Tiny base-unit price (~1.5e-3 lamports per BONK unit), 1% bins, strong variable fee.
    return DlmmPool.with_liquidity(
        "met-bonk",
        BONK,
        SOL,
        price=1.5e-7,
        value_y=500 * SOL.one,
        bin_step=100,
        bins_each_side=12,
        params=DlmmFeeParams(
            base_factor=8_000,
            filter_period=300,
            decay_period=1_200,
            variable_fee_control=7_500,
            max_volatility_accumulator=150_000,
        ),
        shape="curve",
    )


POOLS: list[Callable[[], Pool]] = [raydium, raydium_no_fee, raydium_fee_shares, meteora, meteora_bonk_curve]
pools = pytest.mark.parametrize("make", POOLS, ids=lambda f: f.__name__)

# An amount as a fraction of the input token's reserve, from a few units to
# more than the pool can take, plus the smallest amounts.
fractions = st.one_of(st.floats(min_value=-10.0, max_value=0.5), st.just(-30.0))
steps = st.lists(
    st.tuples(st.booleans(), fractions, st.sampled_from([0.0, 1.0, 10.0, 45.0, 700.0])),
    min_size=1,
    max_size=6,
)


def amount_for(pool: Pool, token: str, exponent: float) -> int:
    return max(1, int(pool.reserves()[token] * 10**exponent))


def symbol(pool: Pool, x_in: bool) -> str:
    return pool.token_x.symbol if x_in else pool.token_y.symbol


def base_price(pool: Pool) -> Fraction:
    """Marginal price of one base unit of x in base units of y, exactly."""
    if isinstance(pool, CpmmPool):
        return Fraction(pool.reserve_y, pool.reserve_x)
    assert isinstance(pool, DlmmPool)
    return Fraction(price_from_id(pool.active_id, pool.bin_step), ONE)


def value_in_y(pool: Pool, price: Fraction) -> Fraction:
    held = pool.reserves()
    return held[pool.token_x.symbol] * price + held[pool.token_y.symbol]


def clone(pool: Pool) -> Pool:
    return restore_pool(json.loads(json.dumps(pool.snapshot())))


@pools
@FAST
@given(x_in=st.booleans(), exponent=fractions, now=st.floats(min_value=0, max_value=2_000))
def test_no_value_leaves_the_pool_for_free(make, x_in, exponent, now):
    pool = make()
    token = symbol(pool, x_in)
    price = base_price(pool)
    before = value_in_y(pool, price)
    try:
        pool.swap_exact_in(token, amount_for(pool, token, exponent), now=now)
    except InsufficientLiquidity:
        return
    assert value_in_y(pool, price) >= before
    if isinstance(pool, CpmmPool):
        start = make()
        assert pool.reserve_x * pool.reserve_y >= start.reserve_x * start.reserve_y


@pools
@FAST
@given(x_in=st.booleans(), exponent=fractions, extra=st.integers(min_value=1, max_value=10**9))
def test_output_is_monotone_in_input(make, x_in, exponent, extra):
    pool = make()
    token = symbol(pool, x_in)
    amount = amount_for(pool, token, exponent)
    try:
        small = pool.quote_exact_in(token, amount, now=5.0).amount_out
    except InsufficientLiquidity:
        small = 0
    try:
        large = pool.quote_exact_in(token, amount + extra, now=5.0).amount_out
    except InsufficientLiquidity:
        return  # more input may exceed the liquidity; never less output
    assert large >= small


@pools
@FAST
@given(x_in=st.booleans(), exponent=fractions, history=steps)
def test_exact_out_inverts_exact_in(make, x_in, exponent, history):
    pool = make()
    now = 0.0
    for hx, hexp, dt in history:  # a little history so DLMM volatility is non-trivial
        now += dt
        try:
            pool.swap_exact_in(symbol(pool, hx), amount_for(pool, symbol(pool, hx), hexp), now=now)
        except InsufficientLiquidity:
            pass
    token = symbol(pool, x_in)
    amount = amount_for(pool, token, exponent)
    now += 3.0
    try:
        out = pool.quote_exact_in(token, amount, now=now).amount_out
    except InsufficientLiquidity:
        return
    needed = pool.quote_exact_out(token, out, now=now)
    assert needed.amount_in <= amount
    assert needed.amount_out >= out
    assert pool.quote_exact_in(token, needed.amount_in, now=now).amount_out >= out
    if needed.amount_in > 1:  # and it is the smallest such input
        try:
            assert pool.quote_exact_in(token, needed.amount_in - 1, now=now).amount_out < out
        except InsufficientLiquidity:
            pass


@pools
@FAST
@given(x_in=st.booleans(), exponent=fractions, gap=st.sampled_from([0.0, 40.0, 5_000.0]))
def test_round_trip_never_gains(make, x_in, exponent, gap):
    pool = make()
    token = symbol(pool, x_in)
    amount = amount_for(pool, token, exponent)
    try:
        there = pool.swap_exact_in(token, amount, now=100.0)
        back = pool.swap_exact_in(there.token_out, there.amount_out, now=100.0 + gap)
    except InsufficientLiquidity:
        return
    assert back.amount_out <= amount


@pools
@FAST
@given(history=steps)
def test_quote_equals_the_following_swap(make, history):
    pool = make()
    now = 0.0
    for x_in, exponent, dt in history:
        now += dt
        token = symbol(pool, x_in)
        amount = amount_for(pool, token, exponent)
        before = pool.snapshot()
        try:
            quote = pool.quote_exact_in(token, amount, now=now)
        except InsufficientLiquidity:
            with pytest.raises(InsufficientLiquidity):
                pool.swap_exact_in(token, amount, now=now)
            assert pool.snapshot() == before
            continue
        assert pool.snapshot() == before  # quoting changed nothing
        assert pool.swap_exact_in(token, amount, min_out=quote.amount_out, now=now) == quote


@pools
@FAST
@given(history=steps, future=steps)
def test_snapshot_restore_gives_an_equal_pool(make, history, future):
    pool = make()
    now = 0.0
    for x_in, exponent, dt in history:
        now += dt
        try:
            pool.swap_exact_in(symbol(pool, x_in), amount_for(pool, symbol(pool, x_in), exponent), now=now)
        except InsufficientLiquidity:
            pass
    again = clone(pool)
    assert type(again) is type(pool)
    assert again.snapshot() == pool.snapshot()
    assert again.reserves() == pool.reserves()
    assert again.spot_price(pool.token_x.symbol) == pool.spot_price(pool.token_x.symbol)
    assert again.fee_bps == pool.fee_bps
    for x_in, exponent, dt in future:
        now += dt
        token = symbol(pool, x_in)
        amount = amount_for(pool, token, exponent)
        results = []
        for p in (pool, again):
            try:
                results.append(p.swap_exact_in(token, amount, now=now))
            except InsufficientLiquidity as exc:
                results.append(type(exc))
        assert results[0] == results[1]
    assert again.snapshot() == pool.snapshot()


@pools
@FAST
@given(history=steps, min_out_factor=st.sampled_from([0, 1, 2]))
def test_reserves_are_conserved_exactly(make, history, min_out_factor):
    pool = make()
    expected = dict(pool.reserves())
    now = 0.0
    for x_in, exponent, dt in history:
        now += dt
        token = symbol(pool, x_in)
        amount = amount_for(pool, token, exponent)
        try:
            quote = pool.quote_exact_in(token, amount, now=now)
            done = pool.swap_exact_in(token, amount, min_out=quote.amount_out * min_out_factor, now=now)
        except (InsufficientLiquidity, SlippageExceeded):
            assert pool.reserves() == expected
            continue
        expected[done.token_in] += done.amount_in
        expected[done.token_out] -= done.amount_out
        assert pool.reserves() == expected
        assert 0 <= done.fee < done.amount_in
        assert done.price_impact_bps >= 0 and done.slippage_bps > 0
    assert all(v > 0 for v in pool.reserves().values())
