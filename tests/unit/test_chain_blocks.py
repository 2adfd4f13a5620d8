"""sim.chain: slots and blocks, blockhash expiry, sends and re-sends, block packing, bundles (no Ray, no clock)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from sim.chain import (
    AlreadyProcessed,
    Block,
    BlockhashNotFound,
    Chain,
    ChainParams,
    Execution,
    RpcQueueFull,
    Transaction,
    TxStatus,
)
from sim.chain_fees import BASE_FEE_LAMPORTS, Congestion

QUIET = Congestion("quiet", load=0.0, bundles_per_slot=0.0, hot_load=0.0)
BUSY = Congestion("busy", load=0.95, wave_sigma=0.25, fee_scale=1.0, ingress_loss=0.15, bundles_per_slot=20,
                  hot_load=1.75, hot_fee_scale=2.0)  # fmt: skip


def chain_of(*, seed: int = 1, skip_rate: float = 0.0, congestion: Congestion = QUIET, **params: object) -> Chain:
    if "block_cu_limit" in params:
        params.setdefault("bundle_cu_limit", params["block_cu_limit"])
    return Chain(ChainParams(seed=seed, skip_rate=skip_rate, congestion=congestion, **params))  # type: ignore[arg-type]


def tx_on(chain: Chain, signature: str, **fields: object) -> Transaction:
    """A transaction signed with the chain's latest blockhash."""
    recent = chain.latest_blockhash()
    return Transaction(signature, recent.blockhash, recent.last_valid_block_height, **fields)  # type: ignore[arg-type]


def run_until_done(chain: Chain, limit_s: float = 120.0) -> list[Block]:
    blocks: list[Block] = []
    end = chain.now + limit_s
    while chain.pending_count and chain.now < end:
        block = chain.next_slot()
        if block is not None:
            blocks.append(block)
    return blocks


def landed_signatures(blocks: Sequence[Block]) -> list[str]:
    return [item.tx.signature for block in blocks for item in block.landed]


# --------------------------------------------------------------------------- slots, height, time


def test_slots_follow_the_given_clock_and_a_skipped_slot_makes_no_block():
    chain = chain_of(skip_rate=0.3)
    start = chain.now
    blocks = chain.advance_to(start + 40.0)  # 100 slots of 0.4 s
    assert chain.slot == 100 and chain.now == pytest.approx(start + 40.0)
    assert len(blocks) + chain.stats["skipped_slots"] == 100
    assert 10 < chain.stats["skipped_slots"] < 50
    assert [block.height for block in blocks] == list(range(1, len(blocks) + 1))
    assert all(a.slot < b.slot for a, b in zip(blocks, blocks[1:]))
    assert all(block.block_time == int(chain.slot_start(block.slot + 1)) for block in blocks)
    assert chain.advance_to(start + 40.1) == [] and chain.slot == 100  # slot 100 has not ended yet


def test_a_slot_is_found_from_a_time_and_the_first_slot_can_be_mainnet_like():
    chain = Chain(ChainParams(first_slot=250_000_000, genesis_time=1_000.0, congestion=QUIET))
    assert chain.slot == 250_000_000 and chain.slot_at(1_000.0) == 250_000_000
    assert chain.slot_at(1_000.79) == 250_000_001 and chain.slot_start(250_000_002) == pytest.approx(1_000.8)


def test_the_same_seed_gives_the_same_chain_and_another_seed_another():
    def history(seed: int) -> list[tuple[object, ...]]:
        chain = chain_of(seed=seed, skip_rate=0.05, congestion=BUSY)
        rows: list[tuple[object, ...]] = []
        t = chain.now
        for i in range(40):
            t += 0.3
            rows += [(b.slot, b.height, b.blockhash, b.tx_count, b.cu_used, tuple((x.tx.signature, x.position)
                     for x in b.landed)) for b in chain.advance_to(t)]  # fmt: skip
            chain.submit(tx_on(chain, f"s{i}", cu_price=50_000 * i, accounts=("pool",)), t)
        rows += [(b.slot, tuple(x.tx.signature for x in b.landed)) for b in run_until_done(chain)]
        return rows

    assert history(7) == history(7)
    assert history(7) != history(8)


