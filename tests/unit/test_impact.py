"""Sizing a trade by the price move it causes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.impact import amount_to_move_price
from sim.pools import CpmmPool, DlmmFeeParams, DlmmPool
from sim.tokens import SOL, USDC


def cpmm() -> CpmmPool:
    return CpmmPool("raydium:SOL-USDC", SOL, USDC, 1_000 * SOL.one, 150_000 * USDC.one, 25, 10_000)


def dlmm() -> DlmmPool:
    return DlmmPool.with_liquidity(
        "meteora:SOL-USDC", SOL, USDC, price=150.0, value_y=120_000 * USDC.one,
        bin_step=20, bins_each_side=40, params=DlmmFeeParams(base_factor=10_000),
    )  # fmt: skip


@pytest.mark.parametrize("make", [cpmm, dlmm])
@given(move_bps=st.floats(min_value=5, max_value=500))
@settings(max_examples=25, derandomize=True, deadline=None)
def test_the_amount_found_moves_the_price_at_least_that_far_and_barely(make, move_bps):
    pool = make()
    start = pool.spot_price("SOL")
    amount = amount_to_move_price(pool, "SOL", move_bps)
    after = pool.quote_exact_in("SOL", amount).spot_price_after
    assert after <= start * (1 - move_bps / 10_000)
    smaller = pool.quote_exact_in("SOL", amount * 98 // 100).spot_price_after
    assert smaller > start * (1 - move_bps / 10_000) or amount < 100


def test_no_move_needs_no_trade():
    assert amount_to_move_price(cpmm(), "SOL", 0) == 0
