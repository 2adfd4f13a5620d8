"""Orders over HTTP: submit one, list them, read one and its history (and what the WebSocket paths say to a GET)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from serve.auth import UNAUTHORIZED_EXAMPLE, Caller, CallerDep
from serve.dependencies import OrderSubmissionDep, ServicesDep, limit_orders, limit_reads
from serve.errors import ApiError, error_body, error_example
from serve.order_ids import ORDER_ID_EXAMPLE, OrderIdPath, order_id_or_error, order_not_found, stream_urls
from serve.presenters.orders import accepted_view, history_view, order_view
from serve.responses import ExecuteOrderResponse, HistoryResponse, OrderListResponse, OrderView
from serve.services import Services
from engine.cancelling import NotCancellable, cancel_order
from serve.submission import submit_order
from sim.orders import OrderStatus

router = APIRouter(tags=["orders"], responses={401: UNAUTHORIZED_EXAMPLE})

_BAD_ID = error_example(400, "INVALID_ORDER_ID", "orderId: 'abc' is not an order id")
_NO_ORDER = error_example(404, "ORDER_NOT_FOUND", f"no order with id {ORDER_ID_EXAMPLE}")
_UPGRADE = error_example(426, "UPGRADE_REQUIRED", "open a WebSocket on this path")

_EXECUTE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ExecuteOrderResponse, "description": "Idempotent replay: the order already exists."},
    400: error_example(400, "MALFORMED_JSON", "the request body is not valid JSON at character 12: "
                       "Expecting value", summary="Malformed JSON or header"),
    409: error_example(409, "IDEMPOTENCY_CONFLICT", "this Idempotency-Key was already used for a "
                       "different order; use a new key for a new order",
                       {"idempotencyKey": "k-1", "existingOrderId": ORDER_ID_EXAMPLE}),
    413: error_example(413, "PAYLOAD_TOO_LARGE", "the request body is limited to 16384 bytes"),
    422: error_example(422, "UNKNOWN_TOKEN", "tokenIn: unknown token 'DOGE' (known: BONK, JUP, SOL, USDC, "
                       "USDT, or their mints)",
                       [{"field": "tokenIn", "location": "body", "message": "unknown token 'DOGE'",
                         "type": "UNKNOWN_TOKEN"}],
                       summary="Invalid order (unknown token, same token, bad amount or slippage, "
                       "unsupported type)"),
    503: error_example(503, "DATABASE_UNAVAILABLE", "PostgreSQL is unavailable; nothing was stored. "
                       "Retry shortly."),
}  # fmt: skip


async def _find_order(services: Services, raw_id: str, caller: Caller) -> Any:
    """The order ``raw_id`` names (any UUID notation); 400 when it is not an id, 404 when there is none
    or it is another owner's."""
    order_id = order_id_or_error(raw_id)
    record = await services.store.get_order(order_id)
    if record is None or not caller.may_see(record.owner):
        raise order_not_found(order_id)
    await services.learn_tokens(record.token_in, record.token_out)
    return record


def _upgrade_required(message: str, websocket_path: str) -> JSONResponse:
    return JSONResponse(
        error_body("UPGRADE_REQUIRED", message, {"websocket": websocket_path}),
        status_code=426,
        headers={"Upgrade": "websocket"},
    )


@router.post(
    "/api/orders/execute",
    status_code=202,
    response_model=ExecuteOrderResponse,
    dependencies=[Depends(limit_orders)],
    summary="Submit an order",
    description="Validates, stores (status `pending`, history seq 1), publishes the first status "
    "event and queues the order; answers 202 with its id and WebSocket URL. With an "
    "`Idempotency-Key` header, resubmitting the same order returns the existing one (200) and a "
    "different order under the same key is a 409. Aliases for the original spec's clients: "
    "`amount` (= amountIn) and `slippage` (a fraction: 0.01 = 100 bps). The same path also "
    "accepts a WebSocket upgrade (see the API description).",
    responses=_EXECUTE_RESPONSES,
)
async def execute_order(
    request: Request, response: Response, services: ServicesDep, submission: OrderSubmissionDep
) -> ExecuteOrderResponse:
    record, created = await submit_order(services, submission)
    ws_url, ws_path = stream_urls(request, record.id)
    response.status_code = 202 if created else 200
    response.headers["Location"] = f"/api/orders/{record.id}"
    return accepted_view(record, services.tokens, ws_url=ws_url, ws_path=ws_path, created=created)


