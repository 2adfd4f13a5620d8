"""The ports the application layer runs on: what it needs, not who provides it.

Adapters implement them (``storage/`` on PostgreSQL and Redis, ``actors/`` on
Ray); unit tests implement them in memory. Nothing here imports an adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sim.orders import OrderStatus

from engine.lifecycle_figures import ExecutorFigures
from engine.candles import PoolCandles
from engine.plans import Fill, HeldPool, Rejection, SwapOrder
from sim.decision import PoolSummary, RouteDecision
from engine.records import NewOrder, OldestOpenOrder, OrderRecord, StatusEvent, StatusStep, TradeRecord


class OrderBook(Protocol):
    """The orders and their status history: the source of truth."""

    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def transition(
        self,
        order_id: str,
        to: OrderStatus,
        *,
        attempt: int,
        details: dict[str, Any],
        fields: Mapping[str, Any] | None = None,
        expected_seq: int | None = None,
    ) -> StatusEvent:
        """Commit one status change (compare-and-set on ``expected_seq``); raises StaleTransition."""
        ...

    async def advance(
        self, order_id: str, steps: Sequence[StatusStep], *, attempt: int, expected_seq: int | None = None
    ) -> list[StatusEvent]:
        """Commit several status changes at once, each its own event (compare-and-set as ``transition``)."""
        ...


class OrderIntake(Protocol):
    """Storing a new order with its first history row, idempotently."""

    async def create_order(
        self,
        order: NewOrder,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        client_id: str | None = None,
    ) -> tuple[OrderRecord, StatusEvent | None]:
        """The stored order and its first event; no event when the idempotency key named an earlier order."""
        ...

    async def history(self, order_id: str, after_seq: int = 0) -> list[StatusEvent]: ...


class TradeLedger(Protocol):
    """The trades recorded against pools (a leg's fill, once recorded, is final)."""

    async def trade_for_order(self, order_id: str, leg: int = 0) -> TradeRecord | None: ...


class EventFeed(Protocol):
    """Publishing committed status changes to whoever follows the order."""

    async def publish(self, event: StatusEvent) -> int: ...


class EventSubscriptions(Protocol):
    """Live events, decoded. Once a context yields, every event published afterwards is delivered, until
    its iterator ends or raises (``engine.errors.SubscriptionLost`` when the connection or the reader fails)."""

    def subscribe(self, order_id: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...

    def subscribe_all(self) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...


class WorkQueue(Protocol):
    """The queue of orders waiting to be run."""

    async def enqueue(self, order_id: str) -> str: ...


class Router(Protocol):
    async def route(self, token_in: str, token_out: str, amount_in: int) -> RouteDecision:
        """Raises ``engine.errors.EngineUnavailable`` when the router does not answer in time."""
        ...


class VenueUnavailable(Exception):
    """A pool did not answer (dead, restarting or too slow): the outcome is unknown."""


class Venues(Protocol):
    """The pools, by id. Every call raises :class:`VenueUnavailable` when the pool does not answer."""

    async def swap(self, pool_id: str, order: SwapOrder, *, timeout: float) -> Fill | Rejection: ...

    async def hold(
        self, pool_id: str, order_id: str, *, lease_s: float, give_up_at: float, timeout: float
    ) -> HeldPool | Rejection: ...

    async def release(self, pool_id: str, order_id: str, *, timeout: float) -> None: ...


class ChainUnavailable(Exception):
    """The chain did not answer (dead, restarting or stuck): whether a transaction landed is unknown."""


class ChainPort(Protocol):
    """The simulated chain as the executor sees it: an RPC node. Both calls raise :class:`ChainUnavailable`."""

    async def prepare(self, pool_ids: tuple[str, ...], *, priority_fee: str | int | None,
                      max_priority_fee_lamports: int | None, jito_tip_lamports: int) -> Any:
        """``engine.chain_tx.TxTerms``: a recent blockhash, the CU limit of these pools' swap, the CU price
        of the fee asked (a level from recent fees, or micro-lamports per CU; None: the default)."""
        ...

    async def transact(self, tx: Any, *, timeout: float) -> Any:
        """Send ``tx`` (a ``sim.chain.Transaction``; again: no change) and wait until it lands or expires:
        ``engine.chain_tx.Landing``. A transaction the chain finished already answers its outcome."""
        ...


class TriggerArming(Protocol):
    """The trigger book as the lifecycle sees it: an order just committed ``open`` is to be armed.

    Best effort: a book that did not hear of it arms it from the store when it (re)starts."""

    async def arm(self, order_id: str) -> None: ...


class Clock(Protocol):
    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LifecycleMetrics(Protocol):
    def stage(self, previous: OrderStatus, to: OrderStatus, seconds: float) -> None: ...

    def retried(self, code: str) -> None: ...

    def finished(self, status: OrderStatus, dex: str, seconds: float) -> None: ...


class PoolLedger(TradeLedger, Protocol):
    """A pool's genesis and trades: the state it rebuilds itself from."""

    async def ensure_genesis(self, pool_id: str, snapshot: Mapping[str, Any]) -> dict[str, Any]: ...

    async def latest_state(self, pool_id: str) -> dict[str, Any] | None: ...

    async def latest(self, pool_id: str) -> tuple[int, dict[str, Any] | None]:
        """The last trade's seq (0: none) and the state then (else the genesis)."""
        ...

    async def record_trade(self, pool_id: str, **trade: Any) -> TradeRecord: ...


class UnfinishedOrders(Protocol):
    async def unfinished_orders(self, older_than_s: float = 0, *, limit: int | None = None) -> list[OrderRecord]: ...

    async def oldest_unfinished(self) -> OldestOpenOrder | None:
        """The non-final order accepted first (the liveness figure); None when every order is final."""
        ...


class DispatchQueue(WorkQueue, Protocol):
    """The queue as its consumer sees it: deliveries to ack, retries to defer, lost ones to reclaim."""

    async def ensure_group(self) -> None: ...

    async def read(self, consumer: str, count: int = 1, block_ms: int | None = None) -> list[tuple[str, str]]: ...

    async def ack(self, msg_id: str) -> bool: ...

    async def defer(self, msg_id: str, order_id: str, due_at: float) -> None: ...

    async def promote_due(self, now: float) -> int: ...

    async def next_due(self) -> float | None: ...

    async def pending_for(self, consumer: str, *, batch: int = 100) -> list[tuple[str, str]]: ...

    async def claim_stale(self, consumer: str, min_idle_ms: int, *, count: int = 100) -> list[tuple[str, str]]: ...

    async def queued_order_ids(self, *, batch: int = 1000) -> set[str]: ...

    async def depth(self) -> Any: ...


class StartLimiter(Protocol):
    async def hit(self, client_id: str) -> tuple[bool, float]: ...


class LaunchedMarket(Protocol):
    """The tokens and pools launched during a run (``storage.market.LaunchStore``)."""

    async def tokens(self) -> list[Any]: ...

    async def pools(self) -> list[tuple[str, str, str]]: ...


@dataclass(frozen=True, slots=True)
class ExecutorStores:
    orders: OrderBook
    trades: TradeLedger
    events: EventFeed
    launches: LaunchedMarket | None = None


@dataclass(frozen=True, slots=True)
class DispatcherStores:
    orders: UnfinishedOrders
    queue: DispatchQueue
    starts: StartLimiter


@dataclass(frozen=True, slots=True)
class TriggerStores:
    orders: Any  # engine.waiting.TriggerOrders
    events: EventFeed
    queue: Any  # engine.waiting.LaneQueue
    launches: LaunchedMarket | None = None


class Connector(Protocol):
    """Opens the stores each engine process needs; handed to the actors by the composition root.

    It must pickle (it travels to Ray workers): it carries addresses, not connections.
    """

    async def executor_stores(self, slots: int = 1) -> ExecutorStores: ...

    async def pool_ledger(self) -> PoolLedger: ...

    async def dispatcher_stores(self, *, starts_per_window: int, window_s: float) -> DispatcherStores: ...

    async def trigger_stores(self) -> TriggerStores: ...

    async def launch_store(self) -> Any:
        """``storage.market.LaunchStore`` on a small pool of its own."""
        ...


class EngineGateway(Protocol):
    """What the API needs from the running engine: route previews, pools, dispatcher figures, health.

    Implementations raise ``engine.errors.EngineUnavailable`` when the engine does not answer.
    """

    async def route(self, token_in: str, token_out: str, amount_in: int) -> RouteDecision:
        """The router's answer now (base units), without executing anything."""
        ...

    async def pool_summaries(self) -> list[PoolSummary]: ...

    async def dispatcher_stats(self) -> dict[str, Any]:
        """``{running, concurrency, rateLimitPerMinute, started, completed, failed, retried}``."""
        ...

    async def health(self) -> dict[str, Any]:
        """``{"ok": bool, ...}``; never raises."""
        ...

    async def disarm(self, order_id: str) -> bool:
        """Take a cancelled order out of the trigger book (it would not fire anyway: the store says cancelled)."""
        ...

    async def trigger_stats(self) -> dict[str, Any]: ...

    async def executor_figures(self) -> list[ExecutorFigures]:
        """Every executor's figures; one that does not answer is listed with ``lifecycle`` None
        (this never raises for one executor)."""
        ...

    async def shock_token(self, symbol: str, move_bps: float) -> tuple[float, float]:
        """Move the market's reference price of a token (USD before, after)."""
        ...

    async def shock_pool(self, pool_id: str, move_bps: float) -> dict[str, Any]:
        """Move one pool's price with a real trade, recorded as a shock."""
        ...

    async def launch(self, request: dict[str, Any]) -> dict[str, Any]:
        """Open a new token's first pool now: ``{token, poolId, dex}``; raises ``engine.errors.LaunchRefused``."""
        ...

    async def chain_info(self) -> dict[str, Any]:
        """The chain now (slot, height, congestion, recent fees, counts); ``engine.errors.ChainOff`` when off."""
        ...

    async def set_congestion(self, preset: str) -> dict[str, Any]:
        """Switch the chain's congestion preset now; its info after. ``ChainOff`` when off."""
        ...

    async def close(self) -> None: ...


class RateWindows(Protocol):
    """Sliding windows shared by every process (one per ``prefix`` and key)."""

    def window(self, *, limit: int, window_s: float, prefix: str) -> StartLimiter: ...


class StoreHealth(Protocol):
    """Probes of what the API stands on; each raises when its store does not answer."""

    async def ping_database(self) -> None: ...

    async def ping_redis(self) -> None: ...


class OrderReads(Protocol):
    """What the API reads of the orders."""

    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def history(self, order_id: str, after_seq: int = 0) -> list[StatusEvent]: ...

    async def list_orders(
        self, *, status: Any = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[OrderRecord], str | None]: ...

    async def oldest_unfinished(self) -> OldestOpenOrder | None: ...


class OrderFigures(Protocol):
    async def count_by_status_and_dex(self) -> dict[tuple[str, str], int]:
        """Orders by (current status, DEX); ``none`` for those not routed yet."""
        ...


class QueueFigures(Protocol):
    async def depth(self) -> Any:
        """waiting, pending, delayed (``storage.queue.QueueDepth``)."""
        ...


class ApiOrderStore(OrderIntake, OrderReads, Protocol):
    """The order store as the API uses it: taking orders in, reading them back, cancelling."""

    async def transition(self, order_id: str, to: OrderStatus, *, attempt: int, details: dict[str, Any],
                         expected: Any = None, expected_seq: int | None = None) -> StatusEvent: ...  # fmt: skip


class ApiQueue(WorkQueue, QueueFigures, Protocol):
    """The queue as the API uses it: queueing accepted orders, showing its depth."""


class ApiFeed(EventFeed, EventSubscriptions, Protocol):
    """The event feed as the API uses it: publishing the first event, following an order."""


class TradeHistory(Protocol):
    """What the API reads of the pools' recorded trades."""

    async def candles(
        self, pool_id: str, *, interval: timedelta, start: datetime, end: datetime
    ) -> PoolCandles | None:
        """The pool's trades with ``start <= created_at < end`` per bucket of ``interval`` (buckets start on
        multiples of it since the Unix epoch); None when no such pool was ever opened."""
        ...
