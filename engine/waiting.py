"""Orders that wait for the market, and the trigger desk that arms, fires and expires them.

The pure book (``sim.triggers``) decides which armed orders fire on a price
event; the desk turns its decisions into the store's truth. A firing is a
compare-and-set from ``open`` to ``triggered``, so an order fires at most
once whatever is redelivered or raced (a cancel, an expiry, a second
desk); it is committed before it is published and queued, and a queue that
lost it is covered by the dispatcher's sweep (``triggered`` is an active
status). The desk is rebuilt from the store's open orders whenever it starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from sim.launches import Sniper, SniperBook, liquidity_in
from sim.orders import OrderStatus
from sim.pools import Pool
from sim.routing import Route
from sim.tokens import Token, TokenRegistry
from sim.triggers import Firing, Trigger, TriggerBook, TriggerKind

from engine.errors import StaleTransition
from engine.ports import Clock, EventFeed
from engine.records import OrderRecord, StatusEvent, iso

log = logging.getLogger(__name__)

# Fired into the queue's priority lane: an order that protects a position runs first.
PRIORITY_TYPES = frozenset({"stop_loss", "trailing_stop", "sniper"})
DEFAULT_TRIGGERED_SLIPPAGE_BPS = 500  # stop-loss, take-profit and trailing stop execute as market orders
DEFAULT_LIFETIME_S = 24 * 3600.0
MAX_LIFETIME_S = 30 * 24 * 3600.0

QuoteFn = Callable[[int], Route | None]


def stored_trigger(
    kind: str, *, price: Decimal | None, threshold_out: int, trailing_bps: int | None = None
) -> dict[str, Any]:
    """What a waiting order's ``trigger`` column keeps: the price as asked and its exact meaning."""
    TriggerKind(kind)  # refuses what the book cannot hold
    trigger: dict[str, Any] = {"kind": kind, "thresholdOut": str(threshold_out)}
    if price is not None:
        trigger["price"] = format(price, "f")
    if trailing_bps is not None:
        trigger["trailingBps"] = trailing_bps
    return trigger


def stored_sniper(token_ref: str, *, min_liquidity: Decimal, max_price_impact_bps: int) -> dict[str, Any]:
    """A sniper's ``trigger``: the token it waits for (as the client named it) and its bounds."""
    return {"kind": "sniper", "tokenRef": token_ref, "minLiquidity": format(min_liquidity, "f"),
            "maxPriceImpactBps": max_price_impact_bps}  # fmt: skip


def sniper_of(order: OrderRecord) -> Sniper:
    stored = order.trigger or {}
    return Sniper(
        order_id=order.id, token_ref=str(stored["tokenRef"]), token_in=order.token_in,
        min_liquidity=Decimal(str(stored["minLiquidity"])),
        expires_at=order.expires_at.timestamp() if order.expires_at else float("inf"),
    )  # fmt: skip


def trigger_of(order: OrderRecord) -> Trigger:
    """The book's view of a stored waiting order."""
    stored = order.trigger or {}
    high = stored.get("highOut")
    return Trigger(
        order_id=order.id,
        kind=TriggerKind(stored["kind"]),
        token_in=order.token_in,
        token_out=order.token_out,
        amount_in=order.amount_in,
        threshold_out=int(stored.get("thresholdOut") or 0),
        expires_at=order.expires_at.timestamp() if order.expires_at else float("inf"),
        trailing_bps=int(stored.get("trailingBps") or 0),
        high_out=None if high is None else int(high),
    )


def human_price(amount_in: int, amount_out: int, token_in: Token, token_out: Token) -> str:
    """tokenOut per one tokenIn, in token units, as a decimal string (12 significant digits)."""
    if amount_in <= 0:
        return "0"
    price = (Decimal(amount_out) / token_out.one) / (Decimal(amount_in) / token_in.one)
    if price == 0:
        return "0"
    return format(price.quantize(Decimal(1).scaleb(price.adjusted() - 11)).normalize(), "f")