@router.get(
    "/api/orders",
    response_model=OrderListResponse,
    dependencies=[Depends(limit_reads)],
    summary="List recent orders",
    description="Newest first: the caller's own orders (an admin key, or no key while keys are off: every "
    "order). Filter with `status`; page with `limit` and the `nextCursor` of the previous page.",
    responses={400: error_example(400, "INVALID_CURSOR", "cursor: not a cursor returned by this API")},
)
async def list_orders(
    services: ServicesDep,
    caller: CallerDep,
    status: Annotated[
        OrderStatus | None,
        Query(description="Only orders in this status (`open`: the orders that wait).", examples=["confirmed"]),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size (1..200).", examples=[20])] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="`nextCursor` of the previous page.")] = None,
) -> OrderListResponse:
    from engine.errors import InvalidCursor

    try:
        records, next_cursor = await services.store.list_orders(
            status=status, limit=limit, cursor=cursor, owner=caller.owner, every_owner=caller.admin
        )
    except InvalidCursor:
        raise ApiError(
            400,
            "INVALID_CURSOR",
            "cursor: not a cursor returned by this API",
            [{"field": "cursor", "location": "query", "message": "invalid cursor", "type": "INVALID_CURSOR"}],
        ) from None
    await services.learn_tokens(*(token for r in records for token in (r.token_in, r.token_out)))
    return OrderListResponse(
        orders=[order_view(r, services.tokens) for r in records], next_cursor=next_cursor, limit=limit
    )


@router.get(
    "/api/orders/execute",
    summary="WebSocket: submit an order and follow it on one connection",
    description="Open a WebSocket here and send the order (the POST body) as the first message. "
    "You receive `{\"type\": \"accepted\", \"orderId\", \"status\", \"wsUrl\", \"created\", \"order\"}` "
    "and then the order's status events, until the final one (close code 1000). A plain GET "
    "is answered 426.",
    status_code=426,
    responses={426: _UPGRADE},
)
async def execute_upgrade_info() -> JSONResponse:
    return _upgrade_required(
        "open a WebSocket on this path and send the order as the first message (or POST the order here over HTTP)",
        "/api/orders/execute",
    )


@router.get(
    "/api/orders/ws",
    summary="WebSocket: every order's status events, live",
    description="Open a WebSocket here to receive `{\"type\": \"status\", ...}` for every status change of the "
    "caller's orders (an admin key, or no key while keys are off: every order's) from now on, the same events "
    "`/api/orders/{orderId}/ws` sends. Live only: read `GET /api/orders` for what happened before. A plain GET "
    "is answered 426.",
    status_code=426,
    responses={426: _UPGRADE},
)
async def feed_ws_info() -> JSONResponse:
    return _upgrade_required("this is a WebSocket endpoint: connect with ws:// to follow every order", "/api/orders/ws")


@router.get(
    "/api/orders/{orderId}",
    response_model=OrderView,
    dependencies=[Depends(limit_reads)],
    summary="Get an order",
    description="Its current status and, once known, route, fill (amountOut, executedPrice, fee, "
    "priceImpactBps, dex, txSignature) or error.",
    responses={400: _BAD_ID, 404: _NO_ORDER},
)
async def get_order(order_id: OrderIdPath, services: ServicesDep, caller: CallerDep) -> OrderView:
    return order_view(await _find_order(services, order_id, caller), services.tokens)


@router.delete(
    "/api/orders/{orderId}",
    response_model=OrderView,
    dependencies=[Depends(limit_orders)],
    summary="Cancel an order that waits",
    description="Cancels a limit, stop-loss, take-profit, trailing-stop or sniper order while it waits (`open`, or "
    "`pending`/`triggered` before it started routing): 200 with the order, now `cancelled` (its WebSocket gets "
    "the `cancelled` event and closes). Cancelling a cancelled order again answers the same 200. A market "
    "order, or one that has started routing or ended otherwise, is a 409 ORDER_NOT_CANCELLABLE.",
    responses={
        400: _BAD_ID, 404: _NO_ORDER,
        409: error_example(409, "ORDER_NOT_CANCELLABLE", "the order is routing: only an order that waits can be "
                           "cancelled", {"status": "routing"}),
    },
)  # fmt: skip
async def cancel(order_id: OrderIdPath, services: ServicesDep, caller: CallerDep) -> OrderView:
    record = await _find_order(services, order_id, caller)
    try:
        cancelled, changed = await cancel_order(services.store, services.bus, record.id)
    except NotCancellable as exc:
        raise ApiError(409, "ORDER_NOT_CANCELLABLE", exc.reason, {"status": str(exc.order.status)}) from None
    if changed:
        try:
            await services.engine.disarm(cancelled.id)
        except Exception:  # noqa: BLE001 — the store says cancelled: the book would not fire it anyway
            pass
    return order_view(cancelled, services.tokens)


@router.get(
    "/api/orders/{orderId}/history",
    response_model=HistoryResponse,
    dependencies=[Depends(limit_reads)],
    summary="An order's status history",
    description="Every status change, oldest first (what the WebSocket replays). `afterSeq` "
    "returns only later events.",
    responses={400: _BAD_ID, 404: _NO_ORDER},
)
async def order_history(
    order_id: OrderIdPath,
    services: ServicesDep,
    caller: CallerDep,
    after_seq: Annotated[int, Query(alias="afterSeq", ge=0, le=1_000_000, description="Only events after it.")] = 0,
) -> HistoryResponse:
    record = await _find_order(services, order_id, caller)
    return history_view(record, await services.store.history(record.id, after_seq=after_seq))


@router.get(
    "/api/orders/{orderId}/ws",
    summary="WebSocket: an order's status stream",
    description="Open a WebSocket here. You receive the events so far, then live ones, each once and "
    "in `seq` order: `{\"type\": \"status\", \"orderId\", \"seq\", \"status\", \"attempt\", "
    "\"timestamp\", \"details\"}`. The server closes with 1000 after `confirmed` or `failed`; an "
    "unknown or malformed id is closed with 4404 and a reason. A plain GET is answered 426.",
    status_code=426,
    responses={426: _UPGRADE},
)
async def order_ws_info(order_id: OrderIdPath) -> JSONResponse:
    return _upgrade_required(
        "this is a WebSocket endpoint: connect with ws:// (or wss://) to stream the order's status",
        f"/api/orders/{order_id[:64]}/ws",
    )
