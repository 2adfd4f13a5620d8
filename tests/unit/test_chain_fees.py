"""sim.chain_fees: what a transaction pays, the fee levels, the fee market's bids, packing."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from sim.chain_fees import (
    AUTO_PERCENTILE,
    JITO_TIP_QUANTILES,
    LEVEL_PERCENTILES,
    NO_FEES,
    PRIORITY_FEE_QUANTILES,
    Congestion,
    Demand,
    FeeHistory,
    FeeMarket,
    charge,
    draw_from_quantiles,
    fee_percentile,
    leader_reward_per_cu,
    pack,
    pack_block,
    priority_fee_for,
    priority_fee_lamports,
)


# --------------------------------------------------------------------------- charging


@pytest.mark.parametrize(
    ("cu_limit", "cu_price", "lamports"),
    [(200_000, 0, 0), (200_000, 1, 1), (200_000, 5, 1), (200_000, 6, 2), (1_400_000, 1_000_000, 1_400_000),
     (140_000, 89_430, 12_521)],
)  # fmt: skip
def test_the_priority_fee_is_cu_limit_times_cu_price_rounded_up_to_a_lamport(cu_limit, cu_price, lamports):
    assert priority_fee_lamports(cu_limit, cu_price) == lamports


def test_a_landed_transaction_pays_the_base_fee_per_signature_and_its_priority_fee():
    fees = charge(200_000, 10_000, signatures=2)
    assert (fees.base_lamports, fees.priority_lamports, fees.tip_lamports) == (10_000, 2_000, 0)
    tipped = charge(140_000, 0, tip_lamports=1_000_000)
    assert tipped.total_lamports == 1_005_000 and tipped.total_sol == Decimal("0.001005")
    assert tipped.to_dict() == {"baseLamports": 5_000, "priorityLamports": 0, "tipLamports": 1_000_000,
                                "totalSol": "0.001005"}  # fmt: skip
    assert NO_FEES.total_lamports == 0


def test_the_leader_sorts_by_its_reward_per_cu_half_the_base_fee_and_the_whole_priority_fee():
    assert leader_reward_per_cu(100_000, 0) == pytest.approx(2_500 / 100_000)
    assert leader_reward_per_cu(100_000, 1_000_000) == pytest.approx((100_000 + 2_500) / 100_000)
    assert leader_reward_per_cu(100_000, 10_000) > leader_reward_per_cu(200_000, 10_000)


# --------------------------------------------------------------------------- levels


def test_levels_are_helius_percentiles_of_recent_landed_fees_and_auto_is_the_median():
    assert LEVEL_PERCENTILES == {"low": 25.0, "medium": 50.0, "high": 75.0, "veryHigh": 95.0}
    assert AUTO_PERCENTILE == 50.0
    fees = np.arange(1, 101) * 1_000
    picked = {level: priority_fee_for(level, fees) for level in ("auto", "low", "medium", "high", "veryHigh")}
    assert picked == {"auto": 50_000, "low": 25_000, "medium": 50_000, "high": 75_000, "veryHigh": 95_000}


def test_a_cu_price_given_directly_passes_through_and_every_price_is_capped():
    assert priority_fee_for(123_456, []) == 123_456
    # 1,000 lamports at most for 200k CU: at most 5,000 micro-lamports per CU.
    assert priority_fee_for(123_456, [], cu_limit=200_000, max_priority_fee_lamports=1_000) == 5_000
    assert priority_fee_for("veryHigh", [10**9], cu_limit=200_000, max_priority_fee_lamports=1_000) == 5_000
    assert priority_fee_for("high", [7], max_priority_fee_lamports=1_000) == 7


def test_no_landed_fee_yet_bids_nothing():
    assert priority_fee_for("auto", []) == 0 and fee_percentile([], 50) == 0
    assert fee_percentile([5], 1) == 5 and fee_percentile([1, 2, 3, 4], 100) == 4


@pytest.mark.parametrize("bad", ["urgent", -1, True])
def test_a_level_that_is_not_one_is_refused(bad):
    with pytest.raises(ValueError):
        priority_fee_for(bad, [1, 2, 3])


def test_a_negative_cap_is_refused():
    with pytest.raises(ValueError):
        priority_fee_for("auto", [1], max_priority_fee_lamports=-1)


# --------------------------------------------------------------------------- the market's bids


def test_draws_follow_the_mainnet_samples_quantiles():
    rng = np.random.default_rng(0)
    fees = draw_from_quantiles(rng, PRIORITY_FEE_QUANTILES, 40_000)
    for q, value in PRIORITY_FEE_QUANTILES[1:-1]:
        assert np.quantile(fees, q) == pytest.approx(value, rel=0.08)
    tips = draw_from_quantiles(rng, JITO_TIP_QUANTILES, 40_000)
    assert np.median(tips) == pytest.approx(10_000, rel=0.08) and tips.min() >= 1_000


def a_market(seed: int = 1) -> FeeMarket:
    return FeeMarket(seed=seed, block_cu=48_000_000, account_cu=12_000_000, cu_median=100_000, cu_sigma=0.8,
                     slot_s=0.4)  # fmt: skip


def test_the_fee_market_asks_for_its_load_in_block_space_and_moves_in_waves():
    market = a_market()
    steady = Congestion("steady", load=2.0, wave_sigma=0.0, bundles_per_slot=10.0)
    asked = []
    for slot in range(50):
        market.step(steady, slot)
        demand = market.draw(steady, slot)
        asked.append(demand.cu.sum() / 48_000_000)
        assert len(demand.reward) == len(demand.cu) == len(demand.price) and demand.cu.min() >= 5_000
    assert np.mean(asked) == pytest.approx(2.0, rel=0.1)
    assert np.array_equal(market.draw(steady, 7).price, a_market().draw(steady, 7).price)  # fixed by the slot
    wavy = Congestion("wavy", load=1.0, wave_sigma=0.5, wave_s=5.0)
    loads = []
    for slot in range(2_000):
        market.step(wavy, slot)
        loads.append(market.load(wavy))
    assert np.std(np.log(loads)) == pytest.approx(0.5, rel=0.25)
    assert np.corrcoef(np.log(loads[:-1]), np.log(loads[1:]))[0, 1] > 0.8  # one slot to the next: a wave


def test_an_accounts_traffic_depends_on_the_seed_the_account_and_the_slot_only():
    hot = Congestion("hot", load=1.0, wave_sigma=0.0, hot_load=2.0, hot_fee_scale=3.0)
    a, b = a_market(4), a_market(4)
    b.draw(hot, 17), b.draw_account(hot, "other", 17)  # other draws in between change nothing
    first, again = a.draw_account(hot, "pool", 17), b.draw_account(hot, "pool", 17)
    assert np.array_equal(first.cu, again.cu) and np.array_equal(first.price, again.price)
    assert not np.array_equal(first.cu, a.draw_account(hot, "pool", 18).cu)
    assert first.cu.sum() == pytest.approx(2.0 * 12_000_000, rel=0.25) and first.bundle_cu.size == 0


# --------------------------------------------------------------------------- packing


def test_the_greedy_packer_skips_what_does_not_fit_and_goes_on():
    assert list(pack(np.array([5, 4, 3, 2, 1]), 7)) == [True, False, False, True, False]
    assert list(pack(np.array([8, 1, 1]), 7)) == [False, True, True]
    assert list(pack(np.array([], np.int64), 7)) == []
    assert not pack(np.array([1, 1]), 0).any()


def demand(reward: list[float], cu: list[int]) -> Demand:
    none = np.zeros(0, np.int64)
    return Demand(np.array(reward, float), np.array(cu, np.int64), np.arange(len(cu), dtype=np.int64), none, none)


def test_a_block_packs_each_account_first_then_the_block():
    others = demand([5.0, 1.0], [40, 40])
    pool = demand([4.0, 3.0], [30, 30])  # the account's other traffic
    ours = demand([6.0, 2.0, 0.5], [30, 10, 10])
    chosen, items, writes = pack_block(others, [pool], ours, [[0], [0], []], room=100, account_room=60)
    # the account (room 60) takes ours 6.0 and its own 4.0; then the block (room 100) by reward
    assert [float(items.reward[i]) for i in chosen] == [6.0, 5.0, 4.0]
    assert writes == {2: (0,), 3: (0,), 4: (0,), 5: (0,), 6: ()}


def test_fee_history_keeps_the_last_blocks_sorted_by_account():
    history = FeeHistory(blocks=2)
    assert list(history.recent()) == []
    for prices in ([5, 1], [3], [4, 2]):
        history.record(None, np.array(prices))
    history.record("pool", np.array([9]))
    assert list(history.recent()) == [2, 3, 4] and list(history.recent("pool")) == [9]
