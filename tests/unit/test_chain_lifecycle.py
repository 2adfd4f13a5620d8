"""The lifecycle with the chain on: terms at building, landing at submitted, fees, expiry, MEV, resume.

The chain is the real domain chain behind the real desk (``engine.chain_desk``); the pools and the
stores are the lifecycle's in-memory fakes. No Ray, no servers, no wall clock.
"""

from __future__ import annotations

import asyncio

from engine.plans import ExecutionPlan, RunOutcome
from sim.chain_fees import BASE_FEE_LAMPORTS
from sim.orders import OrderStatus as S
from sim.orders import RetryPolicy
from tests.unit.chain_fakes import QUIET, ChainWorld, chain_config

SOL_USDC = ("raydium:SOL-USDC",)
HAPPY = ["pending", "routing", "building", "submitted", "confirmed"]
LOSSY = {**QUIET, "ingress_loss": 0.9}
BLACKHOLE = {**QUIET, "ingress_loss": 0.999}


def events(cw: ChainWorld, order_id: str):
    return cw.world.book.events[order_id]


async def test_an_order_lands_in_a_slot_with_its_blockhash_fees_and_commitment() -> None:
    cw = ChainWorld(chain_config(), pool_ids=SOL_USDC)
    order = cw.world.order("SOL", "USDC", "1.5")
    cw.with_options(order.id, priorityFee=50_000)

    assert await cw.lifecycle.run(order.id) == RunOutcome("confirmed")

    assert cw.world.book.statuses(order.id) == HAPPY
    building, submitted, confirmed = (e.details for e in events(cw, order.id)[2:])
    tx = building["transaction"]
    assert tx["computeUnitLimit"] == 140_000 and tx["computeUnitPrice"] == 50_000 and tx["priorityFee"] == 50_000
    assert submitted["recentBlockhash"] == tx["recentBlockhash"]
    assert submitted["lastValidBlockHeight"] == tx["lastValidBlockHeight"]
    assert confirmed["commitment"] == "confirmed" and confirmed["slot"] >= 0
    assert confirmed["fees"] == {"baseLamports": BASE_FEE_LAMPORTS, "priorityLamports": 7_000, "tipLamports": 0,
                                 "totalSol": "0.000012"}  # fmt: skip
    assert confirmed["computeUnitsConsumed"] == 140_000 and confirmed["blockTime"] > 0
    assert confirmed["txSignature"] == submitted["txSignature"] and confirmed["resends"] == 0
    assert [s["attempt"] for s in confirmed["sends"]] == [1]
    trade = cw.world.ledger.trades[(order.id, 0)]
    assert trade.details["chain"]["slot"] == confirmed["slot"]  # the fill knows where it landed
    assert str(trade.amount_out) in {f["amountOut"] for f in confirmed["fills"]}


async def test_the_default_fee_is_the_configured_level_of_recent_fees_capped() -> None:
    cw = ChainWorld(chain_config(chain={"rebroadcast_s": 2.0}), pool_ids=SOL_USDC)
    order = cw.world.order("SOL", "USDC", "1")
    cw.with_options(order.id, priorityFee=10**9, maxPriorityFeeLamports=1_400)
    await cw.lifecycle.run(order.id)
    tx = events(cw, order.id)[2].details["transaction"]
    assert tx["computeUnitPrice"] == 1_400 * 1_000_000 // 140_000  # capped at 1,400 lamports


async def test_a_lost_send_is_re_sent_every_2_s_and_the_history_shows_each_send() -> None:
    cw = ChainWorld(chain_config(presets={"calm": LOSSY}), pool_ids=SOL_USDC, seed=11)
    order = cw.world.order("SOL", "USDC", "1")
    assert await cw.lifecycle.run(order.id) == RunOutcome("confirmed")
    confirmed = events(cw, order.id)[-1].details
    sends = confirmed["sends"]
    assert confirmed["resends"] == len(sends) - 1 >= 1
    assert [s["attempt"] for s in sends] == list(range(1, len(sends) + 1))
    assert all(not s["received"] for s in sends[:-1]) or any(s["received"] for s in sends)
    assert all(b["at"] - a["at"] == 2.0 for a, b in zip(sends, sends[1:]))


