"""Raydium CPMM's protocol and fund shares of the trade fee, against the program's formulas.

``Program`` below is written from raydium-cp-swap (``curve/fees.rs``, ``curve/calculator.rs``,
``instructions/swap_base_input.rs``, ``states/pool.rs``), not from our pool: it keeps the vaults
and the owed fees as the program's accounts do and prices with the vaults less what is owed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import PoolSpec, build_pool
from sim.pools import CpmmPool, InsufficientLiquidity, restore_pool
from sim.pools.cpmm_fees import FeeShares
from sim.tokens import SOL, USDC, TokenRegistry

FAST = settings(max_examples=12, derandomize=True, deadline=None)
RATE_DEN = 1_000_000
TRADE_FEE_RATE, PROTOCOL_FEE_RATE, FUND_FEE_RATE = 2_500, 120_000, 40_000  # Raydium's standard config
STANDARD = FeeShares(protocol=PROTOCOL_FEE_RATE, fund=FUND_FEE_RATE)


@dataclass
class Program:
    """A pool's accounts as raydium-cp-swap keeps them: token 0 is SOL, token 1 USDC."""

    vaults: list[int]
    protocol_fees: list[int]
    fund_fees: list[int]

    def swap_base_input(self, zero_for_one: bool, amount_in: int) -> tuple[int, int]:
        """(amount out, trade fee); the accounts move as the instruction moves them."""
        i, o = (0, 1) if zero_for_one else (1, 0)
        owed = [self.protocol_fees[k] + self.fund_fees[k] for k in (0, 1)]
        total_in, total_out = self.vaults[i] - owed[i], self.vaults[o] - owed[o]  # vault_amount_without_fee
        trade_fee = -(-amount_in * TRADE_FEE_RATE // RATE_DEN)  # Fees::trading_fee: ceil
        protocol_fee = trade_fee * PROTOCOL_FEE_RATE // RATE_DEN  # Fees::protocol_fee: floor
        fund_fee = trade_fee * FUND_FEE_RATE // RATE_DEN  # Fees::fund_fee: floor
        less_fees = amount_in - trade_fee
        amount_out = less_fees * total_out // (total_in + less_fees)  # swap_base_input_without_fees
        self.vaults[i] += amount_in  # the whole input is transferred in
        self.vaults[o] -= amount_out
        self.protocol_fees[i] += protocol_fee  # update_fees
        self.fund_fees[i] += fund_fee
        return amount_out, trade_fee


def standard_pool(shares: FeeShares = STANDARD) -> CpmmPool:
    return CpmmPool("ray", SOL, USDC, 1_000 * SOL.one, 150_000 * USDC.one, fee_num=TRADE_FEE_RATE,
                    fee_den=RATE_DEN, shares=shares)  # fmt: skip


def owed(pool: CpmmPool) -> tuple[int, int, int, int]:
    return pool.protocol_fees_x, pool.protocol_fees_y, pool.fund_fees_x, pool.fund_fees_y


def random_swaps(seed: int, n: int) -> list[tuple[bool, float]]:
    rng = random.Random(seed)
    return [(rng.random() < 0.5, 10 ** rng.uniform(-7, -1.3)) for _ in range(n)]


def amount(pool: CpmmPool, x_in: bool, share: float) -> int:
    return max(1, int((pool.reserve_x if x_in else pool.reserve_y) * share))


# -- the split --------------------------------------------------------------------------------------


def test_one_sol_in_owes_twelve_and_four_percent_of_the_fee():
    pool = standard_pool()
    quote = pool.swap_exact_in("SOL", SOL.one)
    assert quote.fee == 2_500_000 and quote.amount_out == 149_475_897  # the first swap prices as before
    assert owed(pool) == (300_000, 0, 100_000, 0)
    assert pool.owed_fees() == {"SOL": 400_000, "USDC": 0}
    assert pool.reserve_x == 1_001 * SOL.one - 400_000  # priced with: the vault less what it owes
    assert pool.reserves() == {"SOL": 1_001 * SOL.one, "USDC": 150_000 * USDC.one - 149_475_897}
    # The next swap prices on a smaller SOL reserve than a pool keeping the whole fee: SOL buys more USDC
    # there, USDC buys less SOL.
    kept_all = standard_pool(FeeShares())
    kept_all.swap_exact_in("SOL", SOL.one)
    for token, amount_in, better in (("SOL", SOL.one, True), ("USDC", 150 * USDC.one, False)):
        ours, theirs = (p.quote_exact_in(token, amount_in).amount_out for p in (pool, kept_all))
        assert (ours > theirs) if better else (ours < theirs)


def test_each_share_is_rounded_down_from_the_whole_fee():
    assert STANDARD.split(2_500_000) == (300_000, 100_000)
    assert STANDARD.split(24) == (2, 0)  # 2.88 and 0.96
    assert STANDARD.split(25) == (3, 1)  # 3.0 and 1.0
    assert FeeShares(protocol=333_333, fund=333_333).split(10) == (3, 3)  # each from the fee, not the rest


@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_standard_config_matches_the_program_over_500_swaps(seed):
    pool = standard_pool()
    program = Program([pool.reserve_x, pool.reserve_y], [0, 0], [0, 0])
    for x_in, share in random_swaps(seed, 500):
        token = "SOL" if x_in else "USDC"
        before = owed(pool)
        quote = pool.swap_exact_in(token, amount(pool, x_in, share))
        assert (quote.amount_out, quote.fee) == program.swap_base_input(x_in, quote.amount_in)
        protocol, fund = quote.fee * PROTOCOL_FEE_RATE // RATE_DEN, quote.fee * FUND_FEE_RATE // RATE_DEN
        grew = [after - was for after, was in zip(owed(pool), before)]
        assert grew == ([protocol, 0, fund, 0] if x_in else [0, protocol, 0, fund])
        assert owed(pool) == (program.protocol_fees[0], program.protocol_fees[1], program.fund_fees[0],
                              program.fund_fees[1])  # fmt: skip
        assert pool.reserves() == {"SOL": program.vaults[0], "USDC": program.vaults[1]}


# -- no shares: exactly as before -------------------------------------------------------------------


def before_shares(x: int, y: int, x_in: bool, amount_in: int) -> tuple[int, int, int, int]:
    """The pool's rule before the shares: the whole input into the reserve. (out, fee, x, y)."""
    fee = -(-amount_in * 25 // 10_000)
    r_in, r_out = (x, y) if x_in else (y, x)
    out = r_out * (amount_in - fee) // (r_in + amount_in - fee)
    return (out, fee, x + amount_in, y - out) if x_in else (out, fee, x - out, y + amount_in)


@FAST
@given(swaps=st.lists(st.tuples(st.booleans(), st.floats(1e-9, 0.3)), min_size=1, max_size=60))
def test_without_shares_every_swap_is_exactly_as_before(swaps):
    pool = CpmmPool("ray", SOL, USDC, 1_000 * SOL.one, 150_000 * USDC.one)
    x, y = pool.reserve_x, pool.reserve_y
    for x_in, share in swaps:
        amount_in = amount(pool, x_in, share)
        try:
            quote = pool.swap_exact_in("SOL" if x_in else "USDC", amount_in)
        except InsufficientLiquidity:
            continue
        out, fee, x, y = before_shares(x, y, x_in, amount_in)
        assert (quote.amount_out, quote.fee) == (out, fee)
        assert (pool.reserve_x, pool.reserve_y) == (x, y) and pool.reserves() == {"SOL": x, "USDC": y}
        assert owed(pool) == (0, 0, 0, 0)


# -- snapshots and config ---------------------------------------------------------------------------


def test_snapshot_keeps_the_shares_and_what_is_owed():
    pool = standard_pool()
    for x_in, share in random_swaps(7, 40):
        pool.swap_exact_in("SOL" if x_in else "USDC", amount(pool, x_in, share))
    again = restore_pool(json.loads(json.dumps(pool.snapshot())))
    assert isinstance(again, CpmmPool) and again.snapshot() == pool.snapshot()
    assert again.shares == STANDARD and owed(again) == owed(pool) and min(owed(pool)) > 0
    assert again.swap_exact_in("USDC", 777 * USDC.one) == pool.swap_exact_in("USDC", 777 * USDC.one)


def test_a_snapshot_from_before_the_shares_restores_with_none():
    pool = CpmmPool("ray", SOL, USDC, 1_000 * SOL.one, 150_000 * USDC.one)
    old = {key: value for key, value in pool.snapshot().items() if "fee_share" not in key and "fees_" not in key}
    assert set(pool.snapshot()) - set(old) == {"protocol_fee_share", "fund_fee_share", "protocol_fees_x",
                                               "protocol_fees_y", "fund_fees_x", "fund_fees_y"}  # fmt: skip
    again = restore_pool(old)
    assert isinstance(again, CpmmPool) and again.shares == FeeShares() and owed(again) == (0, 0, 0, 0)
    assert again.snapshot() == pool.snapshot()


REGISTRY = TokenRegistry([SOL, USDC])
PRICES = {"SOL": 150.0, "USDC": 1.0}


def spec(**fields: object) -> PoolSpec:
    return PoolSpec.model_validate({"id": "raydium:SOL-USDC", "dex": "raydium", "kind": "cpmm", "base": "SOL",
                                    "quote": "USDC", "fee_bps": 25, "tvl_usd": 100_000, **fields})  # fmt: skip


def test_a_market_config_sets_the_shares():
    pool = build_pool(spec(protocol_fee_share=120_000, fund_fee_share=40_000), REGISTRY, PRICES)
    assert isinstance(pool, CpmmPool) and pool.shares == STANDARD and (pool.fee_num, pool.fee_den) == (2_500, RATE_DEN)
    plain = build_pool(spec(), REGISTRY, PRICES)
    assert isinstance(plain, CpmmPool) and plain.shares == FeeShares()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"protocol_fee_share": -1}, "protocol_fee_share must be an integer from 0 to 1000000"),
        ({"fund_fee_share": 1_000_001}, "fund_fee_share must be an integer from 0 to 1000000"),
        ({"protocol_fee_share": 0.12}, "protocol_fee_share must be an integer"),
        ({"fund_fee_share": True}, "fund_fee_share must be an integer"),
        ({"protocol_fee_share": 700_000, "fund_fee_share": 300_001}, "must not exceed 1000000"),
        ({"bin_step": 10}, "cpmm pools take no bin_step (their own fields: protocol_fee_share, fund_fee_share)"),
    ],
)
def test_a_market_config_refuses_shares_that_cannot_be(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec(**fields)


def test_a_dlmm_pool_takes_no_cpmm_shares():
    with pytest.raises(ValueError, match="dlmm pools take no protocol_fee_share"):
        PoolSpec.model_validate({"id": "meteora:SOL-USDC", "dex": "meteora", "kind": "dlmm", "base": "SOL",
                                 "quote": "USDC", "fee_bps": 20, "tvl_usd": 100_000, "bin_step": 10,
                                 "bins_each_side": 5, "protocol_fee_share": 1})  # fmt: skip
