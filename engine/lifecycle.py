"""The order lifecycle: pending → routing → building → submitted → confirmed | failed.

``OrderLifecycle.run`` drives one order as far as it goes now. It reads where
the order stands and carries on from there, so a redelivered order (its
executor killed mid-order, the engine restarted) resumes instead of starting
over: a submitted swap is re-sent to the same pool under the same
(order id, leg) key, which the pool fills at most once. Every status change
is committed before it is published. A transient failure sends the order back
to ``pending`` with a backoff; after the last retry, or on a failure no retry
can fix, it is ``failed``.

An order that waits (limit, stop-loss, take-profit, trailing stop) is armed
on its first run (``open``) and handed to the trigger book; once the book
fired it (``triggered``) it runs like a market order. A limit is executed
with exactly its limit as the minimum out: when the market no longer pays
that by the time it runs, it goes back to ``open``, still armed.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sim.orders import OrderStatus, RetryPolicy
from sim.routing import Route
from sim.tokens import TokenRegistry

from engine.errors import EngineUnavailable, StaleTransition
from engine.execution import LegExecutor, Timing
from engine.landing import ChainLanding
from engine.plans import ExecutionPlan, Fill, OrderFailure, RunOutcome, route_from_json, venues_of
from engine.records import OrderRecord, StatusStep, iso
from engine.ports import (
    ChainPort, Clock, EventFeed, LifecycleMetrics, OrderBook, Router, TradeLedger, TriggerArming, Venues,
)  # fmt: skip
from engine.waiting import waiting_for
from engine.event_details import building_details, confirmed_details, error_details, routing_details, settle

log = logging.getLogger(__name__)


@dataclass
class _Run:
    """One run of one order: the last seq and status it committed (its CAS guard)."""

    order_id: str
    attempt: int
    seq: int
    status: OrderStatus  # the last decided (committed, or about to be)
    since: datetime
    created_at: datetime
    dex: str | None
    kind: str = "market"
    committed: OrderStatus | None = None  # the last committed (None: status, as read)
    decided: list[StatusStep] = field(default_factory=list)  # not committed yet

    def __post_init__(self) -> None:
        if self.committed is None:
            self.committed = self.status


@dataclass(frozen=True, slots=True)
class LifecyclePorts:
    orders: OrderBook
    trades: TradeLedger
    events: EventFeed
    router: Router
    venues: Venues
    clock: Clock
    metrics: LifecycleMetrics
    triggers: TriggerArming
    chain: ChainPort | None = None  # None: the chain is off, a swap lands at once


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    retry: RetryPolicy = RetryPolicy()
    timing: Timing = field(default_factory=Timing)


class OrderLifecycle:
    def __init__(self, ports: LifecyclePorts, tokens: TokenRegistry, config: LifecycleConfig,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        self._ports = ports
        self._tokens = tokens
        self._config = config
        self._legs = LegExecutor(ports.venues, ports.trades, ports.clock, config.timing, rng or random.Random())
        self._landing = None if ports.chain is None else ChainLanding(ports.chain, ports.trades, ports.clock)

    async def run(self, order_id: str, started_at: float | None = None) -> RunOutcome:
        """Drive an order as far as it goes now; nothing is raised but what the store raises."""
        order = await self._ports.orders.get_order(order_id)
        if order is None:
            return RunOutcome("missing")
        status = order.status
        if status.is_final:
            return RunOutcome(str(status))
        if status == OrderStatus.OPEN:
            return RunOutcome("open")  # armed: the trigger book runs it once it fires
        # The first attempt is queued with seq 1; a retry's pending row names the next one,
        # and a fired order's triggered row the next after its arming.
        fresh = (status == OrderStatus.PENDING and order.seq > 1) or status == OrderStatus.TRIGGERED
        attempt = order.attempts + 1 if fresh else max(order.attempts, 1)
        run = _Run(order.id, attempt, order.seq, status, order.updated_at, order.created_at, order.dex, order.type)
        try:
            if order.waits and status == OrderStatus.PENDING and order.seq == 1:
                return await self._arm(run, order)
            return await self._advance(run, order, started_at)
        except OrderFailure as failure:
            return await self._fail_attempt(run, failure)
        except StaleTransition:
            # Someone else advanced this order meanwhile: theirs is the truth.
            current = await self._ports.orders.get_order(order_id)
            return RunOutcome(str(current.status) if current else "missing", superseded=True)
        except Exception as exc:  # noqa: BLE001
            # The router or a pool could not answer (or a bug): a bounded retry,
            # so that the order still ends confirmed or failed.
            log.exception("order %s: attempt %d broke", order_id, attempt)
            failure = OrderFailure("ENGINE_ERROR", f"{type(exc).__name__}: {exc}"[:300], True)
            return await self._fail_attempt(run, failure)

    async def _arm(self, run: _Run, order: OrderRecord) -> RunOutcome:
        assert order.expires_at is not None
        if order.expires_at.timestamp() <= self._ports.clock.time():
            await self._transition(run, OrderStatus.EXPIRED, {"expiredAt": iso(order.expires_at)}, attempt=0)
            self._finished(run, OrderStatus.EXPIRED, "none")
            return RunOutcome("expired")
        await self._transition(run, OrderStatus.OPEN, {"waitingFor": waiting_for(order, self._tokens)}, attempt=0)
        await self._ports.triggers.arm(order.id)
        return RunOutcome("open")

    async def _advance(self, run: _Run, order: OrderRecord, started_at: float | None) -> RunOutcome:
        if run.status in (OrderStatus.PENDING, OrderStatus.TRIGGERED):
            route = await self._route(run, order, started_at)
            plan = await self._build(run, order, route)
        elif run.status == OrderStatus.ROUTING:
            plan = await self._build(run, order, _stored_route(order))
        else:
            plan = ExecutionPlan.from_json(order.route)
        if run.status == OrderStatus.BUILDING:
            plan = await self._submit(run, plan)
        if self._landing is not None and plan.tx is not None:
            landed = await self._landing.land(order.id, plan)
            return await self._confirm(run, order, plan, landed.fills, landed.details)
        fills = await self._legs.execute(order.id, plan)
        return await self._confirm(run, order, plan, fills)

    async def _transition(self, run: _Run, to: OrderStatus, details: dict[str, Any], *, attempt: int | None = None,
                          later: bool = False, **fields: Any) -> None:  # fmt: skip
        """Decide the order's next status; committed now, or with the next one decided (``later``: what comes
        next follows without waiting on anything outside, so both cost one commit, and each is still its own
        event, published once committed)."""
        attempt = run.attempt if attempt is None else attempt
        if run.decided and attempt != run.attempt:
            await self._commit(run)  # the steps of one commit share their attempt
        run.decided.append(StatusStep(to, details, fields or None))
        run.status = to
        if not later:
            await self._commit(run, attempt)

    async def _commit(self, run: _Run, attempt: int | None = None) -> None:
        """Commit the steps decided so far in one go, then publish each, in order."""
        if not run.decided:
            return
        steps, run.decided = run.decided, []
        events = await self._ports.orders.advance(
            run.order_id, steps, attempt=run.attempt if attempt is None else attempt, expected_seq=run.seq
        )
        for event in events:
            previous, run.committed, run.seq = run.committed, event.status, event.seq
            since, run.since = run.since, event.timestamp
            self._ports.metrics.stage(previous, event.status, max(0.0, (event.timestamp - since).total_seconds()))
        for event in events:
            try:
                await self._ports.events.publish(event)
            except Exception:  # noqa: BLE001 — committed already; followers replay from the store
                log.debug("order %s: publish of seq %d failed", run.order_id, event.seq, exc_info=True)

    async def _route(self, run: _Run, order: OrderRecord, started_at: float | None) -> Route:
        try:
            decision = await self._ports.router.route(order.token_in, order.token_out, order.amount_in)
        except EngineUnavailable as exc:  # dead, restarting or stuck: route again after the backoff
            raise OrderFailure("ROUTER_UNAVAILABLE", str(exc)[:300], True) from exc
        details = routing_details(decision, started_at)
        if decision.route is None:
            # The routing happened and found nothing: show it, then fail or retry.
            await self._transition(run, OrderStatus.ROUTING, details)
            failure = decision.failure
            assert failure is not None
            raise OrderFailure.of(failure)
        route = decision.route
        run.dex = venues_of(route)
        await self._transition(
            run, OrderStatus.ROUTING, details, later=True,  # with the building (and submitting) that follows
            route=route.to_dict(), dex=run.dex, pool_id=",".join(route.pool_ids),
        )  # fmt: skip
        return route

    async def _build(self, run: _Run, order: OrderRecord, route: Route) -> ExecutionPlan:
        if order.type == "limit":
            # Exactly the limit as the minimum out: never worse, whatever the route pays now.
            min_out = int((order.trigger or {})["thresholdOut"])
            if route.amount_out < min_out:
                raise OrderFailure(
                    "SLIPPAGE_EXCEEDED",
                    f"the market moved back: the best route pays {route.amount_out}, the limit needs {min_out}",
                    True,
                )
        else:
            min_out = route.amount_out * (10_000 - order.slippage_bps) // 10_000
        bound = (order.trigger or {}).get("maxPriceImpactBps") if order.type == "sniper" else None
        if bound is not None and route.price_impact_bps > bound:
            raise OrderFailure(
                "PRICE_IMPACT_TOO_HIGH",
                f"the launch pool would move {route.price_impact_bps:.0f} bps, the sniper allows {bound}",
                False,
            )
        plan = ExecutionPlan(route, min_out)
        details = building_details(plan, self._tokens[order.token_out], order.slippage_bps)
        if self._landing is not None:
            await self._commit(run)  # the routing is shown while the chain is asked for its terms
            terms = await self._landing.terms(order, plan)
            plan = replace(plan, tx=terms.to_json())
            details["transaction"] = terms.details()
        await self._transition(run, OrderStatus.BUILDING, details, later=True, route=plan.to_json())  # with submitted
        return plan

    async def _submit(self, run: _Run, plan: ExecutionPlan) -> ExecutionPlan:
        window = self._config.timing.tx_expiry_s if plan.tx is None else float(plan.tx["expires_in_s"])
        expires_at = self._ports.clock.time() + window
        plan = plan.submitted(expires_at, run.attempt, run.order_id)
        details: dict[str, Any] = {"txSignature": plan.signature, "expiresAt": expires_at}
        if plan.tx is not None:
            details.update(recentBlockhash=plan.tx["blockhash"], lastValidBlockHeight=plan.tx["last_valid_block_height"])
        await self._transition(
            run, OrderStatus.SUBMITTED, details, route=plan.to_json(), tx_signature=plan.signature
        )
        return plan

    async def _confirm(self, run: _Run, order: OrderRecord, plan: ExecutionPlan, fills: list[Fill],
                       landing: dict[str, Any] | None = None) -> RunOutcome:  # fmt: skip
        settlement = settle(plan, fills, self._tokens[order.token_in], self._tokens[order.token_out])
        details = confirmed_details(settlement, self._tokens, order.token_in, order.token_out, plan.dex)
        details.update(landing or {})
        stored = {} if not landing else {"route": {**plan.to_json(), "landing": _landing_record(landing)}}
        await self._transition(
            run, OrderStatus.CONFIRMED, details, **stored,
            amount_out=settlement.amount_out, executed_price=settlement.price, fee=settlement.fee_in,
            price_impact_bps=settlement.price_impact_bps, dex=plan.dex, tx_signature=settlement.signature,
        )  # fmt: skip
        self._finished(run, OrderStatus.CONFIRMED, plan.dex)
        return RunOutcome("confirmed")

    async def _fail_attempt(self, run: _Run, failure: OrderFailure) -> RunOutcome:
        rejection = failure.rejection
        delay = self._config.retry.delay_before(run.attempt + 1) if rejection.transient else None
        chain = failure.details.get("chain")
        info = {**error_details(rejection), **{k: v for k, v in failure.details.items() if k != "chain"}}
        if run.status in (OrderStatus.PENDING, OrderStatus.TRIGGERED):
            # Failed before routing was recorded: record the attempt, so it counts.
            await self._transition(run, OrderStatus.ROUTING, {"error": info})
        if run.kind == "limit" and rejection.code == "SLIPPAGE_EXCEEDED":
            # The limit is not paid any more: armed again, its attempts counted afresh.
            await self._transition(run, OrderStatus.OPEN, {"rearmed": True, "error": info}, attempt=0)
            await self._ports.triggers.arm(run.order_id)
            return RunOutcome("open")
        if delay is not None:
            details = {"retry": True, "nextAttempt": run.attempt + 1, "retryInS": delay, "error": info,
                       **_landing_of(chain)}  # fmt: skip
            await self._transition(run, OrderStatus.PENDING, details)
            self._ports.metrics.retried(rejection.code)
            return RunOutcome("pending", retry_in=delay)
        details = {"error": info, "attempts": run.attempt, **_landing_of(chain)}
        await self._transition(
            run, OrderStatus.FAILED, details, error_code=rejection.code, error_message=rejection.message
        )
        self._finished(run, OrderStatus.FAILED, run.dex or "none")
        return RunOutcome("failed")

    def _finished(self, run: _Run, status: OrderStatus, dex: str) -> None:
        age = self._ports.clock.time() - run.created_at.timestamp()
        self._ports.metrics.finished(status, dex, max(0.0, age))


def _landing_record(landing: dict[str, Any]) -> dict[str, Any]:
    """What the order row keeps of where its transaction landed (the order view shows it)."""
    keep = ("slot", "blockHeight", "blockTime", "landedAt", "finalizesAt", "fees", "computeUnitsConsumed",
            "resends", "sandwiched")  # fmt: skip
    return {key: landing[key] for key in keep if key in landing}


def _landing_of(chain: dict[str, Any] | None) -> dict[str, Any]:
    """A failed attempt's chain side: where it landed and the fees it paid (fees: only when it landed)."""
    if not chain:
        return {}
    return {"chain": chain, **({"fees": chain["fees"], "slot": chain["slot"]} if chain.get("fees") else {})}


def _stored_route(order: OrderRecord) -> Route:
    if not order.route:
        # Routed and found nothing, then stopped before the failure was recorded.
        raise OrderFailure("ENGINE_ERROR", "the routing left no route; routing again", True)
    return route_from_json(order.route)
