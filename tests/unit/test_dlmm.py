import json
import math
from fractions import Fraction
from typing import Any

import pytest

from sim.pools import (
    DlmmFeeParams,
    DlmmPool,
    InsufficientLiquidity,
    InvalidSwapAmount,
    SlippageExceeded,
    UnsupportedToken,
    restore_pool,
)
from sim.pools.dlmm_params import FEE_PRECISION, MAX_FEE_RATE, ONE, price_from_id
from sim.tokens import SOL, USDC, USDT

PRESET_20 = DlmmFeeParams(base_factor=10_000)  # Meteora's bin step 20 preset: 0.2% base fee
UNIT = 1_000_000


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def ladder(params: DlmmFeeParams = PRESET_20, depth: int = 10, per_bin: int = UNIT) -> DlmmPool:
    """USDT/USDC (same decimals), active bin 0 (price exactly 1), ``per_bin`` of
    USDC in bins 0..-depth and of USDT in bins 1..depth."""
    bins = {-k: (0, per_bin) for k in range(depth + 1)}
    bins.update({k: (per_bin, 0) for k in range(1, depth + 1)})
    return DlmmPool("ladder", USDT, USDC, bin_step=20, active_id=0, bins=bins, params=params)


def sol_usdc(shape: str = "spot") -> DlmmPool:
    return DlmmPool.with_liquidity(
        "met-sol-usdc",
        SOL,
        USDC,
        price=150.0,
        value_y=120_000 * USDC.one,
        bin_step=20,
        bins_each_side=35,
        params=PRESET_20,
        shape=shape,
    )


# -- bin prices ----------------------------------------------------------------


@pytest.mark.parametrize(("bin_step", "max_id"), [(10, 43_690), (20, 21_855), (100, 4_386)])
def test_price_from_id_is_bit_exact_with_the_program_at_the_range_ends(bin_step, max_id):
    # Values asserted by the on-chain program's own preset tests.
    assert price_from_id(max_id, bin_step) == 170141183460469231731687303715884105727
    assert price_from_id(-max_id, bin_step) == 2


@pytest.mark.parametrize("bin_id", [-3000, -951, -1, 0, 1, 17, 950, 3000])
def test_price_from_id_is_close_to_the_exact_power(bin_id):
    exact = Fraction(10_020, 10_000) ** bin_id
    assert abs(Fraction(price_from_id(bin_id, 20), ONE) / exact - 1) < Fraction(1, 10**12)


def test_price_from_id_range():
    assert price_from_id(0, 20) == ONE
    with pytest.raises(ValueError):
        price_from_id(500_000, 1)
    with pytest.raises(ValueError):
        price_from_id(-443_636, 100)  # underflows to zero


# -- fee parameters -----------------------------------------------------------


def test_base_fee_rate():
    assert PRESET_20.base_fee_rate(20) == 2_000_000  # 0.2% of 1e9
    assert DlmmFeeParams(base_factor=10_000, base_fee_power_factor=1).base_fee_rate(20) == 20_000_000
    assert DlmmFeeParams(base_factor=8_000).base_fee_rate(100) == 8_000_000


def test_variable_fee_rate_matches_the_program_formula():
    params = DlmmFeeParams(base_factor=10_000, variable_fee_control=40_000, max_volatility_accumulator=350_000)
    # 40000 * (350000 * 10)^2 / 1e11
    assert params.variable_fee_rate(10, 350_000) == 4_900_000
    assert params.variable_fee_rate(10, 0) == 0
    # Rounded up: 1 * (1 * 1)^2 / 1e11 -> 1
    assert DlmmFeeParams(base_factor=1, variable_fee_control=1).variable_fee_rate(1, 1) == 1
    assert DlmmFeeParams(base_factor=1, variable_fee_control=0).variable_fee_rate(20, 10**6) == 0


def test_total_fee_is_capped_at_ten_percent():
    params = DlmmFeeParams(base_factor=10_000, variable_fee_control=10**7)
    assert params.total_fee_rate(20, 350_000) == MAX_FEE_RATE
    assert params.total_fee_rate(20, 0) == 2_000_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_factor": -1},
        {"base_factor": 1.5},
        {"base_factor": 1, "filter_period": 700, "decay_period": 600},
        {"base_factor": 1, "reduction_factor": 10_001},
        {"base_factor": True},
    ],
)
def test_fee_params_validation(kwargs):
    with pytest.raises(ValueError):
        DlmmFeeParams(**kwargs)


