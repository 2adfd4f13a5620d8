import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.pools import (
    CpmmPool,
    InsufficientLiquidity,
    InvalidSwapAmount,
    SlippageExceeded,
    UnsupportedToken,
    restore_pool,
)
from sim.tokens import JUP, SOL, USDC

FAST = settings(max_examples=80, derandomize=True, deadline=None)


def sol_usdc(fee_num: int = 25) -> CpmmPool:
    return CpmmPool("ray-sol-usdc", SOL, USDC, 1_000 * SOL.one, 150_000 * USDC.one, fee_num=fee_num)


def test_worked_example_one_sol_in():
    pool = sol_usdc()
    quote = pool.swap_exact_in("SOL", SOL.one)
    assert quote.amount_out == 149_475_897
    assert quote.fee == 2_500_000
    assert quote.token_in == "SOL" and quote.token_out == "USDC"
    assert quote.dex == "raydium" and quote.pool_id == "ray-sol-usdc"
    assert quote.bins_crossed == 0
    # The whole input, fee included, went into the SOL reserve.
    assert pool.reserves() == {"SOL": 1_001 * SOL.one, "USDC": 150_000 * USDC.one - 149_475_897}


def test_quote_fields_are_consistent():
    quote = sol_usdc().quote_exact_in("SOL", SOL.one)
    assert quote.spot_price_before == pytest.approx(150.0)
    assert quote.execution_price == pytest.approx(149.475897)
    assert quote.spot_price_after == pytest.approx((150_000 - 149.475897) / 1_001)
    assert quote.slippage_bps == pytest.approx((150 - 149.475897) / 150 * 1e4)
    assert quote.price_impact_bps == pytest.approx((150 - quote.spot_price_after) / 150 * 1e4)
    assert 0 < quote.price_impact_bps < quote.slippage_bps
    assert set(quote.to_dict()) >= {"amount_in", "amount_out", "fee", "slippage_bps"}


def test_exact_in_rounding_is_against_the_trader():
    pool = CpmmPool("p", SOL, USDC, 1_000, 1_000, fee_num=25)
    # fee = ceil(1 * 25 / 10000) = 1, so a single unit buys nothing.
    with pytest.raises(InsufficientLiquidity):
        pool.quote_exact_in("SOL", 1)
    quote = pool.quote_exact_in("SOL", 10)
    assert quote.fee == 1
    assert quote.amount_out == 1_000 * 9 // (1_000 + 9)


def test_exact_out_formula():
    pool = sol_usdc()
    dy = 1_000 * USDC.one
    x, y = 1_000 * SOL.one, 150_000 * USDC.one
    net = -(-x * dy // (y - dy))
    expected = -(-net * 10_000 // 9_975)
    quote = pool.quote_exact_out("SOL", dy)
    assert quote.amount_in == expected
    assert quote.amount_out >= dy
    # One unit less no longer buys dy: the input is the smallest that does.
    assert pool.quote_exact_in("SOL", expected - 1).amount_out < dy


def test_exact_out_cannot_drain_the_reserve():
    pool = sol_usdc()
    with pytest.raises(InsufficientLiquidity):
        pool.quote_exact_out("SOL", 150_000 * USDC.one)
    with pytest.raises(InsufficientLiquidity):
        pool.quote_exact_out("USDC", 2_000 * SOL.one)


@pytest.mark.parametrize("bad", [0, -5, 1.5, "10", True, None])
def test_invalid_amounts(bad):
    pool = sol_usdc()
    with pytest.raises(InvalidSwapAmount):
        pool.quote_exact_in("SOL", bad)
    with pytest.raises(InvalidSwapAmount):
        pool.quote_exact_out("SOL", bad)
    with pytest.raises(InvalidSwapAmount):
        pool.swap_exact_in("SOL", bad)


def test_invalid_min_out():
    with pytest.raises(InvalidSwapAmount):
        sol_usdc().swap_exact_in("SOL", SOL.one, min_out=-1)


def test_unsupported_token():
    pool = sol_usdc()
    with pytest.raises(UnsupportedToken):
        pool.quote_exact_in("JUP", 10)
    with pytest.raises(UnsupportedToken):
        pool.spot_price("JUP")
    assert pool.serves("SOL", "USDC") and pool.serves("USDC", "SOL")
    assert not pool.serves("SOL", "SOL") and not pool.serves("SOL", "JUP")
    assert pool.other("SOL") is USDC and pool.other("USDC") is SOL
    assert pool.tokens == (SOL, USDC)


def test_slippage_exceeded_leaves_state_untouched():
    pool = sol_usdc()
    before = pool.snapshot()
    with pytest.raises(SlippageExceeded) as err:
        pool.swap_exact_in("SOL", SOL.one, min_out=149_475_898)
    assert err.value.min_out == 149_475_898 and err.value.amount_out == 149_475_897
    assert err.value.transient and err.value.code == "SLIPPAGE_EXCEEDED"
    assert pool.snapshot() == before
    assert pool.swap_exact_in("SOL", SOL.one, min_out=149_475_897).amount_out == 149_475_897


def test_fee_bps():
    assert sol_usdc().fee_bps == pytest.approx(25.0)
    assert CpmmPool("p", SOL, USDC, 10, 10, fee_num=3, fee_den=1_000).fee_bps == pytest.approx(30.0)
    assert sol_usdc().fee_bps_at(1e9) == sol_usdc().fee_bps  # a constant fee: time does not matter


def test_zero_fee_pool_keeps_k_with_floor_rounding():
    pool = sol_usdc(fee_num=0)
    quote = pool.quote_exact_in("SOL", SOL.one)
    assert quote.fee == 0
    assert quote.amount_out == 150_000 * USDC.one * SOL.one // (1_001 * SOL.one)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reserve_x": 0},
        {"reserve_y": -1},
        {"reserve_x": 1.5},
        {"fee_num": 10_000},
        {"fee_num": -1},
        {"token_y": SOL},
    ],
)
def test_constructor_validation(kwargs):
    args = {"pool_id": "p", "token_x": SOL, "token_y": USDC, "reserve_x": 10, "reserve_y": 10}
    args.update(kwargs)
    with pytest.raises(ValueError):
        CpmmPool(**args)


