"""The chain's landing figures per preset and fee level: the domain model, not the running engine.

    python -m loadtest.bench_chain [--seeds 3] [--orders 30] [--mev-rate 0.5]

What runs is the chain the engine runs (``sim.chain`` with the presets of
``configs/chain.yaml``, the searcher planning sandwiches with the real pool
math of ``sim.sandwich_plans``, every landed swap executed in block order on
a real Raydium constant-product pool by ``sim.chain_swaps``), driven slot by
slot without Ray, PostgreSQL or a clock: the engine's own chain actor waits
out real 400 ms slots, and an expiry takes a minute, so the table would take
hours through it. Orders of 1 SOL (and back, 150 USDC) with 100 bps of
slippage, one every 0.4 s, the levels in turn, after a minute of warm-up;
each run twice: unprotected, and protected (a 10,000-lamport Jito tip).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.chain_config import load_chain_config
from sim.chain import Chain, Transaction
from sim.chain_fees import FEE_LEVELS, priority_fee_for
from sim.chain_swaps import BlockExecution, SwapIntent, SwapLeg
from sim.mev import MevParams, SandwichSearcher
from sim.pools import CpmmPool
from sim.sandwich_plans import sandwich_port
from sim.tokens import SOL, USDC

POOL = "raydium:SOL-USDC"
CU_LIMIT = 140_000
TIP = 10_000


@dataclass
class Outcome:
    level: str
    sent_slot: int
    landed_slot: int | None = None
    sandwiched: bool = False
    fees: int = 0
    expired: bool = False


def _order(chain: Chain, block: BlockExecution, n: int, level: str, protect: bool, cap: int) -> Transaction:
    sell_sol = n % 2 == 0
    token, amount = ("SOL", SOL.one) if sell_sol else ("USDC", 150 * USDC.one)
    expected = block.pools[POOL].quote_exact_in(token, amount, 0.0).amount_out
    min_out = expected * 9_900 // 10_000
    price = priority_fee_for(level, chain.recent_fees(), cu_limit=CU_LIMIT, max_priority_fee_lamports=cap)
    recent = chain.latest_blockhash()
    intent = SwapIntent(f"order-{n}", (SwapLeg(POOL, token, amount),), min_out)
    return Transaction(f"tx-{n}", recent.blockhash, recent.last_valid_block_height, intent, min_out,
                       cu_limit=CU_LIMIT, cu_price=price, jito_tip_lamports=TIP if protect else 0,
                       accounts=(POOL,))  # fmt: skip


def run(preset: str, seed: int, orders_per_level: int, mev_rate: float, protect: bool) -> list[Outcome]:
    config = load_chain_config()
    pool = CpmmPool.at_price(POOL, SOL, USDC, price=150.0, value_y=50_000 * USDC.one)
    block = BlockExecution({POOL: pool}, {POOL: 0.0})
    searcher = SandwichSearcher(sandwich_port(lambda: block.pools, lambda: block.now),
                                MevParams(rate=mev_rate, min_profit_lamports=config.mev.min_profit_lamports),
                                seed=seed)  # fmt: skip
    chain = Chain(config.params(seed=seed, genesis_time=1_700_000_000.0, preset=preset), searcher=searcher)
    chain.advance_to(chain.now + 60.0)  # a minute of other traffic: recent fees to bid from
    cap = config.transactions.max_priority_fee_lamports
    outcomes: dict[str, Outcome] = {}
    total = orders_per_level * len(FEE_LEVELS)
    n = 0
    while n < total or chain.pending_count:
        if n < total:
            level = FEE_LEVELS[n % len(FEE_LEVELS)]
            tx = _order(chain, block, n, level, protect, cap)
            chain.submit(tx, chain.now)
            outcomes[tx.signature] = Outcome(level, chain.slot)
            n += 1
        block.applied.clear()
        produced = chain.next_slot(block)
        if produced is None:
            continue
        for item in produced.landed:
            outcome = outcomes.get(item.tx.signature)
            if outcome is not None:
                outcome.landed_slot, outcome.fees = produced.slot, item.fees.total_lamports
                outcome.sandwiched = item.role == "victim"
        for dropped in produced.dropped:
            if dropped.tx.signature in outcomes:
                outcomes[dropped.tx.signature].expired = True
    return list(outcomes.values())


def _row(preset: str, level: str, plain: Sequence[Outcome], protected: Sequence[Outcome]) -> str:
    landed = [o for o in plain if o.landed_slot is not None]
    slots = [o.landed_slot - o.sent_slot + 1 for o in landed]  # type: ignore[operator]
    p50, p90 = (f"{np.percentile(slots, q):.0f}" if slots else "-" for q in (50, 90))
    share = lambda part, whole: f"{100 * len(part) / max(len(whole), 1):.0f}%"  # noqa: E731
    fees = f"{np.mean([o.fees for o in landed]):,.0f}" if landed else "-"
    return (f"| {preset} | {level} | {share(landed, plain)} | {p50} | {p90} | "
            f"{share([o for o in plain if o.expired], plain)} | {share([o for o in plain if o.sandwiched], plain)} | "
            f"{share([o for o in protected if o.sandwiched], protected)} | "
            f"{share([o for o in protected if o.landed_slot is not None], protected)} | {fees} |")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--orders", type=int, default=30, help="orders per fee level and seed")
    parser.add_argument("--mev-rate", type=float, default=0.5, help="share of waiting transactions watched")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"domain model: sim.chain + sim.chain_swaps + sim.sandwich_plans; seeds 0..{args.seeds - 1}, "
          f"{args.orders} orders per level and seed, mev.rate {args.mev_rate}\n")  # fmt: skip
    print("| preset | fee level | landed | slots p50 | slots p90 | expired | sandwiched | sandwiched (protected) "
          "| landed (protected) | fees per landed order (lamports) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for preset in ("calm", "busy", "congested"):
        plain: list[Outcome] = []
        protected: list[Outcome] = []
        for seed in range(args.seeds):
            plain += run(preset, seed, args.orders, args.mev_rate, protect=False)
            protected += run(preset, seed, args.orders, args.mev_rate, protect=True)
        for level in FEE_LEVELS:
            print(_row(preset, level, [o for o in plain if o.level == level],
                       [o for o in protected if o.level == level]))  # fmt: skip
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