# -- swaps inside one bin -----------------------------------------------------


def test_swap_within_one_bin_is_exact():
    pool = ladder()
    quote = pool.swap_exact_in("USDT", 10_000, now=100.0)
    fee = ceil_div(10_000 * 2_000_000, FEE_PRECISION)
    assert quote.fee == fee == 20
    assert quote.amount_out == 10_000 - fee  # price is exactly 1 in bin 0
    assert quote.bins_crossed == 0
    assert quote.price_impact_bps == 0.0
    assert quote.slippage_bps == pytest.approx(20.0)
    assert (state(pool)["fee_x"], state(pool)["fee_y"]) == (20, 0)  # kept aside, in USDT
    assert (0, 1.0, 10_000 - fee, UNIT - (10_000 - fee)) in pool.bins_summary()


def test_output_floors_at_a_non_unit_price():
    pool = ladder()
    price = price_from_id(-1, 20)
    pool.swap_exact_in("USDT", UNIT + 2_006, now=0.0)  # drains bin 0 (max in 1_002_005), moves to -1
    assert pool.active_id == -1
    quote = pool.quote_exact_in("USDT", 77_777, now=1.0)
    rate = 2_000_000 + 8_000  # refs kept: bin -1 is one bin from the index reference
    fee = ceil_div(77_777 * rate, FEE_PRECISION)
    assert quote.fee == fee
    assert quote.amount_out == ((77_777 - fee) * price) >> 64


def test_y_to_x_within_one_bin():
    pool = ladder()
    pool.swap_exact_in("USDT", 500_000, now=0.0)  # the active bin now holds both tokens
    quote = pool.quote_exact_in("USDC", 100_000, now=1_000.0)
    assert quote.token_in == "USDC" and quote.token_out == "USDT"
    assert quote.fee == 200
    assert quote.amount_out == 100_000 - 200
    assert quote.bins_crossed == 0


# -- crossing bins ------------------------------------------------------------


def test_crossing_bins_charges_each_bin_at_its_own_rate():
    pool = ladder()
    amount = 3 * UNIT + 500_000
    quote = pool.quote_exact_in("USDT", amount, now=0.0)

    # Independent expectation: bin -d is d bins from the reference, so its
    # rate is base + ceil(20000 * (d * 10000 * 20)^2 / 1e11) = 2e6 + 8000 d^2.
    left, out, fee = amount, 0, 0
    for d in range(10):
        rate = 2_000_000 + 8_000 * d * d
        price = Fraction(price_from_id(-d, 20), ONE)
        need = math.ceil(UNIT / price)
        bin_fee = ceil_div(need * rate, FEE_PRECISION - rate)
        if left > need + bin_fee:
            left -= need + bin_fee
            out += UNIT
            fee += bin_fee
            continue
        bin_fee = ceil_div(left * rate, FEE_PRECISION)
        out += math.floor((left - bin_fee) * price)
        fee += bin_fee
        break
    assert (quote.amount_out, quote.fee, quote.bins_crossed) == (out, fee, d)
    assert quote.spot_price_after == pytest.approx(1.002**-d)
    assert quote.price_impact_bps == pytest.approx((1 - 1.002**-d) * 1e4)


@pytest.mark.parametrize(
    ("amount", "fee", "end_id", "bin_minus_one_x"),
    [
        (500, 1, 0, 0),  # 499 + ceil(499 * 0.2 % / 99.8 %): exactly what buys the bin out
        (501, 2, 0, 0),  # fee ceil(501 * 0.2 %) = 2 leaves 499, the bin's price: all 501 stay in bin 0
        (502, 2, -1, 1),  # 500 left after the fee, one more than the bin takes: bought out for 500, 2 go on
    ],
)
def test_input_that_buys_a_bin_out_exactly_stays_in_it(amount, fee, end_id, bin_minus_one_x):
    # The program's per-bin fill (swap_exact_in_quote_at_bin): the fee comes off the whole input
    # first; only what is left beyond the bin's price goes on, with the bin's fee on its price alone.
    params = DlmmFeeParams(base_factor=10_000, variable_fee_control=0)
    pool = DlmmPool("p", USDT, USDC, bin_step=20, active_id=0, bins={0: (0, 499), -1: (0, UNIT)}, params=params)
    quote = pool.swap_exact_in("USDT", amount, now=0.0)
    assert (quote.amount_out, quote.fee, pool.active_id) == (499, fee, end_id)
    assert pool.snapshot()["bins"] == [[-1, bin_minus_one_x, UNIT], [0, amount - fee - bin_minus_one_x, 0]]


