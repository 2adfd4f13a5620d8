"""Taking an order in: the checks around it, then store it pending, publish its first event, queue it.

Shared by ``POST /api/orders/execute`` and the WebSocket upgrade on the same path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.errors import IdempotencyConflict
from engine.intake import accept_order
from engine.records import OrderRecord
from serve.errors import ApiError, unavailable_error
from serve.requests import ExecuteOrderRequest
from serve.services import Services
from serve.validation import ValidOrder, validate_order



@dataclass(frozen=True, slots=True)
class OrderSubmission:
    """A valid order, and who sent it (its owner, their label) under which Idempotency-Key."""

    order: ValidOrder
    idempotency_key: str | None
    client_id: str | None
    owner: str | None = None


def idempotency_key_or_error(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255 or not key.isprintable():
        raise ApiError(
            400,
            "INVALID_IDEMPOTENCY_KEY",
            "Idempotency-Key must be 1..255 printable characters",
            [{"field": "Idempotency-Key", "location": "header", "message": "1..255 printable characters",
              "type": "INVALID_IDEMPOTENCY_KEY"}],
        )  # fmt: skip
    return key


def client_label(value: str | None) -> str | None:
    """The caller's own label (``X-Client-Id``), stored with the order; at most 128 characters."""
    if value is None:
        return None
    value = value.strip()[:128]
    return value or None


def take_order(
    body: ExecuteOrderRequest,
    services: Services,
    *,
    idempotency_key: str | None,
    client_id: str | None,
    owner: str | None = None,
) -> OrderSubmission:
    """The submission of a well-formed order, once its key and its meaning are checked (400, 422)."""
    key = idempotency_key_or_error(idempotency_key)
    opts = services.options
    order = validate_order(
        body, services.tokens, default_slippage_bps=opts.default_slippage_bps, max_slippage_bps=opts.max_slippage_bps
    )
    return OrderSubmission(order, key, client_label(client_id), owner)


async def submit_order(services: Services, submission: OrderSubmission) -> tuple[OrderRecord, bool]:
    """Store, publish, enqueue (``engine.intake``). Returns (record, created). Raises ApiError (409, 503)."""
    order = submission.order
    try:
        return await accept_order(
            services.store, services.bus, services.queue, replace(order.new_order(), owner=submission.owner),
            idempotency_key=submission.idempotency_key, request_hash=order.request_hash(),
            client_id=submission.client_id, transport_timeout_s=services.options.redis_timeout_s,
        )  # fmt: skip
    except IdempotencyConflict as exc:
        raise ApiError(
            409,
            "IDEMPOTENCY_CONFLICT",
            "this Idempotency-Key was already used for a different order; use a new key for a new order",
            {"idempotencyKey": exc.key, "existingOrderId": exc.existing_order_id or None},
        ) from None
    except Exception as exc:
        outage = unavailable_error(exc)
        if outage is not None:
            raise outage from exc
        raise
