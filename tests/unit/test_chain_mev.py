"""sim.mev on sim.chain with a real constant-product pool: sandwiches, protection, and what is conserved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sim.chain import Block, Chain, ChainParams, Execution, Transaction, TxStatus
from sim.chain_fees import BASE_FEE_LAMPORTS, Congestion
from sim.mev import Bundle, BundleKind, MevParams, SandwichPlan, SandwichSearcher, auction, searcher_signature
from sim.pools import CpmmPool, InsufficientLiquidity, SlippageExceeded
from sim.tokens import SOL, USDC

FAST = settings(max_examples=25, derandomize=True, deadline=None)
QUIET = Congestion("quiet", load=0.0, bundles_per_slot=0.0, hot_load=0.0)
POOL = "raydium:SOL-USDC"
START = {"SOL": 10_000 * SOL.one, "USDC": 10_000_000 * USDC.one}


@dataclass(frozen=True)
class Swap:
    """The intent a transaction carries here: sell ``amount_in`` of ``token_in`` on the pool."""

    owner: str
    token_in: str
    amount_in: int
    min_out: int = 0


def a_pool() -> CpmmPool:
    return CpmmPool.at_price(POOL, SOL, USDC, price=150.0, value_y=100_000 * USDC.one)


@dataclass
class World:
    """One pool, everybody's wallets and the fees paid: every base unit is somewhere."""

    pool: CpmmPool = field(default_factory=a_pool)
    wallets: dict[str, dict[str, int]] = field(default_factory=dict)
    fees_paid: int = 0  # lamports, to the leader and the burn
    failed_moves: list[tuple[dict[str, int], dict[str, int]]] = field(default_factory=list)

    def wallet(self, owner: str) -> dict[str, int]:
        return self.wallets.setdefault(owner, dict(START))

    def totals(self) -> dict[str, int]:
        out = {"SOL": self.fees_paid, "USDC": 0}
        for holder in [self.pool.reserves(), *self.wallets.values()]:
            for symbol, amount in holder.items():
                out[symbol] += amount
        return out

    def _swap(self, swap: Swap) -> Execution:
        before = self.pool.reserves()
        if self.wallet(swap.owner)[swap.token_in] < swap.amount_in:
            return Execution(ok=False, error="InsufficientFunds")
        try:
            quote = self.pool.swap_exact_in(swap.token_in, swap.amount_in, swap.min_out)
        except (SlippageExceeded, InsufficientLiquidity) as exc:
            self.failed_moves.append((before, self.pool.reserves()))
            return Execution(ok=False, error="ExceededSlippage" if isinstance(exc, SlippageExceeded) else exc.code)
        wallet = self.wallet(swap.owner)
        wallet[swap.token_in] -= quote.amount_in
        wallet[quote.token_out] += quote.amount_out
        return Execution(cu_consumed=30_000)

    def execute(self, txs: Sequence[Transaction], atomic: bool) -> list[Execution]:
        saved = (self.pool.reserve_x, self.pool.reserve_y, {o: dict(w) for o, w in self.wallets.items()})
        results = [self._swap(tx.intent) for tx in txs]  # type: ignore[arg-type]
        if atomic and not all(r.ok for r in results):
            self.pool.reserve_x, self.pool.reserve_y, self.wallets = saved
        return results

    def pay_fees(self, blocks: Sequence[Block]) -> None:
        for block in blocks:
            for item in block.landed:
                self.wallet(item.tx.intent.owner)["SOL"] -= item.fees.total_lamports  # type: ignore[union-attr]
                self.fees_paid += item.fees.total_lamports