def test_fees_grow_with_bins_crossed():
    pool = ladder()
    rates = []
    for bins in range(1, 8):
        need = pool.quote_exact_out("USDT", bins * UNIT, now=0.0)
        assert need.amount_out == bins * UNIT
        rates.append(need.fee / need.amount_in)
    assert all(a < b for a, b in zip(rates, rates[1:]))
    assert rates[0] == pytest.approx(0.002, rel=1e-3)


def test_without_variable_fee_the_rate_stays_flat():
    pool = ladder(DlmmFeeParams(base_factor=10_000, variable_fee_control=0))
    quotes = [pool.quote_exact_out("USDT", b * UNIT) for b in (1, 4, 8)]
    # Within rounding (one unit of fee per bin) of the base rate; with the
    # variable fee, 4 bins would already cost ~0.2028%.
    assert [q.fee / q.amount_in for q in quotes] == pytest.approx([0.002] * 3, rel=1e-3)


def test_swap_moves_the_active_bin_both_ways():
    pool = ladder()
    pool.swap_exact_in("USDT", 2 * UNIT + 100_000, now=0.0)
    assert pool.active_id == -2
    assert pool.spot_price("USDT") == pytest.approx(1.002**-2)
    pool.swap_exact_in("USDC", 5 * UNIT, now=1_000.0)
    assert pool.active_id > 0
    assert pool.spot_price("USDC") == pytest.approx(1 / 1.002**pool.active_id)


def test_walk_skips_empty_bins():
    bins = {0: (0, UNIT), -3: (0, UNIT)}
    pool = DlmmPool("gap", USDT, USDC, bin_step=20, active_id=0, bins=bins, params=PRESET_20)
    quote = pool.swap_exact_in("USDT", UNIT + 500_000, now=0.0)
    assert quote.bins_crossed == 3
    assert pool.active_id == -3
    assert state(pool)["volatility_accumulator"] == 30_000  # empty bins count towards volatility


def test_exact_out_matches_the_program_quote():
    # Program: sum over bins of amount_in + compute_fee(amount_in) where
    # compute_fee(a) = ceil(a * r / (1e9 - r)).
    pool = ladder()
    target = 2 * UNIT + 123_456
    expected = 0
    for d, want in ((0, UNIT), (1, UNIT), (2, 123_456)):
        rate = 2_000_000 + 8_000 * d * d
        amount = ceil_div(want << 64, price_from_id(-d, 20))
        expected += amount + ceil_div(amount * rate, FEE_PRECISION - rate)
    quote = pool.quote_exact_out("USDT", target, now=0.0)
    assert quote.amount_in == expected
    assert quote.amount_out >= target
    assert pool.quote_exact_in("USDT", expected - 1, now=0.0).amount_out < target


# -- volatility accumulator ---------------------------------------------------


def state(pool: DlmmPool) -> dict[str, Any]:
    """The pool's volatility and fee state, as its snapshot records it."""
    return pool.snapshot()


def after_five_bin_swap() -> DlmmPool:
    pool = ladder(depth=20)
    pool.swap_exact_in("USDT", 5 * UNIT + 300_000, now=0.0)
    assert (pool.active_id, state(pool)["volatility_accumulator"]) == (-5, 50_000)
    assert (state(pool)["volatility_reference"], state(pool)["index_reference"]) == (0, 0)
    assert state(pool)["last_update"] == 0.0
    return pool