def waiting_for(order: OrderRecord, tokens: TokenRegistry) -> dict[str, Any]:
    """What an armed order waits for, as its ``open`` event and the order view show it."""
    stored = order.trigger or {}
    view: dict[str, Any] = {"type": order.type}
    if order.type == "sniper":
        view.update(token=stored.get("tokenRef"), minLiquidity=stored.get("minLiquidity"),
                    maxPriceImpactBps=stored.get("maxPriceImpactBps"))  # fmt: skip
        if order.expires_at is not None:
            view["expiresAt"] = iso(order.expires_at)
        return view
    if order.token_in not in tokens or order.token_out not in tokens:  # a token this process has not learnt
        return {**view, **{k: v for k, v in stored.items() if k != "kind"}}
    t_in, t_out = tokens[order.token_in], tokens[order.token_out]
    threshold = int(stored.get("thresholdOut") or 0)
    if order.type == "limit":
        view["limitPrice"] = stored.get("price")
        view["minAmountOut"] = _human(threshold, t_out)
    elif order.type == "trailing_stop":
        view["trailingBps"] = stored.get("trailingBps")
        if stored.get("highOut") is not None:
            high = int(stored["highOut"])
            view["highPrice"] = human_price(order.amount_in, high, t_in, t_out)
            view["triggerPrice"] = human_price(order.amount_in, _trailing_out(high, view["trailingBps"]), t_in, t_out)
    else:
        view["triggerPrice"] = stored.get("price")
        view["triggerAmountOut"] = _human(threshold, t_out)
    if order.expires_at is not None:
        view["expiresAt"] = iso(order.expires_at)
    return view


def _trailing_out(high_out: int, trailing_bps: int) -> int:
    return high_out * (10_000 - trailing_bps) // 10_000


def _human(units: int, token: Token) -> str:
    return format((Decimal(units) / token.one).normalize(), "f")


class TriggerOrders(Protocol):
    """The order store as the desk uses it."""

    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def open_orders(self, *, after: str | None = None, batch: int = 1000) -> list[OrderRecord]: ...

    async def open_order_ids(self) -> set[str]: ...

    async def transition(self, order_id: str, to: OrderStatus, *, attempt: int, details: dict[str, Any],
                         expected: Any = None, fields: Mapping[str, Any] | None = None,
                         expected_seq: int | None = None) -> StatusEvent: ...  # fmt: skip

    async def record_trailing_highs(self, highs: Mapping[str, Mapping[str, Any]]) -> int: ...


class LaneQueue(Protocol):
    async def enqueue(self, order_id: str, *, priority: bool = False) -> str: ...


@dataclass
class DeskFigures:
    armed: int = 0
    fired: int = 0
    expired: int = 0
    stale: int = 0  # firings or expiries the store refused (cancelled or moved meanwhile)
    events: int = 0  # price events absorbed