def test_an_idle_chain_fast_forwards_to_where_slot_by_slot_would_be():
    def ended(jump: bool) -> Chain:
        chain = chain_of(seed=4, skip_rate=0.05, congestion=Congestion("light", load=0.2, bundles_per_slot=1))
        chain.submit(tx_on(chain, "early", cu_price=10**7), chain.now)
        chain.advance_to(chain.now + 2.0)
        assert chain.pending_count == 0
        if jump:
            assert len(chain.advance_to(chain.now + 400.0)) == 150  # only the fee window's blocks are made
        else:
            for _ in range(1_000):
                chain.next_slot()
        return chain

    jumped, stepped = ended(True), ended(False)
    assert jumped.slot == stepped.slot and jumped.height == stepped.height
    assert jumped.latest_blockhash() == stepped.latest_blockhash() and jumped.load() == stepped.load()
    assert np.array_equal(jumped.recent_fees(), stepped.recent_fees()) and jumped.stats == stepped.stats


def test_commitment_goes_processed_confirmed_finalized():
    chain = chain_of()
    chain.submit(tx_on(chain, "a"), chain.now)
    block = chain.next_slot()
    assert block is not None and chain.commitment(block.height) == "processed"
    chain.next_slot()
    assert chain.commitment(block.height) == "confirmed"
    for _ in range(31):
        chain.next_slot()
    assert chain.commitment(block.height) == "finalized"
    assert chain.commitment(0) is None and chain.commitment(chain.height + 1) is None


# --------------------------------------------------------------------------- blockhash expiry


def test_a_blockhash_lasts_150_blocks_and_skipped_slots_do_not_count():
    # No Jito leader ever: a bundle waits until its blockhash expires.
    chain = chain_of(skip_rate=0.4, jito_share=0.0)
    chain.next_slot(), chain.next_slot()
    tx = tx_on(chain, "bundle", jito_tip_lamports=10_000)
    assert tx.last_valid_block_height == chain.height + 150
    chain.submit(tx, chain.now)
    first_slot = chain.slot
    blocks = run_until_done(chain, limit_s=200.0)
    expiry = blocks[-1]
    assert [d.tx.signature for d in expiry.dropped] == ["bundle"]
    assert expiry.dropped[0].status is TxStatus.EXPIRED and expiry.dropped[0].error == "BlockhashNotFound"
    assert expiry.height == tx.last_valid_block_height + 1
    assert expiry.slot - first_slot > 200  # 151 blocks took far more slots: the skipped ones do not count
    assert chain.status("bundle") is TxStatus.EXPIRED and chain.stats["expired"] == 1


def test_an_expired_or_unknown_blockhash_is_refused_with_blockhash_not_found():
    chain = chain_of()
    old = tx_on(chain, "old")
    for _ in range(151):
        chain.next_slot()
    with pytest.raises(BlockhashNotFound):
        chain.submit(old, chain.now)
    with pytest.raises(BlockhashNotFound):
        chain.submit(Transaction("x", "no-such-blockhash", 150), chain.now)
    recent = chain.latest_blockhash()
    with pytest.raises(ValueError, match="last_valid_block_height"):
        chain.submit(Transaction("y", recent.blockhash, recent.last_valid_block_height + 1), chain.now)
    assert BlockhashNotFound.transient and BlockhashNotFound.code == "BLOCKHASH_NOT_FOUND"


def test_a_transaction_is_sent_once_and_processed_once():
    chain = chain_of()
    tx = tx_on(chain, "once")
    chain.submit(tx, chain.now)
    chain.submit(tx, chain.now)  # again while pending: nothing changes
    assert chain.stats["submitted"] == 1 and chain.status("once") is TxStatus.PENDING
    run_until_done(chain)
    assert chain.status("once") is TxStatus.LANDED and chain.status("never") is None
    with pytest.raises(AlreadyProcessed):
        chain.submit(tx, chain.now)


def test_outcomes_are_remembered_up_to_a_limit_oldest_forgotten_first():
    chain = chain_of()
    chain.KEEP_OUTCOMES = 2
    for name in ("a", "b", "c"):
        chain.submit(tx_on(chain, name), chain.now)
        chain.next_slot()
    assert [chain.status(name) for name in ("a", "b", "c")] == [None, TxStatus.LANDED, TxStatus.LANDED]


def test_an_rpc_node_with_a_full_queue_drops_new_transactions():
    chain = chain_of(max_pending=2)
    chain.submit(tx_on(chain, "a"), chain.now)
    chain.submit(tx_on(chain, "b"), chain.now)
    with pytest.raises(RpcQueueFull):
        chain.submit(tx_on(chain, "c"), chain.now)