def test_first_swap_starts_from_a_fresh_reference():
    pool = ladder()
    assert state(pool)["last_update"] is None
    assert pool.fee_bps_at(0.0) == pytest.approx(20.0)
    assert pool.fee_bps == pytest.approx(20.0)


def test_volatility_inside_the_filter_period_keeps_the_references():
    pool = after_five_bin_swap()
    # va = 0 + |0 - (-5)| * 10000 = 50000 -> rate 2e6 + 8000 * 5^2 = 22 bps
    assert pool.fee_bps_at(29.9) == pytest.approx(22.0)
    pool.swap_exact_in("USDT", 1_000, now=10.0)
    assert (state(pool)["volatility_accumulator"], state(pool)["index_reference"]) == (50_000, 0)
    pool.swap_exact_in("USDT", 2 * UNIT, now=20.0)  # still within 30 s of the last swap
    assert state(pool)["index_reference"] == 0
    assert state(pool)["volatility_accumulator"] == abs(pool.active_id) * 10_000 == 70_000


def test_volatility_decays_between_filter_and_decay_period():
    pool = after_five_bin_swap()
    # vr = 50000 * 5000 / 10000 = 25000, index_ref = -5: fee 2e6 + ceil(20000 * (25000 * 20)^2 / 1e11)
    assert pool.fee_bps_at(30.0) == pytest.approx((2_000_000 + 50_000) / 1e5)
    assert pool.fee_bps_at(599.0) == pytest.approx(20.5)
    pool.swap_exact_in("USDT", 1_000, now=100.0)
    assert (state(pool)["volatility_reference"], state(pool)["index_reference"]) == (25_000, -5)
    assert state(pool)["volatility_accumulator"] == 25_000
    assert state(pool)["last_update"] == 100.0


def test_decay_uses_the_reduction_factor():
    pool = ladder(DlmmFeeParams(base_factor=10_000, reduction_factor=2_500), depth=20)
    pool.swap_exact_in("USDT", 4 * UNIT + 100_000, now=0.0)
    assert (pool.active_id, state(pool)["volatility_accumulator"]) == (-4, 40_000)
    pool.swap_exact_in("USDT", 1_000, now=31.0)
    assert state(pool)["volatility_reference"] == state(pool)["volatility_accumulator"] == 10_000


def test_volatility_resets_after_the_decay_period():
    pool = after_five_bin_swap()
    assert pool.fee_bps_at(600.0) == pytest.approx(20.0)
    pool.swap_exact_in("USDT", 1_000, now=600.0)
    snap = state(pool)
    assert (snap["volatility_accumulator"], snap["volatility_reference"]) == (0, 0)
    assert snap["index_reference"] == -5


def five_bins_at(now: float) -> DlmmPool:
    pool = ladder(depth=20)
    pool.swap_exact_in("USDT", 5 * UNIT + 300_000, now=now)
    return pool


def test_the_clock_counts_whole_seconds_as_the_program_does():
    # 29.3 s after a swap at 100.7 is 30 whole seconds (130 - 100): the filter period (30) is over,
    # so the reference decays to 25000 and a swap in bin -5 pays 2e6 + 50000 over 1e9.
    pool = five_bins_at(100.7)
    assert state(pool)["last_update"] == 100
    decayed = pool.quote_exact_in("USDT", 100_000, now=130.0)
    assert decayed.fee == ceil_div(100_000 * 2_050_000, FEE_PRECISION) == 205
    # Counted in fractions (29.3 s) the references would stay: va 50000, 2e6 + 200000 over 1e9.
    kept = pool.quote_exact_in("USDT", 100_000, now=129.99)  # 29 whole seconds
    assert kept.fee == ceil_div(100_000 * 2_200_000, FEE_PRECISION) == 220
    assert decayed.amount_out > kept.amount_out
    pool.swap_exact_in("USDT", 100_000, now=130.0)
    snap = state(pool)
    assert (snap["volatility_reference"], snap["index_reference"], snap["last_update"]) == (25_000, -5, 130)


