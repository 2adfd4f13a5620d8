"""The WebSockets: an order's status stream, the upgrade that submits an order and streams it, and the
live feed of every order.

Every socket first identifies its caller (no valid key where keys are
required: closed with 4401) and takes one of its client's slots (over the cap
it is closed with 4429); a refused order is answered ``{"type": "error", ...}``
and a close code that says why (see :mod:`serve.stream`). Another owner's
order is closed with 4404, as one that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, WebSocket
from pydantic import ValidationError

from serve import stream
from serve.auth import Caller, accepted_subprotocol, identify
from serve.dependencies import LimitsDep, OrderMessageLimitDep, ServicesDep
from serve.errors import ApiError, error_body, unavailable_error, validation_error
from serve.feed import stream_feed
from serve.limits import ClientLimits, client_key
from serve.order_ids import canonical_order_id, stream_urls
from serve.presenters.orders import accepted_view
from serve.requests import ExecuteOrderRequest
from serve.services import Services
from serve.submission import submit_order, take_order

log = logging.getLogger("serve.streams")

router = APIRouter()

# The close code for an order the upgrade refuses, by the HTTP status the same error would have.
_CLOSE_FOR_STATUS = {409: stream.CLOSE_CONFLICT, 429: stream.CLOSE_RATE_LIMITED, 503: stream.CLOSE_TRY_AGAIN}


async def _with_socket_slot(
    websocket: WebSocket, services: Services, limits: ClientLimits, handler: Callable[[Caller], Awaitable[None]]
) -> None:
    """Run a WebSocket handler for its caller if they may open one more socket; else close 4401 or 4429."""
    try:
        caller = await identify(websocket, services)
    except ApiError as err:
        await stream.reject(websocket, stream.CLOSE_UNAUTHORIZED, stream.close_reason(f"{err.code}: {err.message}"),
                            err.body())  # fmt: skip
        return
    except Exception as exc:
        if unavailable_error(exc) is None:
            log.exception("identifying a WebSocket's caller failed")
        await stream.reject(websocket, stream.CLOSE_TRY_AGAIN, "storage unavailable; retry shortly")
        return
    client = caller.limit_key or client_key(websocket)
    if not limits.open_socket(client):
        cap = limits.ws_per_client
        await stream.reject(
            websocket, stream.CLOSE_RATE_LIMITED, f"too many WebSockets: at most {cap} open per client",
            {"error": error_body("TOO_MANY_CONNECTIONS", f"this client already has {cap} WebSockets open, the "
                                 f"most it may; close one first", {"limit": cap, "client": client[:140]})["error"]},
        )  # fmt: skip
        return
    try:
        await handler(caller)
    finally:
        limits.close_socket(client)


# --------------------------------------------------------------------------- /api/orders/{orderId}/ws


@router.websocket("/api/orders/{orderId}/ws", name="order_ws")
async def order_ws(
    websocket: WebSocket, order_id: Annotated[str, Path(alias="orderId")], services: ServicesDep, limits: LimitsDep
) -> None:
    await _with_socket_slot(websocket, services, limits, lambda caller: _follow_order(websocket, services, order_id,
                                                                                       caller))  # fmt: skip


async def _follow_order(websocket: WebSocket, services: Services, raw_id: str, caller: Caller) -> None:
    order_id = canonical_order_id(raw_id)
    if order_id is None:
        message = f"{raw_id[:80]!r} is not an order id (a UUID)"
        await stream.reject(
            websocket, stream.CLOSE_NOT_FOUND, f"order id {raw_id[:60]!r} is not a UUID",
            error_body("INVALID_ORDER_ID", message, {"orderId": raw_id[:80]}),
        )  # fmt: skip
        return
    try:
        record = await services.store.get_order(order_id)
    except Exception as exc:
        if unavailable_error(exc) is None:
            log.exception("order %s: lookup failed", order_id)
        await stream.reject(websocket, stream.CLOSE_TRY_AGAIN, "storage unavailable; retry shortly")
        return
    if record is None or not caller.may_see(record.owner):
        await stream.reject(
            websocket, stream.CLOSE_NOT_FOUND, f"order {order_id} not found",
            error_body("ORDER_NOT_FOUND", f"no order with id {order_id}", {"orderId": order_id}),
        )  # fmt: skip
        return
    await websocket.accept(subprotocol=accepted_subprotocol(websocket))
    await stream.stream_order(websocket, services, order_id)


# --------------------------------------------------------------------------- /api/orders/ws


@router.websocket("/api/orders/ws", name="orders_feed_ws")
async def orders_feed_ws(websocket: WebSocket, services: ServicesDep, limits: LimitsDep) -> None:
    await _with_socket_slot(websocket, services, limits, lambda caller: _feed(websocket, services, caller))


async def _feed(websocket: WebSocket, services: Services, caller: Caller) -> None:
    await websocket.accept(subprotocol=accepted_subprotocol(websocket))
    await stream_feed(websocket, services, every_order=caller.admin, may_see=caller.may_see)


# --------------------------------------------------------------------------- the upgrade on /api/orders/execute


@router.websocket("/api/orders/execute")
async def execute_ws(
    websocket: WebSocket, services: ServicesDep, limits: LimitsDep, max_bytes: OrderMessageLimitDep
) -> None:
    await _with_socket_slot(websocket, services, limits,
                            lambda caller: _execute(websocket, services, limits, max_bytes, caller))  # fmt: skip


def _message_text(message: Mapping[str, Any]) -> str | None:
    """The text of a WebSocket message (bytes when they are UTF-8); None when it has none."""
    text = message.get("text")
    if text is None and message.get("bytes") is not None:
        try:
            text = message["bytes"].decode()
        except UnicodeDecodeError:
            text = None
    return text


def _order_request(text: str | None, max_bytes: int) -> ExecuteOrderRequest:
    """The first message as a well-formed order; ApiError (400, 413, 422) otherwise."""
    if text is None:
        raise ApiError(400, "MALFORMED_JSON", "the first message must be the order as JSON text")
    if len(text.encode()) > max_bytes:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the order message is limited to {max_bytes} bytes",
                       {"maxBytes": max_bytes})  # fmt: skip
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "MALFORMED_JSON", f"the first message is not valid JSON at character {exc.pos}: {exc.msg}"
        ) from None
    if not isinstance(payload, dict):
        raise ApiError(422, "VALIDATION_ERROR", "the order must be a JSON object",
                       [{"field": "body", "location": "body", "message": "must be an object",
                         "type": "VALIDATION_ERROR"}])  # fmt: skip
    try:
        return ExecuteOrderRequest.model_validate(payload)
    except ValidationError as exc:
        raise validation_error([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


async def _execute(
    websocket: WebSocket, services: Services, limits: ClientLimits, max_bytes: int, caller: Caller
) -> None:
    await websocket.accept(subprotocol=accepted_subprotocol(websocket))
    wait_s = services.options.ws_first_message_timeout_s
    try:
        message = await asyncio.wait_for(websocket.receive(), wait_s)
    except TimeoutError:
        await stream.reject(
            websocket, stream.CLOSE_POLICY, "no order received in time",
            error_body("TIMEOUT", f"send the order as the first message within {wait_s:g}s"),
        )  # fmt: skip
        return
    if message["type"] == "websocket.disconnect":
        return
    try:
        await limits.check("orders", caller.limit_key or client_key(websocket))
        request = _order_request(_message_text(message), max_bytes)
        await services.learn_tokens(request.token_in, request.token_out)
        submission = take_order(
            request, services,
            idempotency_key=websocket.headers.get("idempotency-key"), client_id=websocket.headers.get("x-client-id"),
            owner=caller.owner,
        )  # fmt: skip
        record, created = await submit_order(services, submission)
    except ApiError as err:
        code = _CLOSE_FOR_STATUS.get(err.status_code, stream.CLOSE_BAD_REQUEST)
        await stream.reject(websocket, code, stream.close_reason(f"{err.code}: {err.message}"),
                            {"status": err.status_code, **err.body()})  # fmt: skip
        return
    ws_url, ws_path = stream_urls(websocket, record.id)
    accepted = accepted_view(record, services.tokens, ws_url=ws_url, ws_path=ws_path, created=created)
    # The POST's answer, less orderUrl: the socket is already where the order is followed.
    await websocket.send_json({"type": "accepted", **accepted.model_dump(mode="json", by_alias=True,
                                                                         exclude={"order_url"})})  # fmt: skip
    await stream.stream_order(websocket, services, record.id)