@pytest.mark.parametrize(("price", "value_y"), [(150.0, 50_000 * 10**6), (0.8123, 10**12), (1e-5, 10**9)])
def test_at_price_matches_spot(price, value_y):
    pool = CpmmPool.at_price("p", SOL, USDC, price=price, value_y=value_y)
    assert pool.reserves()["USDC"] == value_y
    assert pool.spot_price("SOL") == pytest.approx(price, rel=1e-9)
    assert pool.spot_price("USDC") == pytest.approx(1 / price, rel=1e-9)


def test_at_price_different_decimals():
    pool = CpmmPool.at_price("p", JUP, SOL, price=0.005, value_y=100 * SOL.one, fee_num=30)
    assert pool.spot_price("JUP") == pytest.approx(0.005)
    assert pool.reserve_x == 20_000 * JUP.one
    assert pool.fee_bps == pytest.approx(30.0)


@pytest.mark.parametrize("price", [0.0, -1.0, math.inf, math.nan])
def test_at_price_rejects_bad_price(price):
    with pytest.raises(ValueError):
        CpmmPool.at_price("p", SOL, USDC, price=price, value_y=10**9)


def test_snapshot_is_json_and_restores():
    pool = sol_usdc()
    pool.swap_exact_in("SOL", 3 * SOL.one)
    snap = pool.snapshot()
    assert snap["type"] == "cpmm"
    assert snap["token_x"] == {"symbol": "SOL", "mint": SOL.mint, "decimals": 9}
    again = restore_pool(json.loads(json.dumps(snap)))
    assert isinstance(again, CpmmPool)
    assert again.snapshot() == snap
    assert again.swap_exact_in("USDC", 999 * USDC.one) == pool.swap_exact_in("USDC", 999 * USDC.one)
    assert "SOL=" in repr(again)


def test_restore_rejects_other_types():
    with pytest.raises(ValueError):
        CpmmPool.restore({"type": "dlmm"})
    with pytest.raises(ValueError):
        restore_pool({"type": "orderbook"})
    with pytest.raises(ValueError):
        restore_pool({})


@FAST
@given(
    x=st.integers(min_value=10**3, max_value=10**16),
    y=st.integers(min_value=10**3, max_value=10**16),
    amount=st.integers(min_value=1, max_value=10**17),
    fee_num=st.integers(min_value=0, max_value=100),
    x_in=st.booleans(),
)
def test_k_never_decreases(x, y, amount, fee_num, x_in):
    pool = CpmmPool("p", SOL, USDC, x, y, fee_num=fee_num)
    token = "SOL" if x_in else "USDC"
    try:
        pool.swap_exact_in(token, amount)
    except InsufficientLiquidity:
        return
    assert pool.reserve_x * pool.reserve_y >= x * y
    assert pool.reserve_x > 0 and pool.reserve_y > 0


@FAST
@given(
    amount=st.integers(min_value=1, max_value=10**15),
    x_in=st.booleans(),
)
def test_exact_out_is_the_minimal_inverse(amount, x_in):
    pool = sol_usdc()
    token = "SOL" if x_in else "USDC"
    try:
        out = pool.quote_exact_in(token, amount).amount_out
    except InsufficientLiquidity:
        return
    needed = pool.quote_exact_out(token, out)
    assert needed.amount_in <= amount
    assert needed.amount_out >= out
    if needed.amount_in > 1:
        try:
            assert pool.quote_exact_in(token, needed.amount_in - 1).amount_out < out
        except InsufficientLiquidity:
            pass