# --------------------------------------------------------------------------- sends and re-sends


def test_a_pending_transaction_is_re_sent_every_2_s_until_it_lands():
    chain = chain_of(seed=3, congestion=Congestion("lossy", load=0.0, bundles_per_slot=0, hot_load=0, ingress_loss=0.8))
    t0 = chain.now + 0.1
    chain.advance_to(t0)
    chain.submit(tx_on(chain, "lossy"), t0)
    blocks = run_until_done(chain)
    sends = [s for block in blocks for s in block.sends if s.signature == "lossy"]
    assert [s.attempt for s in sends] == list(range(1, len(sends) + 1)) and len(sends) > 1
    assert [s.at for s in sends] == pytest.approx([t0 + 2.0 * i for i in range(len(sends))])
    assert [s.received for s in sends] == [False] * (len(sends) - 1) + [True]  # lands on the first one taken in
    landed = blocks[-1].landed[0]
    assert landed.sends == len(sends) and chain.slot_at(sends[-1].at) <= landed.slot
    assert chain.stats["sends"] == len(sends)


def test_a_leader_forgets_what_it_could_not_pack_until_the_next_re_send():
    # One leader per send, 4 slots each; a re-send every 5 slots; room for one transaction per block.
    chain = chain_of(forward_leaders=1, block_cu_limit=1_400_000, account_cu_limit=1_400_000)
    for i in range(8):
        chain.submit(tx_on(chain, f"big{i}", cu_limit=1_400_000, cu_price=1_000 * (8 - i)), chain.now)
    per_slot = []
    for _ in range(10):
        block = chain.next_slot()
        assert block is not None
        per_slot.append([item.tx.signature for item in block.landed])
    # slots 0-3: the first leader packs the best four; slot 4: nobody holds the rest; slot 5: re-sent
    assert per_slot[:6] == [["big0"], ["big1"], ["big2"], ["big3"], [], ["big4"]]


# --------------------------------------------------------------------------- packing


def test_a_block_takes_the_highest_reward_per_cu_that_fits_and_the_rest_waits():
    chain = chain_of(block_cu_limit=1_400_000, account_cu_limit=1_400_000)
    prices = {"a": (1_000_000, 1_000_000), "b": (600_000, 5_000_000), "c": (400_000, 3_000_000),
              "d": (300_000, 100_000)}  # fmt: skip
    for signature, (cu, price) in prices.items():
        chain.submit(tx_on(chain, signature, cu_limit=cu, cu_price=price), chain.now)
    first = chain.next_slot()
    assert first is not None
    assert [(x.tx.signature, x.position) for x in first.landed] == [("b", 0), ("c", 1), ("d", 2)]
    assert first.cu_used == 1_300_000 and first.tx_count == 3  # "a" did not fit; "d" still did
    second = chain.next_slot()
    assert second is not None and [x.tx.signature for x in second.landed] == ["a"]


def test_no_account_takes_more_than_its_cu_limit_in_one_block():
    chain = chain_of(block_cu_limit=4_200_000, account_cu_limit=1_400_000)
    for i in range(4):
        chain.submit(tx_on(chain, f"pool{i}", cu_limit=700_000, cu_price=10_000 - i, accounts=("pool",)), chain.now)
    chain.submit(tx_on(chain, "elsewhere", cu_limit=700_000, cu_price=1, accounts=("other",)), chain.now)
    block = chain.next_slot()
    assert block is not None
    assert sorted(x.tx.signature for x in block.landed) == ["elsewhere", "pool0", "pool1"]


def test_other_traffic_fills_blocks_and_outbids_a_zero_fee():
    chain = chain_of(congestion=Congestion("full", load=3.0, wave_sigma=0.0, ingress_loss=0.0))
    chain.advance_to(chain.now + 4.0)
    assert chain.load() == pytest.approx(3.0)
    chain.submit(tx_on(chain, "free", cu_price=0), chain.now)
    chain.submit(tx_on(chain, "rich", cu_price=50_000_000), chain.now)
    block = chain.next_slot()
    assert block is not None and [x.tx.signature for x in block.landed] == ["rich"]
    assert block.cu_used > 0.95 * 48_000_000 and block.tx_count > 100
    assert chain.recent_fees()[-1] >= 50_000_000 and len(chain.recent_fees()) > 1_000