class CpmmSandwiches:
    """The searcher's pool math: the largest front-run the victim's minimum out allows, then sell it back."""

    def __init__(self, world: World) -> None:
        self.world = world

    def _after(self, victim: Swap, front: int) -> tuple[int, int] | None:
        """(what the front-run buys, the searcher's profit in token_in); None: the victim would fail."""
        scratch = CpmmPool.restore(self.world.pool.snapshot())
        try:
            bought = scratch.swap_exact_in(victim.token_in, front).amount_out
        except InsufficientLiquidity:  # too small to buy anything: harmless, and worthless
            return 0, -front
        try:
            scratch.swap_exact_in(victim.token_in, victim.amount_in, victim.min_out)
        except SlippageExceeded:
            return None
        try:
            back = scratch.swap_exact_in(scratch.other(victim.token_in).symbol, bought).amount_out
        except InsufficientLiquidity:
            back = 0
        return bought, back - front

    def __call__(self, tx: Transaction) -> SandwichPlan | None:
        victim: Swap = tx.intent  # type: ignore[assignment]
        lo, hi = 0, self.world.pool.reserves()[victim.token_in] // 4
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self._after(victim, mid) is not None else (lo, mid)
        if lo < 1_000:
            return None
        after = self._after(victim, lo)
        assert after is not None
        bought, profit = after
        if victim.token_in == "USDC":  # in lamports, at the pool's price
            profit = profit * self.world.pool.reserve_x // self.world.pool.reserve_y
        if profit <= 0:
            return None
        token_out = self.world.pool.other(victim.token_in).symbol
        return SandwichPlan(Swap("searcher", victim.token_in, lo), Swap("searcher", token_out, bought), profit)


class Greedy(CpmmSandwiches):
    """A searcher whose front-run is too large: the victim fails, so its bundle must revert."""

    def __call__(self, tx: Transaction) -> SandwichPlan | None:
        victim: Swap = tx.intent  # type: ignore[assignment]
        token_out = self.world.pool.other(victim.token_in).symbol
        front = Swap("searcher", victim.token_in, victim.amount_in * 5)
        return SandwichPlan(front, Swap("searcher", token_out, 1), 10**9)


def run(world: World, chain: Chain, limit_slots: int = 40) -> list[Block]:
    blocks = []
    for _ in range(limit_slots):
        block = chain.next_slot(world.execute)
        if block is not None:
            world.pay_fees([block])
            blocks.append(block)
        if not chain.pending_count:
            break
    return blocks


def setup(rate: float = 1.0, min_profit: int = 10_000, greedy: bool = False) -> tuple[World, Chain, SandwichSearcher]:
    world = World()
    world.wallet("searcher")
    port = (Greedy if greedy else CpmmSandwiches)(world)
    searcher = SandwichSearcher(port, MevParams(rate=rate, min_profit_lamports=min_profit), seed=5)
    chain = Chain(ChainParams(seed=2, skip_rate=0.0, jito_share=1.0, congestion=QUIET), searcher=searcher)
    return world, chain, searcher


