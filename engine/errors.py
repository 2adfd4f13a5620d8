"""Typed errors of the order store port (raised by its adapters, caught by the lifecycle and the API)."""

from __future__ import annotations

from collections.abc import Iterable

from sim.orders import OrderStatus


class StorageError(Exception):
    """Base class of every storage error."""


class OrderNotFound(StorageError, LookupError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class StaleTransition(StorageError):
    """The order was not in an allowed state (or seq): another writer got there first."""

    def __init__(
        self,
        order_id: str,
        *,
        current: OrderStatus,
        current_seq: int,
        target: OrderStatus,
        allowed: Iterable[OrderStatus],
        expected_seq: int | None = None,
    ) -> None:
        allowed_text = ", ".join(sorted(allowed))
        seq_text = f" at seq {expected_seq}" if expected_seq is not None else ""
        super().__init__(
            f"order {order_id} is {current} (seq {current_seq}); "
            f"moving to {target} needs one of [{allowed_text}]{seq_text}"
        )
        self.order_id = order_id
        self.current = current
        self.current_seq = current_seq
        self.target = target
        self.allowed = frozenset(allowed)
        self.expected_seq = expected_seq


class IdempotencyConflict(StorageError):
    """The idempotency key was already used for a different request body."""

    def __init__(self, key: str, existing_order_id: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key
        self.existing_order_id = existing_order_id


class DuplicateOrderId(StorageError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"an order with id {order_id} already exists")
        self.order_id = order_id


class InvalidCursor(StorageError, ValueError):
    pass


class EngineUnavailable(Exception):
    """The engine's actors could not be reached or did not answer in time."""


class MarketOff(EngineUnavailable):
    """The market simulator is not running (``market.enabled`` is off, or the API runs alone)."""


class ChainOff(EngineUnavailable):
    """The engine runs without the simulated chain (zero-latency mode), or the API runs alone."""


class SubscriptionLost(Exception):
    """A live event subscription ended: its Redis connection went away, or its reader fell too far behind.

    Events are published after they are committed, so nothing is lost: the follower re-reads the store.
    """


class TokenExists(Exception):
    """A launch named a token (symbol or mint) that exists already."""


class LaunchRefused(ValueError):
    """A launch that cannot be made: ``TOKEN_EXISTS``, ``UNKNOWN_TOKEN`` or ``INVALID_LAUNCH``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)  # both in args: it pickles across processes
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message
