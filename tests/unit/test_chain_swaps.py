"""Swaps as chain transactions executed in a block on copies of the pools, and the searcher's pool math."""

from __future__ import annotations

from sim.chain import Transaction
from sim.chain_swaps import BlockExecution, SwapIntent, SwapLeg
from sim.pools import CpmmPool
from sim.sandwich_plans import plan_sandwich
from sim.tokens import SOL, USDC

POOL = "raydium:SOL-USDC"


def pool() -> CpmmPool:
    return CpmmPool.at_price(POOL, SOL, USDC, price=150.0, value_y=100_000 * USDC.one)


def tx(name: str, amount_sol: float, min_out: int = 0, order: str | None = "o") -> Transaction:
    intent = SwapIntent(order or None, (SwapLeg(POOL, "SOL", int(amount_sol * SOL.one)),), min_out)
    return Transaction(name, "h", 150, intent, min_out, accounts=(POOL,))


def test_transactions_execute_in_block_order_each_on_the_pool_its_predecessors_left():
    block = BlockExecution({POOL: pool()}, {POOL: 0.0})
    expected = pool().quote_exact_in("SOL", SOL.one).amount_out
    results = block([tx("a", 1), tx("b", 1)], False)
    assert all(r.ok for r in results) and [a.tx.signature for a in block.applied] == ["a", "b"]
    first, second = (a.legs[0].amount_out for a in block.applied)
    assert first == expected and second < first


def test_a_failing_swap_names_the_programs_error_moves_nothing_and_a_failing_bundle_rolls_back_whole():
    block = BlockExecution({POOL: pool()}, {POOL: 0.0})
    before = block.pools[POOL].reserves()
    (failed,) = block([tx("greedy", 1, min_out=10**12)], False)
    assert not failed.ok and failed.error == "ExceededSlippage (6005)" and block.pools[POOL].reserves() == before
    results = block([tx("front", 5, order=None), tx("victim", 1, min_out=10**12)], True)
    assert [r.ok for r in results] == [True, False]
    assert block.pools[POOL].reserves() == before and block.applied == []


def test_a_sandwich_plan_leaves_the_victim_its_minimum_and_changes_no_pool():
    p = pool()
    expected = p.quote_exact_in("SOL", 20 * SOL.one).amount_out
    victim = tx("v", 20, min_out=expected * 9_700 // 10_000)
    before = p.reserves()
    plan = plan_sandwich({POOL: p}, {POOL: 0.0}, victim)
    assert plan is not None and plan.profit_lamports > 0 and p.reserves() == before
    block = BlockExecution({POOL: pool()}, {POOL: 0.0})
    front, back = (Transaction(n, "h", 150, i, accounts=(POOL,)) for n, i in (("f", plan.front_intent),
                                                                                ("b", plan.back_intent)))  # fmt: skip
    assert all(r.ok for r in block([front, victim, back], True))
    assert plan_sandwich({POOL: p}, {POOL: 0.0}, tx("tight", 1, min_out=p.quote_exact_in("SOL", SOL.one).amount_out)) is None
