"""The order lifecycle on in-memory fakes of its ports: no Ray, no PostgreSQL, no Redis."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from engine.plans import ExecutionPlan, RunOutcome, route_from_json
from sim.decision import Rejection, RouteDecision, RoutingPolicy
from sim.orders import OrderStatus as S
from sim.orders import RetryPolicy
from sim.tokens import format_units
from tests.unit.lifecycle_fakes import TOKENS, Crashed, World, make_world

SOL_USDC = ("raydium:SOL-USDC", "meteora:SOL-USDC")
HAPPY = ["pending", "routing", "building", "submitted", "confirmed"]


def only(world: World, order_id: str) -> list[str]:
    return world.book.statuses(order_id)


def move_against_sol_seller(pool) -> None:
    """A large SOL sale lands first: every SOL→USDC order after it gets less."""
    pool.swap_exact_in("SOL", 60 * 10**9, 0, 0.0)


# ----------------------------------------------------------------------------- the happy path


async def test_a_market_order_goes_through_every_status_and_fills_at_the_best_pool() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "1.5")
    best = max(SOL_USDC, key=lambda pid: world.pool(pid).quote_exact_in("SOL", order.amount_in, world.clock.now).amount_out)

    outcome = await world.lifecycle.run(order.id, started_at=world.clock.now)

    assert outcome == RunOutcome("confirmed")
    assert only(world, order.id) == HAPPY
    assert [e.seq for e in world.book.events[order.id]] == [1, 2, 3, 4, 5]
    assert [e.seq for e in world.feed.published] == [2, 3, 4, 5]  # committed, then published
    stored = world.book.orders[order.id]
    trade = world.ledger.trades[(order.id, 0)]
    assert trade.pool_id == best and stored.pool_id == best and stored.dex == best.split(":")[0]
    assert stored.amount_out == trade.amount_out and stored.fee == trade.fee
    assert stored.executed_price == (Decimal(trade.amount_out) / 10**6 / Decimal("1.5")).quantize(Decimal("1e-12"))
    routing, building, submitted, confirmed = (e.details for e in world.book.events[order.id][1:])
    assert {q["poolId"] for q in routing["quotes"]} == set(SOL_USDC)
    assert routing["chosen"]["poolIds"] == [best] and routing["reason"]
    plan = ExecutionPlan.from_json(stored.route)
    assert building["minOut"] == format_units(plan.min_out, TOKENS["USDC"])
    assert building["expectedOut"] == format_units(plan.route.amount_out, TOKENS["USDC"])
    assert plan.min_out == plan.route.amount_out * 9_900 // 10_000
    assert submitted["txSignature"] == stored.tx_signature == plan.signature
    assert confirmed["feeToken"] == "SOL" and confirmed["fills"][0]["feeToken"] == "SOL"
    assert confirmed["fee"] == format_units(trade.fee, TOKENS["SOL"])
    assert world.metrics.finals == [("confirmed", best.split(":")[0])]
    assert world.metrics.stages == ["pending->routing", "routing->building", "building->submitted",
                                    "submitted->confirmed"]  # fmt: skip


async def test_the_minimum_out_follows_the_orders_slippage() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "2", slippage_bps=250)
    await world.lifecycle.run(order.id)
    plan = ExecutionPlan.from_json(world.book.orders[order.id].route)
    assert plan.min_out == plan.route.amount_out * 9_750 // 10_000
    assert world.book.events[order.id][2].details["slippageBps"] == 250


async def test_a_final_or_unknown_order_is_left_alone() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "1")
    await world.lifecycle.run(order.id)
    before = list(world.book.events[order.id])
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
    assert world.book.events[order.id] == before and world.router.calls == 1
    assert await world.lifecycle.run("00000000-0000-0000-0000-000000000000") == RunOutcome("missing")


async def test_a_publish_that_fails_does_not_stop_the_order() -> None:
    world = make_world(pool_ids=SOL_USDC)
    world.feed.down = True
    order = world.order("SOL", "USDC", "1")
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
    assert only(world, order.id) == HAPPY and world.feed.published == []


# ----------------------------------------------------------------------------- failures


async def test_a_pair_nobody_trades_fails_at_once_with_no_route() -> None:
    world = make_world(pool_ids=SOL_USDC, policy=RoutingPolicy(allow_two_hop=False))
    order = world.order("JUP", "BONK", "10")
    outcome = await world.lifecycle.run(order.id)
    assert outcome == RunOutcome("failed")
    assert only(world, order.id) == ["pending", "routing", "failed"]
    failed = world.book.orders[order.id]
    assert failed.error_code == "NO_ROUTE" and world.metrics.retries == []
    assert world.book.events[order.id][-1].details["attempts"] == 1
    assert world.metrics.finals == [("failed", "none")]


async def test_an_order_larger_than_the_liquidity_fails_at_once() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "5000")
    assert await world.lifecycle.run(order.id) == RunOutcome("failed")
    assert world.book.orders[order.id].error_code == "INSUFFICIENT_LIQUIDITY"
    assert world.book.events[order.id][1].details["error"]["code"] == "INSUFFICIENT_LIQUIDITY"


async def test_transient_failures_back_off_1_2_4_seconds_then_fail_with_the_last_reason() -> None:
    world = make_world(pool_ids=SOL_USDC)
    world.venues.unavailable.update(SOL_USDC)  # nothing answers
    order = world.order("SOL", "USDC", "1")
    delays = []
    for _ in range(4):
        outcome = await world.lifecycle.run(order.id)
        delays.append(outcome.retry_in)
    assert delays == [1.0, 2.0, 4.0, None] and outcome == RunOutcome("failed")
    assert only(world, order.id) == ["pending"] + ["routing", "pending"] * 3 + ["routing", "failed"]
    pendings = [e for e in world.book.events[order.id][1:] if e.status == S.PENDING]
    assert [e.details["nextAttempt"] for e in pendings] == [2, 3, 4]
    assert [e.attempt for e in world.book.events[order.id]][-2:] == [4, 4]
    failed = world.book.orders[order.id]
    assert failed.error_code == "POOLS_UNAVAILABLE" and failed.attempts == 4
    assert world.metrics.retries == ["POOLS_UNAVAILABLE"] * 3


async def test_a_retry_that_finds_the_pool_moved_is_routed_afresh_and_fills() -> None:
    world = make_world(pool_ids=("raydium:SOL-USDC",))
    order = world.order("SOL", "USDC", "3", slippage_bps=10)
    world.venues.before_swap = move_against_sol_seller  # the pool moves between quote and landing
    first = await world.lifecycle.run(order.id)
    assert first.status == "pending" and first.retry_in == 1.0
    assert world.book.events[order.id][-1].details["error"]["code"] == "SLIPPAGE_EXCEEDED"
    assert world.ledger.trades == {}
    quoted_before = ExecutionPlan.from_json(world.book.orders[order.id].route).route.amount_out

    world.venues.before_swap = None
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
    again = ExecutionPlan.from_json(world.book.orders[order.id].route)
    assert again.route.amount_out < quoted_before  # quoted on the moved pool
    assert world.ledger.trades[(order.id, 0)].amount_out >= again.min_out
    assert world.book.orders[order.id].attempts == 2 and world.router.calls == 2


async def test_a_router_that_breaks_is_a_bounded_retry() -> None:
    world = make_world(pool_ids=SOL_USDC)
    world.router.script = [RuntimeError("router restarting")]
    order = world.order("SOL", "USDC", "1")
    outcome = await world.lifecycle.run(order.id)
    assert outcome.status == "pending" and outcome.retry_in == 1.0
    error = world.book.events[order.id][-1].details["error"]
    assert error["code"] == "ENGINE_ERROR" and "router restarting" in error["message"]
    assert only(world, order.id) == ["pending", "routing", "pending"]
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")


async def test_a_routing_failure_that_says_not_transient_is_not_retried() -> None:
    world = make_world(pool_ids=SOL_USDC)
    world.router.script = [RouteDecision(None, failure=Rejection("UNSUPPORTED_TOKEN", "no such token", False))]
    order = world.order("SOL", "USDC", "1")
    assert await world.lifecycle.run(order.id) == RunOutcome("failed")
    assert world.book.orders[order.id].error_code == "UNSUPPORTED_TOKEN"


async def test_a_transaction_that_lands_after_its_expiry_is_dropped_and_retried() -> None:
    world = make_world(pool_ids=("raydium:SOL-USDC",))

    def slow_landing(pool) -> None:
        world.clock.now += 21  # the plan expires 20 s after submission

    world.venues.before_swap = slow_landing
    order = world.order("SOL", "USDC", "1")
    assert await world.lifecycle.run(order.id) == RunOutcome("pending", retry_in=1.0)
    assert world.book.events[order.id][-1].details["error"]["code"] == "TRANSACTION_EXPIRED"
    assert world.ledger.trades == {}
    world.venues.before_swap = None
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
    plans = {e.details.get("txSignature") for e in world.book.events[order.id] if e.status == S.SUBMITTED}
    assert len(plans) == 2  # the retry sent a new transaction


async def test_a_pool_that_dies_before_filling_is_a_transient_failure() -> None:
    world = make_world(pool_ids=("raydium:SOL-USDC",))
    order = world.order("SOL", "USDC", "1")

    def die(pool) -> None:
        world.venues.unavailable.add(pool.pool_id)

    world.venues.before_swap = die
    outcome = await world.lifecycle.run(order.id)
    assert outcome == RunOutcome("pending", retry_in=1.0)
    assert world.book.events[order.id][-1].details["error"]["code"] == "POOL_UNAVAILABLE"
    assert world.ledger.trades == {}


async def test_a_pool_that_dies_after_filling_confirms_from_the_ledger() -> None:
    world = make_world(pool_ids=("raydium:SOL-USDC",))
    world.venues.dies_after_fill.add("raydium:SOL-USDC")
    order = world.order("SOL", "USDC", "1")
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
    trade = world.ledger.trades[(order.id, 0)]
    assert world.book.orders[order.id].amount_out == trade.amount_out and len(world.ledger.trades) == 1


async def test_a_writer_that_got_there_first_wins() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "1")

    def someone_else_fails_it(order_id: str, to: S) -> None:
        if to == S.BUILDING:
            world.book.interfere = None
            current = world.book.orders[order_id]
            world.book.orders[order_id] = replace(current, status=S.FAILED, seq=current.seq + 1)

    world.book.interfere = someone_else_fails_it
    outcome = await world.lifecycle.run(order.id)
    assert outcome == RunOutcome("failed", superseded=True)
    assert world.ledger.trades == {} and world.router.calls == 1


# ----------------------------------------------------------------------------- resume after redelivery


async def _stopped_at(status: S) -> tuple[World, str]:
    """An order whose first run stopped right after committing ``status`` (routing and building are
    committed with the submitting that follows them now: this is what a run of an earlier version left,
    or one on the chain, which commits routing before it asks the chain for its terms)."""
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "1.25")
    world.book.crash_after = status
    with pytest.raises(Crashed):
        await world.lifecycle.run(order.id)
    world.book.crash_after = None
    assert world.book.orders[order.id].status == status
    return world, order.id


async def test_routing_building_and_submitting_are_one_commit_and_three_events() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "1.25")
    commits: list[list[S]] = []
    advance = world.book.advance

    async def counted(order_id: str, steps: Any, **kwargs: Any) -> Any:
        commits.append([step.to for step in steps])
        return await advance(order_id, steps, **kwargs)

    world.book.advance = counted  # type: ignore[method-assign]
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
    assert commits == [[S.ROUTING, S.BUILDING, S.SUBMITTED], [S.CONFIRMED]]
    assert only(world, order.id) == HAPPY  # each its own event, seqs without a gap
    assert [e.seq for e in world.book.events[order.id]] == [1, 2, 3, 4, 5]
    assert [e.seq for e in world.feed.published] == [2, 3, 4, 5]  # published in order, once committed


async def test_a_run_that_dies_before_its_first_commit_routes_again_and_fills_once() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "1.25")

    def dies(order_id: str, to: S) -> None:
        if to == S.SUBMITTED:
            raise Crashed("before the commit")

    world.book.interfere = dies
    with pytest.raises(Crashed):
        await world.lifecycle.run(order.id)
    world.book.interfere = None
    assert world.book.orders[order.id].status == S.PENDING  # nothing of that run was committed
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
    assert only(world, order.id) == HAPPY and world.router.calls == 2 and len(world.ledger.trades) == 1


@pytest.mark.parametrize("status", [S.ROUTING, S.BUILDING, S.SUBMITTED])
async def test_a_redelivered_order_resumes_where_it_stopped(status: S) -> None:
    world, order_id = await _stopped_at(status)
    stored_route = world.book.orders[order_id].route
    assert await world.lifecycle.run(order_id) == RunOutcome("confirmed")
    assert only(world, order_id) == HAPPY  # nothing repeated, nothing skipped
    assert world.router.calls == 1  # not routed again
    assert len(world.ledger.trades) == 1
    if status == S.SUBMITTED:  # the same transaction, not a new one
        assert world.book.orders[order_id].tx_signature == ExecutionPlan.from_json(stored_route).signature


async def test_a_redelivered_swap_that_had_filled_is_not_filled_twice() -> None:
    world, order_id = await _stopped_at(S.SUBMITTED)
    plan = ExecutionPlan.from_json(world.book.orders[order_id].route)
    first = await world.venues.swap(plan.pool_ids[0], _swap_of(order_id, plan), timeout=1)
    reserves = world.pool(plan.pool_ids[0]).reserves()
    assert await world.lifecycle.run(order_id) == RunOutcome("confirmed")
    assert world.pool(plan.pool_ids[0]).reserves() == reserves  # the pool did not trade again
    assert world.book.orders[order_id].amount_out == first.amount_out


async def test_a_routing_that_left_no_route_is_routed_again() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "1")
    world.book.put(replace(order, status=S.ROUTING, seq=2, route=None))
    outcome = await world.lifecycle.run(order.id)
    assert outcome.status == "pending" and world.book.events[order.id][-1].details["error"]["code"] == "ENGINE_ERROR"


def _swap_of(order_id: str, plan: ExecutionPlan):
    from engine.plans import SwapOrder

    leg = plan.route.legs[0]
    return SwapOrder(order_id, 0, leg.token_in, leg.amount_in, plan.min_out, plan.expires_at, plan.signature)


# ----------------------------------------------------------------------------- multi-pool routes


async def test_a_two_hop_route_holds_its_pools_in_order_swaps_both_legs_and_releases_them() -> None:
    world = make_world(pool_ids=("raydium:BONK-SOL", "raydium:SOL-USDC"))
    order = world.order("BONK", "USDC", "5000000")
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
    plan = ExecutionPlan.from_json(world.book.orders[order.id].route)
    assert plan.route.kind == "two_hop"
    holds = [pid for kind, pid in world.venues.calls if kind == "hold"]
    assert holds == sorted(holds) == ["raydium:BONK-SOL", "raydium:SOL-USDC"]
    assert world.venues.held == {}  # all released
    leg0, leg1 = world.ledger.trades[(order.id, 0)], world.ledger.trades[(order.id, 1)]
    assert leg1.amount_in == leg0.amount_out
    confirmed = world.book.events[order.id][-1].details
    assert [f["feeToken"] for f in confirmed["fills"]] == ["BONK", "SOL"]
    # the total fee is in one named token: the SOL leg's fee taken back into BONK
    sol_fee_in_bonk = leg1.fee * leg0.amount_in // leg0.amount_out
    assert world.book.orders[order.id].fee == leg0.fee + sol_fee_in_bonk
    assert confirmed["feeToken"] == "BONK"


async def test_a_split_route_is_checked_on_the_held_states_and_fails_whole() -> None:
    world = make_world(pool_ids=SOL_USDC, policy=RoutingPolicy(allow_split=True, allow_two_hop=False))
    order = world.order("SOL", "USDC", "40", slippage_bps=5)
    decision = await world.router.route("SOL", "USDC", order.amount_in)
    assert decision.route is not None and decision.route.kind == "split"
    world.router.script = [decision]
    for pid in SOL_USDC:  # both pools move after routing, before the holds
        move_against_sol_seller(world.pool(pid))
    outcome = await world.lifecycle.run(order.id)
    assert outcome.status == "pending"
    assert world.book.events[order.id][-1].details["error"]["code"] == "SLIPPAGE_EXCEEDED"
    assert world.ledger.trades == {} and world.venues.held == {}


async def test_a_split_whose_second_leg_is_refused_is_a_partial_fill_and_not_retried() -> None:
    world = make_world(pool_ids=SOL_USDC, policy=RoutingPolicy(allow_split=True, allow_two_hop=False))
    order = world.order("SOL", "USDC", "40")
    decision = await world.router.route("SOL", "USDC", order.amount_in)
    world.router.script = [decision]
    world.venues.reject_held.add(sorted(SOL_USDC)[1])
    assert await world.lifecycle.run(order.id) == RunOutcome("failed")
    assert world.book.orders[order.id].error_code == "PARTIAL_FILL"
    assert len(world.ledger.trades) == 1


async def test_a_pool_that_cannot_be_held_is_transient() -> None:
    world = make_world(pool_ids=("raydium:BONK-SOL", "raydium:SOL-USDC"))
    order = world.order("BONK", "USDC", "5000000")
    decision = await world.router.route("BONK", "USDC", order.amount_in)
    world.router.script = [decision]
    world.venues.unavailable.add("raydium:SOL-USDC")
    outcome = await world.lifecycle.run(order.id)
    assert outcome == RunOutcome("pending", retry_in=1.0)
    assert world.book.events[order.id][-1].details["error"]["code"] == "POOL_UNAVAILABLE"
    assert world.venues.held == {} and world.ledger.trades == {}


async def test_the_stored_plan_round_trips() -> None:
    world = make_world(pool_ids=("raydium:BONK-SOL", "raydium:SOL-USDC"))
    order = world.order("BONK", "USDC", "5000000")
    await world.lifecycle.run(order.id)
    stored = world.book.orders[order.id].route
    assert ExecutionPlan.from_json(stored).to_json() == stored
    assert route_from_json(stored).to_dict() == {k: v for k, v in stored.items()
                                                  if k not in ("min_out", "expires_at", "signature")}  # fmt: skip
    assert TOKENS["BONK"].decimals == 5


async def test_a_longer_retry_policy_is_followed() -> None:
    world = make_world(pool_ids=SOL_USDC, retry=RetryPolicy(max_retries=1, base_delay_s=0.5, factor=3))
    world.venues.unavailable.update(SOL_USDC)
    order = world.order("SOL", "USDC", "1")
    assert (await world.lifecycle.run(order.id)).retry_in == 0.5
    assert await world.lifecycle.run(order.id) == RunOutcome("failed")


async def test_an_amount_that_buys_nothing_fails_at_once_as_too_small() -> None:
    world = make_world(pool_ids=SOL_USDC)
    order = world.order("SOL", "USDC", "0.000000001")  # one lamport
    assert await world.lifecycle.run(order.id) == RunOutcome("failed")
    failed = world.book.orders[order.id]
    assert failed.error_code == "AMOUNT_TOO_SMALL" and failed.error_message.startswith("amount too small")


async def test_a_router_that_does_not_answer_is_a_transient_router_unavailable() -> None:
    from engine.errors import EngineUnavailable

    world = make_world(pool_ids=SOL_USDC)
    world.router.script = [EngineUnavailable("the router did not answer in 5s")]
    order = world.order("SOL", "USDC", "1")
    assert await world.lifecycle.run(order.id) == RunOutcome("pending", retry_in=1.0)
    error = world.book.events[order.id][-1].details["error"]
    assert error["code"] == "ROUTER_UNAVAILABLE" and "did not answer" in error["message"]
    assert await world.lifecycle.run(order.id) == RunOutcome("confirmed")