def test_a_clock_that_went_back_keeps_the_references():
    # The program's elapsed is negative, so below the filter period: nothing decays. The swap
    # stamps the earlier time, and the periods count from it.
    pool = five_bins_at(100.7)
    assert pool.fee_bps_at(40.0) == pytest.approx(22.0)
    pool.swap_exact_in("USDT", 1_000, now=40.5)
    snap = state(pool)
    assert (snap["volatility_accumulator"], snap["index_reference"], snap["last_update"]) == (50_000, 0, 40)
    assert pool.fee_bps_at(69.9) == pytest.approx(22.0)  # 29 s after 40
    assert pool.fee_bps_at(70.0) == pytest.approx(20.5)  # 30 s: decayed


def test_snapshots_from_before_whole_seconds_restore_floored():
    snap = five_bins_at(0.0).snapshot()
    restored = restore_pool({**snap, "last_update": 100.7})
    assert restored.snapshot()["last_update"] == 100
    assert restored.fee_bps_at(130.0) == pytest.approx(20.5)


def test_volatility_accumulator_is_capped():
    params = DlmmFeeParams(base_factor=10_000, max_volatility_accumulator=30_000)
    pool = ladder(params)
    pool.swap_exact_in("USDT", 7 * UNIT, now=0.0)
    assert pool.active_id == -6
    assert state(pool)["volatility_accumulator"] == 30_000


def test_quotes_do_not_touch_the_volatility_state():
    pool = after_five_bin_swap()
    before = pool.snapshot()
    for now in (5.0, 100.0, 1_000.0):
        pool.quote_exact_in("USDT", 3 * UNIT, now=now)
        pool.quote_exact_out("USDC", UNIT, now=now)
        pool.fee_bps_at(now)
    assert pool.snapshot() == before


# -- errors -------------------------------------------------------------------


def test_insufficient_liquidity_is_typed_and_leaves_state_untouched():
    pool = ladder(depth=3)
    before = pool.snapshot()
    with pytest.raises(InsufficientLiquidity) as err:
        pool.swap_exact_in("USDT", 10 * UNIT, now=0.0)
    assert err.value.code == "INSUFFICIENT_LIQUIDITY" and not err.value.transient
    with pytest.raises(InsufficientLiquidity):
        pool.quote_exact_out("USDT", 4 * UNIT + 1)
    with pytest.raises(InsufficientLiquidity):
        pool.quote_exact_in("USDC", 10 * UNIT)
    with pytest.raises(InsufficientLiquidity):
        pool.quote_exact_out("USDC", 3 * UNIT + 1)
    with pytest.raises(InsufficientLiquidity):
        pool.quote_exact_in("USDT", 1)  # the fee eats the single unit
    assert pool.snapshot() == before
    assert pool.quote_exact_out("USDT", 4 * UNIT).amount_out == 4 * UNIT


def test_slippage_exceeded_leaves_state_untouched():
    pool = sol_usdc()
    before = pool.snapshot()
    quote = pool.quote_exact_in("SOL", 50 * SOL.one, now=3.0)
    with pytest.raises(SlippageExceeded) as err:
        pool.swap_exact_in("SOL", 50 * SOL.one, min_out=quote.amount_out + 1, now=3.0)
    assert err.value.amount_out == quote.amount_out
    assert pool.snapshot() == before
    assert pool.swap_exact_in("SOL", 50 * SOL.one, min_out=quote.amount_out, now=3.0) == quote


@pytest.mark.parametrize("bad", [0, -1, 2.0, "5", False])
def test_invalid_amounts(bad):
    pool = ladder()
    with pytest.raises(InvalidSwapAmount):
        pool.quote_exact_in("USDT", bad)
    with pytest.raises(InvalidSwapAmount):
        pool.quote_exact_out("USDT", bad)
    with pytest.raises(InvalidSwapAmount):
        pool.swap_exact_in("USDT", bad)


@pytest.mark.parametrize("bad", [-1, 2.0, "5", True])
def test_invalid_min_out(bad):
    with pytest.raises(InvalidSwapAmount):
        ladder().swap_exact_in("USDT", 1_000, min_out=bad)


