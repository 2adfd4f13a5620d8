"""The order state machine and the retry policy (the seed's lifecycle).

pending -> routing -> building -> submitted -> confirmed | failed.
A transient failure sends an order back to ``pending`` (queued again, with
the reason) to be routed afresh after a backoff; after the last retry it is
``failed``.

An order that waits (limit, stop-loss, take-profit, trailing stop) goes
pending -> open (armed) -> triggered -> routing -> ..., or ends open ->
cancelled | expired; a limit whose minimum out the market no longer pays
goes back to open from routing, building or submitted. ``confirmed``,
``failed``, ``cancelled`` and ``expired`` are final.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    OPEN = "open"
    TRIGGERED = "triggered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.EXPIRED})
# Not final, but nothing runs them: they wait for the market (the trigger book holds them).
WAITING_STATUSES = frozenset({OrderStatus.OPEN})
# What the engine must run to an end: neither final nor waiting.
ACTIVE_STATUSES = frozenset(OrderStatus) - FINAL_STATUSES - WAITING_STATUSES

_S = OrderStatus
_ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING: frozenset({_S.ROUTING, _S.FAILED, _S.OPEN, _S.CANCELLED, _S.EXPIRED}),
    _S.OPEN: frozenset({_S.TRIGGERED, _S.CANCELLED, _S.EXPIRED}),
    _S.TRIGGERED: frozenset({_S.ROUTING, _S.FAILED, _S.CANCELLED}),
    _S.ROUTING: frozenset({_S.BUILDING, _S.PENDING, _S.FAILED, _S.OPEN}),
    _S.BUILDING: frozenset({_S.SUBMITTED, _S.PENDING, _S.FAILED, _S.OPEN}),
    _S.SUBMITTED: frozenset({_S.CONFIRMED, _S.PENDING, _S.FAILED, _S.OPEN}),
    _S.CONFIRMED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"order cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in _ALLOWED[current]


def predecessors(target: OrderStatus) -> frozenset[OrderStatus]:
    """Every status an order may be in just before ``target``."""
    return frozenset(s for s, nexts in _ALLOWED.items() if target in nexts)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: base, base*factor, ... for ``max_retries`` retries."""

    max_retries: int = 3
    base_delay_s: float = 1.0
    factor: float = 2.0

    def delay_before(self, attempt: int) -> float | None:
        """Delay before ``attempt`` (1 = first try), or None when none is left.

        With the defaults: attempt 1 runs at once, 2 after 1 s, 3 after 2 s,
        4 after 4 s, and there is no attempt 5.
        """
        if attempt < 1:
            raise ValueError("attempts count from 1")
        if attempt == 1:
            return 0.0
        if attempt > self.max_retries + 1:
            return None
        return self.base_delay_s * self.factor ** (attempt - 2)


def transaction_signature(order_id: str, pool_id: str, leg: int = 0) -> str:
    """A deterministic base58 signature-like id for a simulated transaction."""
    digest = hashlib.sha512(f"{order_id}:{pool_id}:{leg}".encode()).digest()
    return b58encode(digest)


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, rem = divmod(n, 58)
        out.append(_B58[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))