async def test_an_expired_blockhash_is_retried_with_a_fresh_one_and_then_lands() -> None:
    config = chain_config(chain={"blockhash_valid_blocks": 5}, presets={"calm": BLACKHOLE, "busy": QUIET})
    cw = ChainWorld(config, pool_ids=SOL_USDC, retry=RetryPolicy(3, 1.0, 2.0))
    order = cw.world.order("SOL", "USDC", "1")

    first = await cw.lifecycle.run(order.id)
    assert first.status == "pending" and first.retry_in == 1.0
    retry = events(cw, order.id)[-1].details
    assert retry["error"]["code"] == "BLOCKHASH_EXPIRED" and "BlockhashNotFound" in retry["error"]["message"]
    assert "fees" not in retry  # it never landed: nothing paid
    await cw.desk.set_congestion("busy")
    assert await cw.lifecycle.run(order.id) == RunOutcome("confirmed")

    building = [e.details["transaction"] for e in events(cw, order.id) if e.status == S.BUILDING]
    assert len(building) == 2 and building[0]["recentBlockhash"] != building[1]["recentBlockhash"]
    signatures = [e.details["txSignature"] for e in events(cw, order.id) if e.status == S.SUBMITTED]
    assert len(set(signatures)) == 2


async def test_after_the_last_retry_an_order_that_never_lands_fails_blockhash_expired() -> None:
    config = chain_config(chain={"blockhash_valid_blocks": 3}, presets={"calm": BLACKHOLE})
    cw = ChainWorld(config, pool_ids=SOL_USDC, retry=RetryPolicy(1, 1.0, 2.0))
    order = cw.world.order("SOL", "USDC", "1")
    assert (await cw.lifecycle.run(order.id)).status == "pending"
    assert await cw.lifecycle.run(order.id) == RunOutcome("failed")
    assert cw.world.book.orders[order.id].error_code == "BLOCKHASH_EXPIRED"
    assert cw.world.ledger.trades == {}


async def test_a_swap_that_fails_on_chain_pays_base_and_priority_fees_and_moves_no_pool() -> None:
    cw = ChainWorld(chain_config(), pool_ids=SOL_USDC, retry=RetryPolicy(0, 1.0, 2.0))
    order = cw.world.order("SOL", "USDC", "1", slippage_bps=10)
    cw.with_options(order.id, priorityFee=10_000)
    pool = cw.world.pool(SOL_USDC[0])

    def front_run(order_id: str, to: S) -> None:  # a large sale lands between building and the block
        if to == S.SUBMITTED:
            pool.swap_exact_in("SOL", 50 * 10**9, 0, 0.0)

    cw.world.book.interfere = front_run
    assert await cw.lifecycle.run(order.id) == RunOutcome("failed")
    before = pool.reserves()
    failed = events(cw, order.id)[-1].details
    assert cw.world.book.orders[order.id].error_code == "SLIPPAGE_EXCEEDED"
    assert "ExceededSlippage (6005)" in failed["chain"]["chainError"]
    assert failed["fees"]["baseLamports"] == 5_000 and failed["fees"]["priorityLamports"] == 1_400
    assert isinstance(failed["slot"], int) and cw.world.ledger.trades == {} and pool.reserves() == before


async def test_a_loose_bound_is_sandwiched_and_a_protected_order_is_not() -> None:
    config = chain_config(chain={"jito_share": 1.0}, mev={"rate": 1.0, "min_profit_lamports": 0})
    cw = ChainWorld(config, pool_ids=SOL_USDC)
    victim = cw.world.order("SOL", "USDC", "20", slippage_bps=300)
    assert await cw.lifecycle.run(victim.id) == RunOutcome("confirmed")
    landed = events(cw, victim.id)[-1].details
    assert landed["sandwiched"] is True and len(cw.pools.mev_trades) == 2
    expected = ExecutionPlan.from_json(cw.world.book.orders[victim.id].route).route.amount_out
    assert cw.world.book.orders[victim.id].amount_out < expected  # the front-run took its share

    protected = cw.world.order("SOL", "USDC", "20", slippage_bps=300)
    cw.with_options(protected.id, jitoTipLamports=10_000)
    assert await cw.lifecycle.run(protected.id) == RunOutcome("confirmed")
    safe = events(cw, protected.id)[-1].details
    assert safe.get("sandwiched") in (None, False) and len(cw.pools.mev_trades) == 2
    assert safe["fees"]["tipLamports"] == 10_000 and events(cw, protected.id)[2].details["transaction"]["protected"]