# --------------------------------------------------------------------------- execution and fees


def test_a_transaction_that_fails_on_chain_lands_and_pays_base_and_priority_fees():
    chain = chain_of()
    chain.submit(tx_on(chain, "fails", cu_limit=200_000, cu_price=12_345), chain.now)

    def execute(txs: Sequence[Transaction], atomic: bool) -> list[Execution]:
        return [Execution(ok=False, error="ExceededSlippage", cu_consumed=31_000) for _ in txs]

    block = chain.next_slot(execute)
    assert block is not None
    (failed,) = block.landed
    assert not failed.ok and failed.error == "ExceededSlippage" and failed.cu_consumed == 31_000
    assert failed.fees.base_lamports == BASE_FEE_LAMPORTS
    assert failed.fees.priority_lamports == 2_469  # ceil(200,000 * 12,345 / 1e6)
    assert failed.fees.tip_lamports == 0
    assert chain.status("fails") is TxStatus.FAILED and chain.stats["failed"] == 1


def test_a_bundle_goes_first_whole_and_pays_its_tip_only_when_it_lands():
    chain = chain_of(jito_share=1.0)
    chain.submit(tx_on(chain, "normal", cu_price=90_000_000), chain.now)
    chain.submit(tx_on(chain, "protected", jito_tip_lamports=10_000), chain.now)
    block = chain.next_slot()
    assert block is not None and block.jito_leader
    first, second = block.landed
    assert (first.tx.signature, first.position, first.bundle_id) == ("protected", 0, "protected")
    assert first.fees.tip_lamports == 10_000 and first.fees.total_lamports == BASE_FEE_LAMPORTS + 10_000
    assert second.tx.signature == "normal" and second.fees.tip_lamports == 0 and second.bundle_id is None


def test_a_bundle_that_fails_reverts_and_pays_nothing():
    chain = chain_of(jito_share=1.0)
    chain.submit(tx_on(chain, "protected", jito_tip_lamports=10_000), chain.now)
    block = chain.next_slot(lambda txs, atomic: [Execution(ok=False, error="ExceededSlippage") for _ in txs])
    assert block is not None and block.landed == ()
    (reverted,) = block.dropped
    assert reverted.status is TxStatus.REVERTED and reverted.error == "ExceededSlippage"
    assert chain.status("protected") is TxStatus.REVERTED and chain.stats["reverted"] == 1


def test_recent_fees_are_the_landed_cu_prices_of_the_chain_and_of_an_account():
    chain = chain_of()
    for i, price in enumerate((300, 100, 200)):
        chain.submit(tx_on(chain, f"t{i}", cu_price=price, accounts=("pool",) if price != 200 else ()), chain.now)
    chain.next_slot()
    assert list(chain.recent_fees()) == [100, 200, 300]
    assert list(chain.recent_fees("pool")) == [100, 300]
    assert list(chain.recent_fees("unknown")) == []


def test_switching_congestion_changes_the_traffic_now():
    chain = chain_of()
    assert chain.load() == 0.0
    chain.set_congestion(Congestion("full", load=2.0, wave_sigma=0.0))
    block = chain.next_slot()
    assert chain.congestion.name == "full" and block is not None and block.tx_count > 100


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "bad",
    [{"slot_s": 0}, {"skip_rate": 1.0}, {"jito_share": 1.5}, {"blockhash_valid_blocks": 0},
     {"bundle_cu_limit": 60_000_000}, {"confirm_depth": 40}, {"seed": -1}],
)  # fmt: skip
def test_chain_params_refuse_nonsense(bad: dict[str, object]):
    with pytest.raises(ValueError):
        ChainParams(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [{"cu_limit": 0}, {"cu_limit": 1_400_001}, {"cu_price": -1}, {"min_out": -1}, {"jito_tip_lamports": 999},
     {"signatures": 0}],
)  # fmt: skip
def test_a_transaction_refuses_nonsense(bad: dict[str, object]):
    with pytest.raises(ValueError):
        Transaction("s", "b", 150, **bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [{"load": -1.0}, {"wave_s": 0.0}, {"ingress_loss": 1.0}, {"hot_fee_scale": float("nan")}]
)
def test_congestion_refuses_nonsense(bad: dict[str, float]):
    with pytest.raises(ValueError):
        Congestion("x", **bad)  # type: ignore[arg-type]