def test_unsupported_token():
    pool = ladder()
    with pytest.raises(UnsupportedToken):
        pool.quote_exact_in("SOL", 1_000)
    with pytest.raises(UnsupportedToken):
        pool.quote_exact_out("SOL", 1_000)
    with pytest.raises(UnsupportedToken):
        pool.spot_price("SOL")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token_y": USDT},
        {"bin_step": 0},
        {"bin_step": 10_001},
        {"active_id": 500_000},
        {"bins": {}},
        {"bins": {0: (-1, 5)}},
        {"bins": {0: (1.5, 5)}},
    ],
)
def test_constructor_validation(kwargs):
    args = {
        "pool_id": "p",
        "token_x": USDT,
        "token_y": USDC,
        "bin_step": 20,
        "active_id": 0,
        "bins": {0: (10, 10)},
        "params": PRESET_20,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        DlmmPool(**args)


# -- construction with a target depth -------------------------------------------


@pytest.mark.parametrize("shape", ["spot", "curve"])
def test_with_liquidity_matches_price_and_depth(shape):
    pool = sol_usdc(shape)
    assert abs(pool.spot_price("SOL") / 150.0 - 1) <= 0.001  # within half a bin
    summary = pool.bins_summary()
    assert len(summary) == 71
    ids = [row[0] for row in summary]
    assert ids == list(range(pool.active_id - 35, pool.active_id + 36))
    assert all(a[1] < b[1] for a, b in zip(summary, summary[1:]))
    value = Fraction(0)
    for bin_id, _, rx, ry in summary:
        assert (rx == 0) == (bin_id < pool.active_id) and (ry == 0) == (bin_id > pool.active_id)
        value += ry + Fraction(rx * price_from_id(bin_id, 20), ONE)
    assert abs(value - 120_000 * USDC.one) <= 200  # rounding only
    if shape == "curve":
        by_id = {row[0]: row for row in summary}
        assert by_id[pool.active_id - 1][3] > 5 * by_id[pool.active_id - 35][3]


def test_with_liquidity_validation():
    kwargs = {"price": 150.0, "value_y": 10**9, "bin_step": 20, "bins_each_side": 3, "params": PRESET_20}
    for bad in ({"price": 0.0}, {"price": math.nan}, {"value_y": 0}, {"bins_each_side": -1}, {"shape": "bid-ask"}):
        with pytest.raises(ValueError):
            DlmmPool.with_liquidity("p", SOL, USDC, **{**kwargs, **bad})


def test_with_liquidity_single_bin():
    pool = DlmmPool.with_liquidity(
        "one", SOL, USDC, price=150.0, value_y=1_000 * USDC.one, bin_step=20, bins_each_side=0, params=PRESET_20
    )
    assert len(pool.bins_summary()) == 1
    assert pool.reserves()["USDC"] == 500 * USDC.one


def test_realistic_swap_prices():
    pool = sol_usdc()
    quote = pool.quote_exact_in("SOL", SOL.one, now=0.0)
    assert quote.bins_crossed == 0
    assert quote.execution_price == pytest.approx(pool.spot_price("SOL") * 0.998, rel=1e-6)
    big = pool.quote_exact_in("USDC", 20_000 * USDC.one, now=0.0)
    assert big.bins_crossed >= 10 and big.price_impact_bps > 0 and big.slippage_bps > 20


# -- snapshot -----------------------------------------------------------------


def test_snapshot_round_trip_keeps_volatility_and_fees():
    pool = after_five_bin_swap()
    pool.swap_exact_in("USDC", 1_234_567, now=12.0)
    snap = pool.snapshot()
    assert snap["type"] == "dlmm"
    assert snap["token_y"] == {"symbol": "USDC", "mint": USDC.mint, "decimals": 6}
    again = restore_pool(json.loads(json.dumps(snap)))
    assert isinstance(again, DlmmPool)
    assert again.snapshot() == snap
    assert again.reserves() == pool.reserves()
    assert again.fee_bps_at(20.0) == pool.fee_bps_at(20.0) > 20.0
    for token, amount, now in (("USDT", 700_000, 20.0), ("USDC", 3 * UNIT, 80.0), ("USDT", 99, 900.0)):
        assert again.swap_exact_in(token, amount, now=now) == pool.swap_exact_in(token, amount, now=now)
    assert again.snapshot() == pool.snapshot()
    assert "bin_step=20" in repr(again)


def test_restore_rejects_other_types():
    with pytest.raises(ValueError):
        DlmmPool.restore({"type": "cpmm"})