def victim_tx(world: World, chain: Chain, name: str, sol: float, slippage_bps: int, *, tip: int = 0) -> Transaction:
    amount = int(sol * SOL.one)
    expected = world.pool.quote_exact_in("SOL", amount).amount_out
    recent = chain.latest_blockhash()
    swap = Swap(name, "SOL", amount, expected * (10_000 - slippage_bps) // 10_000)
    world.wallet(name)
    return Transaction(name, recent.blockhash, recent.last_valid_block_height, swap, swap.min_out,
                       cu_limit=140_000, cu_price=10_000, jito_tip_lamports=tip, accounts=(POOL,))  # fmt: skip


# --------------------------------------------------------------------------- the rules


def test_a_loose_slippage_bound_is_sandwiched_front_victim_back_adjacent_in_one_block():
    world, chain, _ = setup()
    tx = victim_tx(world, chain, "alice", 20, 300)
    chain.submit(tx, chain.now)
    blocks = run(world, chain)
    (block,) = [b for b in blocks if b.landed]
    roles = [(item.role, item.position, item.bundle_id) for item in block.landed]
    bundle = f"sandwich:alice:{block.slot}"
    assert roles == [("front_run", 0, bundle), ("victim", 1, bundle), ("back_run", 2, bundle)]
    assert block.landed[0].tx.signature == searcher_signature("alice", block.slot, "front")
    assert block.sandwiched[0].tx.signature == "alice" and chain.stats["sandwiched"] == 1
    alice = world.wallets["alice"]
    assert alice["USDC"] - START["USDC"] >= tx.min_out  # still within her bound, at its edge
    back = block.landed[2]
    assert back.fees.tip_lamports > 0 and block.landed[0].fees.tip_lamports == 0
    assert block.landed[1].fees.tip_lamports == 0 and block.landed[1].sends == 1 and back.sends == 0
    searcher = world.wallets["searcher"]
    assert searcher["SOL"] > START["SOL"] and searcher["USDC"] == START["USDC"]  # it made money, after costs


@pytest.mark.parametrize(
    ("sol", "slippage_bps"),
    [(20, 0),  # no room at all: any front-run makes the victim fail
     (0.2, 100)],  # room, but the victim moves the price less than the searcher's two pool fees cost
)  # fmt: skip
def test_no_room_or_no_profit_means_no_sandwich(sol: float, slippage_bps: int):
    world, chain, searcher = setup()
    chain.submit(victim_tx(world, chain, "bob", sol, slippage_bps), chain.now)
    blocks = run(world, chain)
    assert searcher.attempts == 1 and chain.stats["sandwiched"] == 0
    (landed,) = [item for b in blocks for item in b.landed]
    assert landed.tx.signature == "bob" and landed.role is None and landed.ok


def test_a_tight_bound_on_a_large_trade_still_leaves_room_the_trade_itself_pays_for():
    world, chain, _ = setup()
    chain.submit(victim_tx(world, chain, "big", 20, 5), chain.now)  # 20 SOL moves this pool ~6 %
    run(world, chain)
    assert chain.stats["sandwiched"] == 1


def test_a_protected_bundle_is_never_sandwiched_however_loose_its_bound():
    world, chain, searcher = setup()
    chain.submit(victim_tx(world, chain, "carol", 20, 5_000, tip=10_000), chain.now)
    blocks = run(world, chain)
    (landed,) = [item for b in blocks for item in b.landed]
    assert landed.tx.signature == "carol" and landed.role is None and landed.bundle_id == "carol"
    assert landed.fees.tip_lamports == 10_000 and searcher.attempts == 0
    assert searcher.sandwich(landed.tx, 0) is None  # even when shown to it


def test_no_searcher_watching_means_no_sandwich():
    world, chain, searcher = setup(rate=0.0)
    chain.submit(victim_tx(world, chain, "dan", 20, 3_000), chain.now)
    run(world, chain)
    assert searcher.attempts == 0 and chain.stats["sandwiched"] == 0 and chain.status("dan") is TxStatus.LANDED


def test_a_sandwich_that_would_make_its_victim_fail_reverts_whole_and_the_victim_lands_alone():
    world, chain, _ = setup(greedy=True)
    chain.submit(victim_tx(world, chain, "erin", 5, 100), chain.now)
    before = world.totals()
    blocks = run(world, chain)
    landed = [item for b in blocks for item in b.landed]
    assert [(item.tx.signature, item.role) for item in landed] == [("erin", None)]
    assert landed[0].ok and world.wallets["searcher"] == START and world.totals() == before


def test_a_sandwich_must_keep_the_minimum_profit_after_its_fees_and_tip():
    def plan(tx: Transaction) -> SandwichPlan:
        return SandwichPlan("front", "back", 100_000)

    victim = Transaction("v", "b", 150, min_out=1)
    # costs: 2 base fees + a 50,000 tip = 60,000; 40,000 left
    assert SandwichSearcher(plan, MevParams(rate=1.0, min_profit_lamports=40_000)).sandwich(victim, 1) is not None
    assert SandwichSearcher(plan, MevParams(rate=1.0, min_profit_lamports=40_001)).sandwich(victim, 1) is None


def test_the_searcher_decides_once_whether_it_watches_a_transaction_and_forgets_old_ones():
    searcher = SandwichSearcher(lambda tx: None, MevParams(rate=0.5), seed=1)
    searcher.KEEP_WATCHED = 10
    first = [searcher.watches(f"t{i}") for i in range(10)]
    assert [searcher.watches(f"t{i}") for i in range(10)] == first and 0 < sum(first) < 10
    searcher.watches("t10")
    assert "t0" not in searcher._watched and len(searcher._watched) == 10


def test_the_searchers_costs_and_bid():
    params = MevParams(rate=1.0, cu_limit=150_000, cu_price=10_000, tip_share=0.5)
    assert params.costs_lamports(tip=1_000) == 2 * (BASE_FEE_LAMPORTS + 1_500) + 1_000
    assert params.tip_for(100) == 1_000 and params.tip_for(1_000_000) == 500_000
    with pytest.raises(ValueError):
        MevParams(rate=2.0)
    with pytest.raises(ValueError):
        MevParams(min_profit_lamports=-1)


def test_the_bundle_auction_takes_the_highest_tips_that_fit():
    def bundle(name: str, tip: int, cu: int) -> Bundle:
        return Bundle(name, (Transaction(name, "b", 150, cu_limit=cu),), tip, BundleKind.PROTECTED)

    ours = [bundle("low", 2_000, 100_000), bundle("high", 9_000, 300_000)]
    order = auction(ours, np.array([5_000, 9_000]), np.array([200_000, 250_000]), room=650_000)
    assert order == [1, 3, 0]  # high (ours first on a tie), the other's 9,000; its 5,000 no longer fits


# --------------------------------------------------------------------------- properties


orders = st.lists(
    st.tuples(st.floats(0.05, 60.0), st.integers(0, 2_000), st.booleans(), st.booleans()), min_size=1, max_size=6
)


@FAST
@given(orders=orders, rate=st.sampled_from([0.0, 0.5, 1.0]), min_profit=st.sampled_from([0, 10_000, 10**7]))
def test_tokens_are_conserved_across_sandwiches_and_failed_transactions(orders, rate, min_profit):
    world, chain, _ = setup(rate=rate, min_profit=min_profit)
    for i, (sol, slippage, protected, sells_usdc) in enumerate(orders):
        tx = victim_tx(world, chain, f"v{i}", sol, slippage, tip=10_000 if protected else 0)
        if sells_usdc:  # the other direction, at the same bound
            amount = int(sol * 150 * USDC.one)
            expected = world.pool.quote_exact_in("USDC", amount).amount_out
            swap = Swap(tx.signature, "USDC", amount, expected * (10_000 - slippage) // 10_000)
            tx = Transaction(tx.signature, tx.blockhash, tx.last_valid_block_height, swap, swap.min_out,
                             cu_limit=140_000, cu_price=10_000, jito_tip_lamports=tx.jito_tip_lamports,
                             accounts=(POOL,))  # fmt: skip
        chain.submit(tx, chain.now)
    before = world.totals()
    blocks = run(world, chain)
    assert chain.pending_count == 0
    assert world.totals() == before
    sandwiched = [item for b in blocks for item in b.landed if item.role == "victim"]
    assert all(not item.tx.protected for item in sandwiched)
    event(f"sandwiched: {bool(sandwiched)}")
    event(f"failed on chain: {any(not item.ok for b in blocks for item in b.landed)}")
    for block in blocks:
        for i, item in enumerate(block.landed):
            if item.role == "front_run":
                assert [x.role for x in block.landed[i : i + 3]] == ["front_run", "victim", "back_run"]


@FAST
@given(sol=st.floats(0.01, 80.0), cu_price=st.integers(0, 5_000_000), excess=st.integers(1, 10**6))
def test_a_failed_transaction_moves_no_pool_but_pays_its_fees(sol, cu_price, excess):
    world, chain, _ = setup(rate=0.0)
    world.wallet("greedy")
    amount = int(sol * SOL.one)
    impossible = world.pool.quote_exact_in("SOL", amount).amount_out + excess
    recent = chain.latest_blockhash()
    swap = Swap("greedy", "SOL", amount, impossible)
    tx = Transaction("greedy", recent.blockhash, recent.last_valid_block_height, swap, impossible,
                     cu_limit=140_000, cu_price=cu_price)  # fmt: skip
    reserves, totals = world.pool.reserves(), world.totals()
    chain.submit(tx, chain.now)
    (item,) = [item for b in run(world, chain) for item in b.landed]
    assert not item.ok and item.error == "ExceededSlippage" and chain.status("greedy") is TxStatus.FAILED
    assert world.pool.reserves() == reserves and world.failed_moves == [(reserves, reserves)]
    paid = BASE_FEE_LAMPORTS + -(-140_000 * cu_price // 1_000_000)
    assert item.fees.total_lamports == paid
    assert world.wallets["greedy"] == {"SOL": START["SOL"] - paid, "USDC": START["USDC"]}
    assert world.totals() == totals