class TriggerDesk:
    def __init__(self, orders: TriggerOrders, events: EventFeed, queue: LaneQueue, tokens: TokenRegistry,
                 clock: Clock, book: TriggerBook | None = None, *, fire_concurrency: int = 8) -> None:  # fmt: skip
        self._orders, self._events, self._queue = orders, events, queue
        self._tokens, self._clock = tokens, clock
        self.book = book or TriggerBook()
        self.snipers = SniperBook()
        self._types: dict[str, str] = {}  # order id -> order type, for the lane
        self._fire_slots = asyncio.Semaphore(fire_concurrency)
        self._unsaved: dict[str, int] = {}  # trailing highs taken from the book, not yet in the store
        self.figures = DeskFigures()

    async def rebuild(self) -> int:
        """Arm every open order the store holds (idempotent: armed ones stay as they are)."""
        count, after, batch = 0, None, 1000
        while True:
            page = await self._orders.open_orders(after=after, batch=batch)
            for order in page:
                count += self.arm(order)
            if len(page) < batch:
                return count
            after = page[-1].id

    async def reconcile(self) -> int:
        """Arm the open orders the book does not hold (an arm call lost on its way); cheap when none is
        missing: one query of ids. Nothing is disarmed here: a firing's compare-and-set settles the rest."""
        missing = [i for i in await self._orders.open_order_ids() if i not in self.book and i not in self.snipers]
        count = 0
        for order_id in missing:
            count += await self.arm_by_id(order_id)
        return count

    def arm(self, order: OrderRecord) -> bool:
        if order.status != OrderStatus.OPEN or order.trigger is None:
            return False
        if order.type == "sniper":
            armed = self.snipers.arm(sniper_of(order))
        else:
            armed = self.book.arm(trigger_of(order))
        if armed:
            self._types[order.id] = order.type
            self.figures.armed += 1
        return armed

    async def arm_by_id(self, order_id: str) -> bool:
        order = await self._orders.get_order(order_id)
        return order is not None and self.arm(order)

    def disarm(self, order_id: str) -> bool:
        self._types.pop(order_id, None)
        return self.book.disarm(order_id) is not None or self.snipers.disarm(order_id) is not None

    async def pools_opened(self, pools: Iterable[Pool]) -> list[str]:
        """Pools that opened (launches): fire the snipers each satisfies, ahead of the queue."""
        fired: list[str] = []
        for pool in pools:
            for sniper, token in self.snipers.opened(pool):
                self._types.pop(sniper.order_id, None)
                details = {
                    "poolId": pool.pool_id, "token": {"symbol": token.symbol, "mint": token.mint},
                    "liquiditySeen": format(liquidity_in(pool, sniper.token_in).quantize(Decimal("0.000001")), "f"),
                    "seenAt": iso(datetime.fromtimestamp(self._clock.time(), UTC)),
                }  # fmt: skip
                fields = {"token_out": token.symbol, "mint_out": token.mint}
                if await self._fire_order(sniper.order_id, details, priority=True, fields=fields):
                    fired.append(sniper.order_id)
        return fired

    async def prices_moved(self, moves: Iterable[tuple[str, str, QuoteFn]]) -> list[str]:
        """Each direction's pools moved: fire what the book says fires now. Returns the fired ids."""
        firings: list[Firing] = []
        for token_in, token_out, quote in moves:
            self.figures.events += 1
            firings += self.book.on_prices(token_in, token_out, quote)
        if not firings:
            return []
        seen_at = datetime.fromtimestamp(self._clock.time(), UTC)
        done = await asyncio.gather(*(self._fire(firing, seen_at) for firing in firings))
        return [firing.trigger.order_id for firing, ok in zip(firings, done) if ok]

    async def _fire(self, firing: Firing, seen_at: datetime) -> bool:
        trigger = firing.trigger
        route = firing.quoted
        t_in, t_out = self._tokens[trigger.token_in], self._tokens[trigger.token_out]
        details: dict[str, Any] = {
            "priceSeen": human_price(trigger.amount_in, firing.amount_out, t_in, t_out),
            "amountOutSeen": _human(firing.amount_out, t_out),
            "poolId": ",".join(route.pool_ids) if isinstance(route, Route) else None,
            "seenAt": iso(seen_at),
        }
        if trigger.kind == TriggerKind.TRAILING_STOP and trigger.high_out is not None:
            details["highPrice"] = human_price(trigger.amount_in, trigger.high_out, t_in, t_out)
        order_type = self._types.pop(trigger.order_id, trigger.kind.value)
        return await self._fire_order(trigger.order_id, details, priority=order_type in PRIORITY_TYPES)

    async def _fire_order(self, order_id: str, details: dict[str, Any], *, priority: bool,
                          fields: dict[str, Any] | None = None) -> bool:  # fmt: skip
        async with self._fire_slots:
            event = await self._move(order_id, OrderStatus.TRIGGERED, details, fields)
            if event is None:
                return False
            self.figures.fired += 1
            await self._publish(event)
            try:
                await self._queue.enqueue(order_id, priority=priority)
            except Exception:  # noqa: BLE001 — triggered is active: the dispatcher's sweep queues it
                log.warning("order %s: queueing the triggered order failed; the sweep will", order_id)
        return True

    def next_expiry(self) -> float | None:
        dues = [due for due in (self.book.next_expiry(), self.snipers.next_expiry()) if due is not None]
        return min(dues, default=None)

    async def expire_due(self) -> list[str]:
        now = self._clock.time()
        expired = [t.order_id for t in self.book.expire(now)] + [s.order_id for s in self.snipers.expire(now)]
        done: list[str] = []
        for order_id in expired:
            self._types.pop(order_id, None)
            event = await self._move(order_id, OrderStatus.EXPIRED, {"expiredAt": iso(datetime.now(UTC))})
            if event is not None:
                self.figures.expired += 1
                await self._publish(event)
                done.append(order_id)
        return done

    async def save_highs(self) -> int:
        """Keep the trailing stops' high-water marks, so that a restarted desk trails from them."""
        self._unsaved.update(self.book.take_moved_highs())
        if not self._unsaved:
            return 0
        highs = {order_id: {"highOut": str(high)} for order_id, high in self._unsaved.items()}
        try:
            saved = await self._orders.record_trailing_highs(highs)
        except Exception:  # noqa: BLE001 — kept for the next save
            log.warning("saving %d trailing highs failed", len(highs), exc_info=True)
            return 0
        self._unsaved.clear()
        return saved

    async def _move(self, order_id: str, to: OrderStatus, details: dict[str, Any],
                    fields: dict[str, Any] | None = None) -> StatusEvent | None:  # fmt: skip
        try:
            return await self._orders.transition(
                order_id, to, attempt=0, details=details, expected=OrderStatus.OPEN, fields=fields
            )
        except StaleTransition:
            self.figures.stale += 1  # cancelled, expired or fired meanwhile: theirs is the truth
            return None

    async def _publish(self, event: StatusEvent) -> None:
        try:
            await self._events.publish(event)
        except Exception:  # noqa: BLE001 — committed already; followers replay from the store
            log.debug("order %s: publish of seq %d failed", event.order_id, event.seq, exc_info=True)