async def test_a_two_hop_route_is_one_transaction_on_both_pools() -> None:
    cw = ChainWorld(chain_config(), pool_ids=("raydium:BONK-SOL", "raydium:SOL-USDC"))
    order = cw.world.order("BONK", "USDC", "5000000")
    assert await cw.lifecycle.run(order.id) == RunOutcome("confirmed")
    tx = events(cw, order.id)[2].details["transaction"]
    assert tx["computeUnitLimit"] == 280_000 and len(cw.chain.sent) == 1
    assert {(o, leg) for o, leg in cw.world.ledger.trades} == {(order.id, 0), (order.id, 1)}
    assert events(cw, order.id)[-1].details["slot"] == cw.world.ledger.trades[(order.id, 1)].details["chain"]["slot"]


async def test_an_executor_that_dies_while_waiting_finds_the_landed_fill_on_resume() -> None:
    cw = ChainWorld(chain_config(), pool_ids=SOL_USDC)
    order = cw.world.order("SOL", "USDC", "1")
    run = asyncio.ensure_future(cw.lifecycle.run(order.id))
    while cw.desk.chain.pending_count == 0:
        await asyncio.sleep(0)
    run.cancel()  # the executor is gone; its transaction is on its way
    await cw.settle()
    assert (order.id, 0) in cw.world.ledger.trades and cw.world.book.orders[order.id].status == S.SUBMITTED
    sent = len(cw.chain.sent)

    assert await cw.lifecycle.run(order.id) == RunOutcome("confirmed")
    assert len(cw.chain.sent) == sent and len(cw.world.ledger.trades) == 1  # not sent again, filled once
    confirmed = events(cw, order.id)[-1].details
    assert confirmed["slot"] == cw.world.ledger.trades[(order.id, 0)].details["chain"]["slot"]


async def test_a_chain_that_dies_with_pending_transactions_is_answered_by_a_retry() -> None:
    cw = ChainWorld(chain_config(), pool_ids=SOL_USDC)
    order = cw.world.order("SOL", "USDC", "1")
    cw.chain.down = True
    first = await cw.lifecycle.run(order.id)
    assert first.status == "pending" and events(cw, order.id)[-1].details["error"]["code"] == "CHAIN_UNAVAILABLE"
    cw.restart_chain()
    assert await cw.lifecycle.run(order.id) == RunOutcome("confirmed")
    assert len(cw.world.ledger.trades) == 1


async def test_a_resumed_order_re_sends_the_same_transaction_to_a_restarted_chain() -> None:
    cw = ChainWorld(chain_config(), pool_ids=SOL_USDC)
    order = cw.world.order("SOL", "USDC", "1")
    run = asyncio.ensure_future(cw.lifecycle.run(order.id))
    while cw.desk.chain.pending_count == 0:
        await asyncio.sleep(0)
    run.cancel()
    cw.restart_chain()  # the pending transaction died with the chain; the same blockhash is still valid
    assert await cw.lifecycle.run(order.id) == RunOutcome("confirmed")
    assert cw.chain.sent[0] == cw.chain.sent[-1] and len(cw.world.ledger.trades) == 1


async def test_a_block_runs_its_pools_on_its_block_time() -> None:
    # The copy the block packs on and the pool its swap is applied to share the block's clock, in
    # whole seconds as the programs see it: the DLMM pool's last update is the block time.
    cw = ChainWorld(chain_config(), pool_ids=("meteora:SOL-USDC",))
    cw.world.clock.now += 0.7  # the wall clock is between whole seconds
    order = cw.world.order("SOL", "USDC", "2")
    assert await cw.lifecycle.run(order.id) == RunOutcome("confirmed")
    block_time = events(cw, order.id)[-1].details["blockTime"]
    assert cw.pools.held_at == block_time != cw.world.clock.time()
    assert cw.world.pool("meteora:SOL-USDC").snapshot()["last_update"] == block_time
    assert cw.world.ledger.trades[(order.id, 0)].sim_time == block_time
