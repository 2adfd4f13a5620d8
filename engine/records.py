"""The engine's records: what an order, a status change and a trade are.

Plain frozen dataclasses shared by the lifecycle, the stores that keep them
and the API that shows them. Amounts are integers of base units.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sim.orders import FINAL_STATUSES, OrderStatus

ORDER_TYPES = frozenset({"market", "limit", "stop_loss", "take_profit", "trailing_stop", "sniper"})
WAITING_TYPES = ORDER_TYPES - {"market"}


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    """ISO-8601 in UTC with microseconds and a ``Z``: ``2025-01-02T03:04:05.123456Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    """The UUID, or None when ``value`` is not one (so a bad id is just "not found")."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class StatusStep:
    """One status change of an order, as the lifecycle decided it: committed with the steps beside it."""

    to: OrderStatus
    details: Mapping[str, Any]
    fields: Mapping[str, Any] | None = None  # result columns it sets (storage's TRANSITION_FIELDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewOrder:
    """What intake accepted; ``order_id`` is made by the store when None."""

    token_in: str
    token_out: str
    mint_in: str
    mint_out: str
    amount_in: int
    amount_in_decimal: str
    slippage_bps: int
    type: str = "market"
    order_id: str | None = None
    trigger: dict[str, Any] | None = None  # what a waiting order waits for (engine.waiting)
    expires_at: datetime | None = None  # when it stops waiting
    owner: str | None = None  # the API key's name that placed it; None: authentication was off
    # Its chain transaction's options: priorityFee, maxPriorityFeeLamports, jitoTipLamports (None: defaults).
    tx_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in ORDER_TYPES:
            raise ValueError(f"unknown order type {self.type!r}")
        waiting = self.type in WAITING_TYPES
        if waiting != (self.trigger is not None) or waiting != (self.expires_at is not None):
            raise ValueError("a waiting order has a trigger and an expiry; a market order has neither")
        if isinstance(self.amount_in, bool) or not isinstance(self.amount_in, int) or self.amount_in <= 0:
            raise ValueError("amount_in must be a positive integer of base units")
        if isinstance(self.slippage_bps, bool) or not isinstance(self.slippage_bps, int):
            raise ValueError("slippage_bps must be an integer")
        if not 0 <= self.slippage_bps <= 10_000:
            raise ValueError("slippage_bps must be within 0..10000")
        if self.order_id is not None and parse_uuid(self.order_id) is None:
            raise ValueError(f"order_id {self.order_id!r} is not a UUID")


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One status change of one order (one ``order_status_history`` row)."""

    order_id: str
    seq: int
    status: OrderStatus
    attempt: int
    details: dict[str, Any]
    timestamp: datetime

    def to_json(self) -> dict[str, Any]:
        """The event as the feed carries it (the WebSocket's wire format)."""
        return {
            "orderId": self.order_id,
            "seq": self.seq,
            "status": str(self.status),
            "attempt": self.attempt,
            "timestamp": iso(self.timestamp),
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatusEvent:
        return cls(
            order_id=str(data["orderId"]),
            seq=int(data["seq"]),
            status=OrderStatus(data["status"]),
            attempt=int(data["attempt"]),
            details=dict(data.get("details") or {}),
            timestamp=utc(datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00"))),
        )


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One ``orders`` row. ``amount_in_decimal`` is the amount as the client wrote it."""

    id: str
    type: str
    token_in: str
    token_out: str
    mint_in: str
    mint_out: str
    amount_in: int
    amount_in_decimal: str
    slippage_bps: int
    status: OrderStatus
    seq: int
    attempts: int
    created_at: datetime
    updated_at: datetime
    dex: str | None = None
    pool_id: str | None = None
    route: Any = None  # the execution plan as stored (engine.plans.ExecutionPlan.to_json)
    amount_out: int | None = None
    executed_price: Decimal | None = None
    fee: int | None = None
    price_impact_bps: float | None = None
    tx_signature: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = field(default=None, repr=False)
    client_id: str | None = None
    trigger: dict[str, Any] | None = None
    expires_at: datetime | None = None
    owner: str | None = None
    tx_options: dict[str, Any] | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def waits(self) -> bool:
        """A limit, stop-loss, take-profit, trailing-stop or sniper order (not a market order)."""
        return self.type in WAITING_TYPES


@dataclass(frozen=True, slots=True)
class OldestOpenOrder:
    """The non-final order accepted longest ago: how old it is, and how long since it last moved."""

    order_id: str
    status: str
    age_s: float
    idle_s: float


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One ``pool_trades`` row: a trade against a pool, with the pool's state after it."""

    pool_id: str
    seq: int
    kind: str
    order_id: str | None
    leg: int
    token_in: str
    amount_in: int
    token_out: str
    amount_out: int
    fee: int
    sim_time: float
    state_after: dict[str, Any]
    created_at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    existing: bool = False  # True when record_trade found this leg already stored
