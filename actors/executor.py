"""OrderExecutor: runs one order's lifecycle at a time.

``run`` is idempotent: it reads where the order stands in PostgreSQL and
carries on from there, so a redelivered order (an executor killed mid-order,
an engine restart) resumes instead of starting over. A swap is re-sent to the
same pool under the same (order id, leg) key, which the pool fills at most
once. Every status change is committed before it is published.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from decimal import Decimal
from typing import Any

import ray

from actors import metrics
from actors.pool_actor import fill_from_trade
from engine.settings import EngineSettings
from sim.orders import OrderStatus, RetryPolicy, transaction_signature
from sim.pools import restore_pool
from sim.pools.base import SimError
from sim.tokens import TokenRegistry, format_units, from_base_units


log = logging.getLogger(__name__)


def executor_name(index: int) -> str:
    return f"executor:{index}"


class _Failure(Exception):
    """An attempt that did not fill: ``transient`` ones are retried."""

    def __init__(self, code: str, message: str, transient: bool, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.details = details or {}


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=4)
class OrderExecutor:
    def __init__(
        self,
        index: int,
        router: Any,
        pools: dict[str, Any],
        settings: dict[str, Any],
    ) -> None:
        self.index = index
        self._router = router
        self._pools = pools
        self._settings = EngineSettings.from_actor_dict(settings)
        r = self._settings.retry
        self._retry = RetryPolicy(r.max_retries, r.base_delay_s, r.factor)
        self._tokens = TokenRegistry()
        self._store = None
        self._bus = None
        self._connect_lock = asyncio.Lock()
        self._seq: dict[str, int] = {}  # order id -> last seq this run saw (CAS guard)
        self._status: dict[str, OrderStatus] = {}  # order id -> its status as this run left it
        self._since: dict[str, Any] = {}  # order id -> when its last status was committed

    async def _connect(self) -> None:
        async with self._connect_lock:
            if self._store is not None:
                return
            from storage.db import open_pool
            from storage.events import EventBus
            from storage.orders import OrderStore
            from storage.redis_client import open_redis
            from storage.trades import PoolTradeStore

            db = await open_pool(self._settings.database_url, min_size=1, max_size=2)
            self._bus = EventBus(open_redis(self._settings.redis_url))
            self._store = OrderStore(db)
            self._trades = PoolTradeStore(db)

    async def ready(self) -> int:
        await self._connect()
        return self.index

    async def run(self, order_id: str, started_at: float | None = None) -> dict[str, Any]:
        """Drive an order as far as it goes now.

        Returns ``{"status": final status}``, ``{"status": "pending", "retryIn":
        seconds}`` when a transient failure sent it back to the queue, or
        ``{"status": "error", "retryIn": seconds}`` when the order could not
        even be recorded (PostgreSQL away): the dispatcher tries it again later.
        Nothing is raised: exceptions do not cross process boundaries here.
        """
        try:
            return await self._run(order_id, started_at)
        except Exception as exc:  # noqa: BLE001
            log.exception("order %s: could not run", order_id)
            return {"status": "error", "retryIn": 2.0, "message": f"{type(exc).__name__}: {exc}"[:300]}

    async def _run(self, order_id: str, started_at: float | None) -> dict[str, Any]:
        await self._connect()
        order = await self._store.get_order(order_id)
        if order is None:
            return {"status": "missing"}
        status = OrderStatus(order.status)
        if status.is_final:
            return {"status": status.value}
        from storage.errors import StaleTransition

        metrics.running_executors().set(1, tags={"executor": str(self.index)})
        # The first attempt is queued with seq 1; a retry's pending row names the next one.
        fresh = status == OrderStatus.PENDING and order.seq > 1
        attempt = order.attempts + 1 if fresh else max(order.attempts, 1)
        self._seq[order.id] = order.seq
        self._status[order.id] = status
        self._since[order.id] = order.updated_at
        try:
            route = order.route
            if status == OrderStatus.PENDING:
                route = await self._route(order, attempt, started_at)
                status = OrderStatus.ROUTING
            if status == OrderStatus.ROUTING:
                route = await self._build(order, route, attempt)
                status = OrderStatus.BUILDING
            if status == OrderStatus.BUILDING:
                route = await self._submit(order, route, attempt)
            fills = await self._execute(order, route, attempt)
            return await self._confirm(order, route, fills, attempt)
        except _Failure as failure:
            return await self._fail_attempt(order, attempt, failure)
        except StaleTransition:
            # Someone else advanced this order meanwhile: theirs is the truth.
            current = await self._store.get_order(order_id)
            return {"status": current.status if current else "missing", "superseded": True}
        except Exception as exc:  # noqa: BLE001
            # The router or a pool could not answer (or a bug): a bounded retry,
            # so that the order still ends confirmed or failed.
            failure = _Failure("ENGINE_ERROR", f"{type(exc).__name__}: {exc}"[:300], True)
            return await self._fail_attempt(order, attempt, failure)
        finally:
            self._seq.pop(order.id, None)
            self._status.pop(order.id, None)
            self._since.pop(order.id, None)
            metrics.running_executors().set(0, tags={"executor": str(self.index)})

    async def _transition(self, order: Any, to: OrderStatus, attempt: int, details: dict, **fields):
        event = await self._store.transition(
            order.id,
            to,
            attempt=attempt,
            details=details,
            fields=fields or None,
            expected_seq=self._seq[order.id],
        )
        self._seq[order.id] = event.seq
        previous, self._status[order.id] = self._status[order.id], to
        since, self._since[order.id] = self._since.get(order.id), event.timestamp
        if since is not None:
            stage = f"{previous}->{to}"
            metrics.stage_latency().observe(max(0.0, (event.timestamp - since).total_seconds()), tags={"stage": stage})
        await self._publish(event)
        return event

    async def _publish(self, event: Any) -> None:
        try:
            await self._bus.publish(event)
        except Exception:  # noqa: BLE001 — committed already; the WebSocket replays from PG
            pass

    async def _route(self, order: Any, attempt: int, started_at: float | None) -> dict:
        decision = await self._router.route.remote(order.token_in, order.token_out, order.amount_in)
        if decision["route"] is None:
            err = decision["error"]
            # The routing happened and found nothing: show it, then fail or retry.
            details = {
                "quotes": decision["quotes"],
                "skipped": decision["skipped"],
                "error": {"code": err["code"], "message": err["message"]},
                "startedAt": started_at,
            }
            await self._transition(order, OrderStatus.ROUTING, attempt, details)
            raise _Failure(err["code"], err["message"], err["transient"])
        route = decision["route"]
        winner = route["legs"][0]
        details = {
            "quotes": decision["quotes"],
            "skipped": decision["skipped"],
            "chosen": {
                "kind": route["kind"],
                "poolIds": [leg["pool_id"] for leg in route["legs"]],
                "dex": winner["dex"],
                "amountOut": str(route["amount_out"]),
            },
            "reason": decision.get("reason"),
            "startedAt": started_at,
        }
        await self._transition(
            order,
            OrderStatus.ROUTING,
            attempt,
            details,
            route=route,
            dex="+".join(sorted({leg["dex"] for leg in route["legs"]})),
            pool_id=",".join(leg["pool_id"] for leg in route["legs"]),
        )
        return route

    async def _build(self, order: Any, route: dict, attempt: int) -> dict:
        min_out = route["amount_out"] * (10_000 - order.slippage_bps) // 10_000
        route = {**route, "min_out": min_out}
        token_out = self._tokens[order.token_out]
        details = {
            "route": _route_summary(route),
            "expectedOut": format_units(route["amount_out"], token_out),
            "minOut": format_units(min_out, token_out),
            "slippageBps": order.slippage_bps,
        }
        await self._transition(order, OrderStatus.BUILDING, attempt, details, route=route)
        return route

    async def _submit(self, order: Any, route: dict, attempt: int) -> dict:
        expires_at = time.time() + self._settings.routing.tx_expiry_s
        signature = transaction_signature(order.id, route["legs"][0]["pool_id"], attempt)
        route = {**route, "expires_at": expires_at, "signature": signature}
        details = {"txSignature": signature, "expiresAt": expires_at}
        await self._transition(
            order, OrderStatus.SUBMITTED, attempt, details, route=route, tx_signature=signature
        )
        return route

    async def _execute(self, order: Any, route: dict, attempt: int) -> list[dict]:
        legs = route["legs"]
        if len(legs) == 1:
            leg = legs[0]
            return [await self._swap(order, route, 0, leg, leg["amount_in"], route["min_out"])]
        return await self._execute_atomic(order, route)

    async def _execute_atomic(self, order: Any, route: dict) -> list[dict]:
        """All legs of a split or two-hop route land together or not at all.

        After the transit delay, every pool of the route is held (in pool-id
        order), the whole route is re-checked on their current states against
        the order's min-out, and only then are the legs swapped, each at
        exactly the amount just checked.
        """
        latency = self._settings.latency
        if latency.execution_max_s > 0:
            await asyncio.sleep(random.uniform(latency.execution_min_s, latency.execution_max_s))
        legs = route["legs"]
        pool_ids = sorted({leg["pool_id"] for leg in legs})
        lease = self._settings.routing.pool_timeout_s * 4 + 5.0
        wait = self._settings.routing.pool_timeout_s * 4
        held: list[str] = []
        asked: list[str] = []
        try:
            states: dict[str, Any] = {}
            for pool_id in pool_ids:
                asked.append(pool_id)
                seen = await asyncio.wait_for(
                    self._pools[pool_id].hold.remote(order.id, lease, time.time() + wait), wait
                )
                if "error" in seen:
                    err = seen["error"]
                    raise _Failure("POOL_UNAVAILABLE", f"{pool_id}: {err['message']}", True)
                held.append(pool_id)
                states[pool_id] = (restore_pool(seen["snapshot"]), seen["now"])
            plan = await self._plan_legs(order, route, states)
            fills = []
            for index, (leg, amount_in, amount_out, recorded) in enumerate(plan):
                if recorded is not None:
                    fills.append(recorded)
                    continue
                result = await self._pools[leg["pool_id"]].swap.remote(
                    order.id, index, leg["token_in"], amount_in, amount_out,
                    route["expires_at"], route["signature"], True,
                )  # fmt: skip
                if "error" in result:
                    err = result["error"]
                    code = "PARTIAL_FILL" if fills else err["code"]
                    raise _Failure(code, err["message"], err["transient"] and not fills)
                fills.append(result)
            return fills
        except (asyncio.TimeoutError, ray.exceptions.RayActorError) as exc:
            raise _Failure("POOL_UNAVAILABLE", f"could not hold the route's pools: {exc!r}"[:200], True)
        finally:
            # Every pool asked, not only those that answered in time: a hold that
            # landed after we stopped waiting is ours too (release is a no-op else).
            for pool_id in asked:
                try:
                    await self._pools[pool_id].release.remote(order.id)
                except ray.exceptions.RayActorError:
                    pass  # it died, and its hold with it

    async def _plan_legs(self, order: Any, route: dict, states: dict[str, Any]) -> list[tuple]:
        """Exact amounts of each leg on the held states; SLIPPAGE_EXCEEDED if short."""
        plan = []
        chained = route["kind"] == "two_hop"
        amount = route["legs"][0]["amount_in"]
        total_out = 0
        for index, leg in enumerate(route["legs"]):
            amount_in = amount if chained else leg["amount_in"]
            recorded = await self._recorded_fill(order.id, index)  # a resumed route
            if recorded is not None:
                amount_out = recorded["amountOut"]
            else:
                pool, now = states[leg["pool_id"]]
                try:
                    amount_out = pool.swap_exact_in(leg["token_in"], amount_in, 0, now).amount_out
                except SimError as exc:
                    raise _Failure(exc.code, str(exc), exc.transient) from exc
            plan.append((leg, amount_in, amount_out, recorded))
            amount = amount_out
            total_out = amount_out if chained else total_out + amount_out
        if total_out < route["min_out"]:
            raise _Failure(
                "SLIPPAGE_EXCEEDED",
                f"slippage exceeded: the route would pay {total_out}, minimum was {route['min_out']}",
                True,
            )
        return plan

    async def _swap(
        self, order: Any, route: dict, index: int, leg: dict, amount: int, min_out: int
    ) -> dict:
        pool = self._pools[leg["pool_id"]]
        expires_at = route["expires_at"]
        wait = max(0.0, expires_at - time.time()) + self._settings.routing.pool_timeout_s
        try:
            result = await asyncio.wait_for(
                pool.swap.remote(
                    order.id, index, leg["token_in"], amount, min_out, expires_at, route["signature"]
                ),
                wait,
            )
        except (asyncio.TimeoutError, ray.exceptions.RayActorError) as exc:
            # The pool may or may not have filled before it died: PostgreSQL knows.
            result = await self._recorded_fill(order.id, index)
            if result is None:
                raise _Failure("POOL_UNAVAILABLE", f"{leg['pool_id']}: {type(exc).__name__}", True)
        if "error" in result:
            err = result["error"]
            raise _Failure(err["code"], err["message"], err["transient"])
        return result

    async def _recorded_fill(self, order_id: str, leg: int) -> dict | None:
        record = await self._trades.trade_for_order(order_id, leg)
        return None if record is None else fill_from_trade(record, existing=True)

    async def _confirm(self, order: Any, route: dict, fills: list[dict], attempt: int) -> dict:
        token_in = self._tokens[order.token_in]
        token_out = self._tokens[order.token_out]
        if route["kind"] == "two_hop":
            amount_out = fills[-1]["amountOut"]
            amount_in = fills[0]["amountIn"]
        else:
            amount_out = sum(f["amountOut"] for f in fills)
            amount_in = sum(f["amountIn"] for f in fills)
        human_in = from_base_units(amount_in, token_in)
        human_out = from_base_units(amount_out, token_out)
        price = (human_out / human_in).quantize(Decimal("1e-12")) if human_in else Decimal(0)
        fee_in = sum(f["fee"] for f in fills if f["tokenIn"] == order.token_in)
        impact = max((f.get("priceImpactBps") or 0.0) for f in fills)
        signature = route.get("signature") or fills[0]["txSignature"]
        dexes = sorted({leg["dex"] for leg in route["legs"]})
        details = {
            "amountOut": format_units(amount_out, token_out),
            "executedPrice": format(price.normalize(), "f") if price else "0",
            "fee": format_units(fee_in, token_in),
            "feeToken": order.token_in,
            "priceImpactBps": round(impact, 4),
            "dex": "+".join(dexes),
            "txSignature": signature,
            "fills": [
                {
                    "poolId": f["poolId"],
                    "amountIn": str(f["amountIn"]),
                    "amountOut": str(f["amountOut"]),
                    "fee": str(f["fee"]),
                }
                for f in fills
            ],
        }
        await self._transition(
            order,
            OrderStatus.CONFIRMED,
            attempt,
            details,
            amount_out=amount_out,
            executed_price=price,
            fee=fee_in,
            price_impact_bps=impact,
            dex="+".join(dexes),
            tx_signature=signature,
        )
        self._record_final(order, "confirmed", "+".join(dexes))
        return {"status": "confirmed"}

    async def _fail_attempt(self, order: Any, attempt: int, failure: _Failure) -> dict:
        delay = self._retry.delay_before(attempt + 1) if failure.transient else None
        info = {"code": failure.code, "message": failure.message, **failure.details}
        if self._status.get(order.id) == OrderStatus.PENDING:
            # Failed before routing was recorded: record the attempt, so it counts.
            await self._transition(order, OrderStatus.ROUTING, attempt, {"error": info})
        if delay is not None:
            details = {"retry": True, "nextAttempt": attempt + 1, "retryInS": delay, "error": info}
            await self._transition(order, OrderStatus.PENDING, attempt, details)
            metrics.order_retries().inc(tags={"code": failure.code})
            return {"status": "pending", "retryIn": delay}
        details = {"error": info, "attempts": attempt}
        await self._transition(
            order,
            OrderStatus.FAILED,
            attempt,
            details,
            error_code=failure.code,
            error_message=failure.message,
        )
        self._record_final(order, "failed", order.dex or "none")
        return {"status": "failed"}

    def _record_final(self, order: Any, status: str, dex: str) -> None:
        metrics.orders_finished().inc(tags={"status": status, "dex": dex})
        created = order.created_at.timestamp()
        metrics.order_latency().observe(max(0.0, time.time() - created), tags={"status": status})


def _route_summary(route: dict) -> dict:
    return {
        "kind": route["kind"],
        "legs": [
            {
                "poolId": leg["pool_id"],
                "dex": leg["dex"],
                "tokenIn": leg["token_in"],
                "tokenOut": leg["token_out"],
                "amountIn": str(leg["amount_in"]),
                "amountOut": str(leg["amount_out"]),
            }
            for leg in route["legs"]
        ],
    }
