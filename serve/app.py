"""The HTTP API and the WebSocket status feed, as one FastAPI app.

    app = create_app(services_factory)

``services_factory`` is a zero-argument async callable returning
:class:`serve.services.Services`; it is called once per process at startup
(the ASGI lifespan, which Ray Serve runs on each replica) and the result is
closed at shutdown. The same app runs under plain uvicorn (tests) and inside
a ``@serve.ingress(app)`` deployment.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import (
    Body,
    Depends,
    FastAPI,
    Header,
    Path,
    Query,
    Request,
    Response,
    WebSocket,
)
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from serve import stream
from serve.errors import (
    ApiError,
    EngineUnavailable,
    error_body,
    error_example,
    install_error_handlers,
    unavailable_error,
    validation_error,
)
from serve.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware, ClientLimits, client_key
from serve.models import (
    EXECUTE_EXAMPLES,
    ExecuteOrderRequest,
    ExecuteOrderResponse,
    HealthResponse,
    HistoryResponse,
    OrderListResponse,
    OrderView,
    PoolsResponse,
    PoolView,
    QueueMetricsResponse,
    QuoteResponse,
    QuoteView,
    RouteView,
    StatusEventView,
    ValidOrder,
    _Problems,
    decimal_text,
    human,
    parse_amount,
    parse_slippage,
    resolve_token,
    validate_order,
)
from serve.services import Services, ServicesFactory
from sim.orders import OrderStatus
from sim.tokens import Token, TokenRegistry

log = logging.getLogger("serve.app")

API_DESCRIPTION = """
A simulated Solana DEX order execution engine. Orders are routed to the pool
(Raydium constant-product or Meteora DLMM, simulated as Ray actors with real
AMM state) that pays the most, executed with 10-way concurrency, stored in
PostgreSQL, and streamed over WebSockets.

**Lifecycle**: `pending` → `routing` → `building` → `submitted` →
`confirmed` | `failed` (transient failures go back to `pending` and are
retried after 1 s, 2 s, 4 s).

**Units**: amounts are decimal strings in token units (`"1.5"` SOL), never
floats; base units are given beside them as `...BaseUnits`.

**WebSockets** (not listed by OpenAPI, which describes HTTP only):

* `ws://HOST/api/orders/{orderId}/ws` — the order's status stream: the
  events so far, then live ones, each once, in `seq` order
  (`{"type": "status", "orderId", "seq", "status", "attempt", "timestamp",
  "details"}`); closed with 1000 after `confirmed` or `failed`; an unknown or
  malformed id is closed with 4404.
* `ws://HOST/api/orders/execute` — send the order (the POST body) as the
  first message; receive `{"type": "accepted", "orderId", ...}` then the
  status stream on the same connection. A bad order gets
  `{"type": "error", "error": {...}}` and close code 4400 (4409 for an
  idempotency conflict, 4429 over the client's order rate limit, 1013 when
  storage is down).

**Limits** per client (the `X-Client-Id` header, else the address): order
submissions per minute (429 `RATE_LIMITED` with `Retry-After`), open
WebSockets (a socket over the cap is closed with 4429
`TOO_MANY_CONNECTIONS`), and request bodies of 16 KiB (413).

**Errors** always look like `{"error": {"code", "message", "details"}}`.
"""

TAGS = [
    {"name": "orders", "description": "Submit orders and follow them."},
    {"name": "market", "description": "Pools and route previews."},
    {"name": "operations", "description": "Queue metrics and health."},
]

ORDER_ID_EXAMPLE = "5b0c3f9e-8f0e-4a52-9d0c-6a3f0b7f6f21"


# --------------------------------------------------------------------------- dependencies


def get_services(conn: HTTPConnection) -> Services:
    services = getattr(conn.app.state, "services", None)
    if services is None:  # pragma: no cover - the lifespan did not run
        raise ApiError(503, "SERVICE_UNAVAILABLE", "the API is starting up; retry shortly")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_limits(conn: HTTPConnection) -> ClientLimits:
    limits = getattr(conn.app.state, "limits", None)
    if limits is None:  # pragma: no cover - the lifespan did not run
        raise ApiError(503, "SERVICE_UNAVAILABLE", "the API is starting up; retry shortly")
    return limits


async def limit_orders(request: Request) -> None:
    """Counts an order submission against the client's limit (429 over it)."""
    await get_limits(request).check("orders", client_key(request))


async def limit_reads(request: Request) -> None:
    await get_limits(request).check("reads", client_key(request))


def canonical_order_id(raw: str) -> str | None:
    """The canonical (lower-case, hyphenated) UUID, or None when ``raw`` is not one."""
    if len(raw) > 64:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def order_id_or_error(raw: str) -> str:
    order_id = canonical_order_id(raw)
    if order_id is None:
        raise ApiError(
            400,
            "INVALID_ORDER_ID",
            f"orderId: {raw[:80]!r} is not an order id (a UUID such as {ORDER_ID_EXAMPLE})",
            [{"field": "orderId", "location": "path", "message": "must be a UUID", "type": "INVALID_ORDER_ID"}],
        )
    return order_id


def not_found(order_id: str) -> ApiError:
    return ApiError(404, "ORDER_NOT_FOUND", f"no order with id {order_id}", {"orderId": order_id})


OrderIdPath = Annotated[
    str, Path(alias="orderId", description="The order's id (a UUID).", examples=[ORDER_ID_EXAMPLE], max_length=200)
]


# --------------------------------------------------------------------------- presenters


def _token(tokens: TokenRegistry, ref: str | None) -> Token | None:
    if ref is None:
        return None
    try:
        return tokens.resolve(ref)
    except KeyError:
        return None


def route_view(route: dict[str, Any] | None, tokens: TokenRegistry, slippage_bps: int | None = None) -> RouteView | None:
    """The engine's route (snake_case, base units) in token units."""
    if not isinstance(route, dict) or "legs" not in route:
        return None
    t_in = _token(tokens, route.get("token_in"))
    t_out = _token(tokens, route.get("token_out"))
    min_out = route.get("min_out")
    if min_out is None and slippage_bps is not None and route.get("amount_out") is not None:
        min_out = int(route["amount_out"]) * (10_000 - slippage_bps) // 10_000
    legs = []
    for leg in route["legs"]:
        li, lo = _token(tokens, leg.get("token_in")), _token(tokens, leg.get("token_out"))
        legs.append(
            {
                "poolId": leg.get("pool_id"),
                "dex": leg.get("dex"),
                "tokenIn": leg.get("token_in"),
                "tokenOut": leg.get("token_out"),
                "amountIn": human(leg.get("amount_in"), li),
                "amountOut": human(leg.get("amount_out"), lo),
                "fee": human(leg.get("fee"), li),
                "priceImpactBps": leg.get("price_impact_bps"),
            }
        )
    return RouteView.model_validate(
        {
            "kind": route.get("kind", "single"),
            "amountIn": human(route.get("amount_in"), t_in),
            "amountOut": human(route.get("amount_out"), t_out),
            "minAmountOut": human(min_out, t_out),
            "priceImpactBps": route.get("price_impact_bps"),
            "legs": legs,
        }
    )


def order_view(record: Any, tokens: TokenRegistry) -> OrderView:
    t_in, t_out = _token(tokens, record.token_in), _token(tokens, record.token_out)
    error = None
    if record.error_code:
        error = {"code": record.error_code, "message": record.error_message}
    return OrderView.model_validate(
        {
            "orderId": record.id,
            "type": record.type,
            "status": record.status,
            "tokenIn": record.token_in,
            "tokenOut": record.token_out,
            "mintIn": record.mint_in,
            "mintOut": record.mint_out,
            "amountIn": record.amount_in_decimal or human(record.amount_in, t_in),
            "amountInBaseUnits": str(record.amount_in),
            "slippageBps": record.slippage_bps,
            "seq": record.seq,
            "attempts": record.attempts,
            "dex": record.dex,
            "poolId": record.pool_id,
            "route": route_view(record.route, tokens, record.slippage_bps),
            "amountOut": human(record.amount_out, t_out),
            "amountOutBaseUnits": None if record.amount_out is None else str(record.amount_out),
            "executedPrice": None if record.executed_price is None else decimal_text(Decimal(record.executed_price)),
            "fee": human(record.fee, t_in),
            "priceImpactBps": record.price_impact_bps,
            "txSignature": record.tx_signature,
            "error": error,
            "idempotencyKey": record.idempotency_key,
            "createdAt": record.created_at.isoformat().replace("+00:00", "Z"),
            "updatedAt": record.updated_at.isoformat().replace("+00:00", "Z"),
            "wsPath": f"/api/orders/{record.id}/ws",
        }
    )


def quote_view(quote: dict[str, Any], t_in: Token, t_out: Token) -> QuoteView:
    if "error" in quote:
        return QuoteView.model_validate(
            {"poolId": quote.get("poolId"), "dex": quote.get("dex", "?"), "error": quote["error"],
             "message": quote.get("message")}
        )  # fmt: skip
    return QuoteView.model_validate(
        {
            "poolId": quote["poolId"],
            "dex": quote["dex"],
            "kind": quote.get("kind", "single"),
            "via": quote.get("via"),
            "amountIn": human(quote.get("amountIn"), t_in),
            "amountOut": human(quote.get("amountOut"), t_out),
            "fee": human(quote.get("fee"), t_in),
            "feeBps": quote.get("feeBps"),
            "priceImpactBps": quote.get("priceImpactBps"),
            "executionPrice": quote.get("executionPrice"),
        }
    )


def pool_view(summary: dict[str, Any], tokens: TokenRegistry) -> PoolView:
    reserves = {}
    for symbol, units in (summary.get("reserves") or {}).items():
        reserves[symbol] = human(units, _token(tokens, symbol)) or "0"
    return PoolView.model_validate(
        {
            "poolId": summary["poolId"],
            "dex": summary["dex"],
            "kind": summary.get("kind", "?"),
            "pair": f"{summary['base']}/{summary['quote']}",
            "base": summary["base"],
            "quote": summary["quote"],
            "feeBps": summary["feeBps"],
            "spotPrice": summary["spotPrice"],
            "reserves": reserves,
            "activeBin": summary.get("activeBin"),
            "bins": summary.get("bins"),
        }
    )


def _ws_urls(conn: HTTPConnection, order_id: str) -> tuple[str, str]:
    """(absolute ws:// URL from the request's host, path) of the order's stream."""
    url = conn.url_for("order_ws", orderId=order_id)
    scheme = conn.headers.get("x-forwarded-proto", conn.url.scheme).split(",")[0].strip()
    ws_scheme = "wss" if scheme in ("https", "wss") else "ws"
    return str(url.replace(scheme=ws_scheme)), url.path


# --------------------------------------------------------------------------- submission


async def submit_order(
    services: Services, order: ValidOrder, *, idempotency_key: str | None, client_id: str | None
) -> tuple[Any, bool]:
    """Store, publish, enqueue. Returns (record, created). Raises ApiError (409, 503)."""
    from storage.errors import IdempotencyConflict

    try:
        record, event = await services.store.create_order(
            order.new_order(),
            idempotency_key=idempotency_key,
            request_hash=order.request_hash(),
            client_id=client_id,
        )
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
    if event is None:
        return record, False
    # Committed: from here on the order exists whatever else fails. A lost
    # publish is replayed from PostgreSQL by every WebSocket; a lost enqueue
    # is found by the engine's sweep of unfinished orders.
    timeout = services.options.redis_timeout_s
    try:
        await asyncio.wait_for(services.bus.publish(event), timeout)
    except Exception as exc:  # noqa: BLE001
        log.warning("order %s: publishing the pending event failed (%r); clients replay it", record.id, exc)
    try:
        await asyncio.wait_for(services.queue.enqueue(record.id), timeout)
    except Exception as exc:  # noqa: BLE001
        log.warning("order %s: enqueue failed (%r); the engine's sweep will queue it", record.id, exc)
    return record, True


def _check_idempotency_key(key: str | None) -> str | None:
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


def _client_id(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()[:128]
    return value or None


# --------------------------------------------------------------------------- the app


def create_app(
    services_factory: ServicesFactory,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    title: str = "DEX order execution engine",
) -> FastAPI:
    """The API. ``services_factory()`` is awaited once at startup; see :mod:`serve.services`.

    ``max_body_bytes`` bounds an HTTP request body (413 above it) and the
    order message of the WebSocket upgrade.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await services_factory()
        opts = services.options
        app.state.limits = ClientLimits(
            services.redis,
            orders_per_window=opts.order_limit_per_minute,
            reads_per_window=opts.read_limit_per_minute,
            window_s=opts.limit_window_s,
            ws_per_client=opts.ws_max_per_client,
            timeout_s=opts.redis_timeout_s,
        )
        app.state.services = services
        try:
            yield
        finally:
            app.state.services = None
            await services.aclose()

    app = FastAPI(
        title=title,
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        responses={
            422: error_example(422, "VALIDATION_ERROR", "amountIn: field required", summary="Invalid input"),
            429: error_example(429, "RATE_LIMITED", "too many order submissions: at most 600 per 60 s for each "
                               "client; retry in 12 s", {"limit": 600, "windowS": 60, "retryAfterS": 12,
                               "client": "id:my-bot"}, summary="Over the client's rate limit (see Retry-After)"),
            500: error_example(500, "INTERNAL_ERROR", "internal server error; it has been logged",
                               summary="A bug (never caused by input)"),
        },
    )
    app.state.services = None
    app.state.limits = None
    install_error_handlers(app)
    # Outermost: a too-large body is refused before anything else reads it.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=max_body_bytes)

    # ------------------------------------------------------------------ orders

    @app.post(
        "/api/orders/execute",
        tags=["orders"],
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
        responses={
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
        },
    )
    async def execute_order(
        request: Request,
        response: Response,
        services: ServicesDep,
        body: Annotated[ExecuteOrderRequest, Body(openapi_examples=EXECUTE_EXAMPLES)],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Makes a retried submission return the same order (any unique string, ≤255).",
                examples=["order-2024-06-01-0001"],
            ),
        ] = None,
        client_id: Annotated[
            str | None, Header(alias="X-Client-Id", description="Optional caller label, stored with the order.")
        ] = None,
    ) -> ExecuteOrderResponse:
        key = _check_idempotency_key(idempotency_key)
        opts = services.options
        order = validate_order(
            body, services.tokens, default_slippage_bps=opts.default_slippage_bps, max_slippage_bps=opts.max_slippage_bps
        )
        record, created = await submit_order(services, order, idempotency_key=key, client_id=_client_id(client_id))
        ws_url, ws_path = _ws_urls(request, record.id)
        response.status_code = 202 if created else 200
        response.headers["Location"] = f"/api/orders/{record.id}"
        return ExecuteOrderResponse(
            order_id=record.id,
            status=record.status,
            ws_url=ws_url,
            ws_path=ws_path,
            order_url=f"/api/orders/{record.id}",
            created=created,
            order={
                "type": record.type,
                "tokenIn": record.token_in,
                "tokenOut": record.token_out,
                "amountIn": record.amount_in_decimal,
                "slippageBps": record.slippage_bps,
            },
        )

    @app.get(
        "/api/orders",
        tags=["orders"],
        response_model=OrderListResponse,
        dependencies=[Depends(limit_reads)],
        summary="List recent orders",
        description="Newest first. Filter with `status`; page with `limit` and the `nextCursor` of the "
        "previous page.",
        responses={400: error_example(400, "INVALID_CURSOR", "cursor: not a cursor returned by this API")},
    )
    async def list_orders(
        services: ServicesDep,
        status: Annotated[
            OrderStatus | None, Query(description="Only orders in this status.", examples=["confirmed"])
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200, description="Page size (1..200).", examples=[20])] = 50,
        cursor: Annotated[
            str | None, Query(max_length=512, description="`nextCursor` of the previous page.")
        ] = None,
    ) -> OrderListResponse:
        from storage.errors import InvalidCursor

        try:
            records, next_cursor = await services.store.list_orders(status=status, limit=limit, cursor=cursor)
        except InvalidCursor:
            raise ApiError(
                400,
                "INVALID_CURSOR",
                "cursor: not a cursor returned by this API",
                [{"field": "cursor", "location": "query", "message": "invalid cursor", "type": "INVALID_CURSOR"}],
            ) from None
        return OrderListResponse(
            orders=[order_view(r, services.tokens) for r in records], next_cursor=next_cursor, limit=limit
        )

    @app.get(
        "/api/orders/execute",
        tags=["orders"],
        summary="WebSocket: submit an order and follow it on one connection",
        description="Open a WebSocket here and send the order (the POST body) as the first message. "
        "You receive `{\"type\": \"accepted\", \"orderId\", \"status\", \"wsUrl\", \"created\", \"order\"}` "
        "and then the order's status events, until the final one (close code 1000). A plain GET "
        "is answered 426.",
        status_code=426,
        responses={426: error_example(426, "UPGRADE_REQUIRED", "open a WebSocket on this path")},
    )
    async def execute_upgrade_info() -> JSONResponse:
        return JSONResponse(
            error_body(
                "UPGRADE_REQUIRED",
                "open a WebSocket on this path and send the order as the first message "
                "(or POST the order here over HTTP)",
                {"websocket": "/api/orders/execute"},
            ),
            status_code=426,
            headers={"Upgrade": "websocket"},
        )

    @app.get(
        "/api/orders/{orderId}",
        tags=["orders"],
        response_model=OrderView,
        dependencies=[Depends(limit_reads)],
        summary="Get an order",
        description="Its current status and, once known, route, fill (amountOut, executedPrice, fee, "
        "priceImpactBps, dex, txSignature) or error.",
        responses={
            400: error_example(400, "INVALID_ORDER_ID", "orderId: 'abc' is not an order id"),
            404: error_example(404, "ORDER_NOT_FOUND", f"no order with id {ORDER_ID_EXAMPLE}"),
        },
    )
    async def get_order(order_id: OrderIdPath, services: ServicesDep) -> OrderView:
        oid = order_id_or_error(order_id)
        record = await services.store.get_order(oid)
        if record is None:
            raise not_found(oid)
        return order_view(record, services.tokens)

    @app.get(
        "/api/orders/{orderId}/history",
        tags=["orders"],
        response_model=HistoryResponse,
        dependencies=[Depends(limit_reads)],
        summary="An order's status history",
        description="Every status change, oldest first (what the WebSocket replays). `afterSeq` "
        "returns only later events.",
        responses={
            400: error_example(400, "INVALID_ORDER_ID", "orderId: 'abc' is not an order id"),
            404: error_example(404, "ORDER_NOT_FOUND", f"no order with id {ORDER_ID_EXAMPLE}"),
        },
    )
    async def order_history(
        order_id: OrderIdPath,
        services: ServicesDep,
        after_seq: Annotated[int, Query(alias="afterSeq", ge=0, le=1_000_000, description="Only events after it.")] = 0,
    ) -> HistoryResponse:
        oid = order_id_or_error(order_id)
        record = await services.store.get_order(oid)
        if record is None:
            raise not_found(oid)
        events = await services.store.history(oid, after_seq=after_seq)
        return HistoryResponse(
            order_id=oid,
            status=record.status,
            final=record.is_final,
            events=[StatusEventView.model_validate(e.to_json()) for e in events],
        )

    @app.get(
        "/api/orders/{orderId}/ws",
        tags=["orders"],
        summary="WebSocket: an order's status stream",
        description="Open a WebSocket here. You receive the events so far, then live ones, each once and "
        "in `seq` order: `{\"type\": \"status\", \"orderId\", \"seq\", \"status\", \"attempt\", "
        "\"timestamp\", \"details\"}`. The server closes with 1000 after `confirmed` or `failed`; an "
        "unknown or malformed id is closed with 4404 and a reason. A plain GET is answered 426.",
        status_code=426,
        responses={426: error_example(426, "UPGRADE_REQUIRED", "open a WebSocket on this path")},
    )
    async def order_ws_info(order_id: OrderIdPath) -> JSONResponse:
        return JSONResponse(
            error_body(
                "UPGRADE_REQUIRED",
                "this is a WebSocket endpoint: connect with ws:// (or wss://) to stream the order's status",
                {"websocket": f"/api/orders/{order_id[:64]}/ws"},
            ),
            status_code=426,
            headers={"Upgrade": "websocket"},
        )

    # ------------------------------------------------------------------ WebSockets

    async def with_socket_slot(websocket: WebSocket, handler: Any) -> None:
        """Run a WebSocket handler if the client may open one more socket, else close 4429."""
        limits = get_limits(websocket)
        client = client_key(websocket)
        if not limits.open_socket(client):
            cap = limits.ws_per_client
            await stream.reject(
                websocket, stream.CLOSE_RATE_LIMITED, f"too many WebSockets: at most {cap} open per client",
                {"error": error_body("TOO_MANY_CONNECTIONS", f"this client already has {cap} WebSockets open, the "
                                     f"most it may; close one first", {"limit": cap, "client": client[:140]})["error"]},
            )  # fmt: skip
            return
        try:
            await handler()
        finally:
            limits.close_socket(client)

    @app.websocket("/api/orders/{orderId}/ws", name="order_ws")
    async def order_ws(websocket: WebSocket, order_id: Annotated[str, Path(alias="orderId")]) -> None:
        await with_socket_slot(websocket, lambda: _order_ws(websocket, order_id))

    async def _order_ws(websocket: WebSocket, order_id: str) -> None:
        services = get_services(websocket)
        oid = canonical_order_id(order_id)
        if oid is None:
            message = f"{order_id[:80]!r} is not an order id (a UUID)"
            await stream.reject(
                websocket, stream.CLOSE_NOT_FOUND, f"order id {order_id[:60]!r} is not a UUID",
                error_body("INVALID_ORDER_ID", message, {"orderId": order_id[:80]}),
            )  # fmt: skip
            return
        try:
            record = await services.store.get_order(oid)
        except Exception as exc:
            outage = unavailable_error(exc)
            if outage is None:
                log.exception("order %s: lookup failed", oid)
            await stream.reject(websocket, stream.CLOSE_TRY_AGAIN, "storage unavailable; retry shortly")
            return
        if record is None:
            await stream.reject(
                websocket, stream.CLOSE_NOT_FOUND, f"order {oid} not found",
                {"error": error_body("ORDER_NOT_FOUND", f"no order with id {oid}", {"orderId": oid})["error"]},
            )  # fmt: skip
            return
        await websocket.accept()
        await stream.stream_order(websocket, services, oid)

    @app.websocket("/api/orders/execute")
    async def execute_ws(websocket: WebSocket) -> None:
        await with_socket_slot(websocket, lambda: _execute_ws(websocket))

    async def _execute_ws(websocket: WebSocket) -> None:
        services = get_services(websocket)
        await websocket.accept()
        opts = services.options
        try:
            raw = await asyncio.wait_for(websocket.receive(), opts.ws_first_message_timeout_s)
        except TimeoutError:
            await stream.reject(
                websocket, stream.CLOSE_POLICY, "no order received in time",
                {"error": error_body("TIMEOUT", f"send the order as the first message within "
                                                f"{opts.ws_first_message_timeout_s:g}s")["error"]},
            )  # fmt: skip
            return
        if raw["type"] == "websocket.disconnect":
            return
        text = raw.get("text")
        if text is None and raw.get("bytes") is not None:
            try:
                text = raw["bytes"].decode()
            except UnicodeDecodeError:
                text = None
        try:
            await get_limits(websocket).check("orders", client_key(websocket))
            if text is None:
                raise ApiError(400, "MALFORMED_JSON", "the first message must be the order as JSON text")
            if len(text.encode()) > max_body_bytes:
                raise ApiError(
                    413, "PAYLOAD_TOO_LARGE", f"the order message is limited to {max_body_bytes} bytes",
                    {"maxBytes": max_body_bytes},
                )  # fmt: skip
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
                body = ExecuteOrderRequest.model_validate(payload)
            except ValidationError as exc:
                raise validation_error([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
            key = _check_idempotency_key(websocket.headers.get("idempotency-key"))
            order = validate_order(
                body, services.tokens,
                default_slippage_bps=opts.default_slippage_bps, max_slippage_bps=opts.max_slippage_bps,
            )  # fmt: skip
            record, created = await submit_order(
                services, order, idempotency_key=key, client_id=_client_id(websocket.headers.get("x-client-id"))
            )
        except ApiError as err:
            code = {409: stream.CLOSE_CONFLICT, 429: stream.CLOSE_RATE_LIMITED, 503: stream.CLOSE_TRY_AGAIN}.get(
                err.status_code, stream.CLOSE_BAD_REQUEST
            )
            await stream.reject(websocket, code, stream.close_reason(f"{err.code}: {err.message}"),
                                {"status": err.status_code, **err.body()})  # fmt: skip
            return
        ws_url, ws_path = _ws_urls(websocket, record.id)
        await websocket.send_json(
            {
                "type": "accepted",
                "orderId": record.id,
                "status": str(record.status),
                "created": created,
                "wsUrl": ws_url,
                "wsPath": ws_path,
                "order": {
                    "type": record.type,
                    "tokenIn": record.token_in,
                    "tokenOut": record.token_out,
                    "amountIn": record.amount_in_decimal,
                    "slippageBps": record.slippage_bps,
                },
            }
        )
        await stream.stream_order(websocket, services, record.id)

    # ------------------------------------------------------------------ market

    @app.get(
        "/api/pools",
        tags=["market"],
        response_model=PoolsResponse,
        dependencies=[Depends(limit_reads)],
        summary="Every pool",
        description="DEX, pair, fee, spot price and reserves (token units) of every simulated pool, now.",
        responses={503: error_example(503, "ENGINE_UNAVAILABLE", "the engine did not answer")},
    )
    async def pools(services: ServicesDep) -> PoolsResponse:
        summaries = await services.engine.pool_summaries()
        return PoolsResponse(pools=[pool_view(s, services.tokens) for s in summaries])

    @app.get(
        "/api/quote",
        tags=["market"],
        response_model=QuoteResponse,
        dependencies=[Depends(limit_reads)],
        summary="Preview a route",
        description="The route the router would take now for this order, with every venue's quote "
        "(amounts in token units). Nothing is stored or executed. Answers 422 (NO_ROUTE, "
        "INSUFFICIENT_LIQUIDITY, ...) when nothing can fill it, with the quotes in `details`.",
        responses={
            422: error_example(422, "INSUFFICIENT_LIQUIDITY", "no pool can fill 1000000 SOL -> USDC",
                               {"quotes": [], "skipped": []}),
            503: error_example(503, "ENGINE_UNAVAILABLE", "the engine did not answer"),
        },
    )
    async def quote(
        services: ServicesDep,
        token_in: Annotated[str, Query(alias="tokenIn", max_length=64, description="Symbol or mint.", examples=["SOL"])],
        token_out: Annotated[str, Query(alias="tokenOut", max_length=64, description="Symbol or mint.", examples=["USDC"])],
        amount_in: Annotated[
            str | None, Query(alias="amountIn", max_length=64, description="Token units.", examples=["1.5"])
        ] = None,
        amount: Annotated[str | None, Query(max_length=64, description="Alias of amountIn.")] = None,
        slippage_bps: Annotated[
            int | None, Query(alias="slippageBps", description="For minAmountOut (default 50).", examples=[100])
        ] = None,
    ) -> QuoteResponse:
        problems = _Problems(location="query")
        t_in = resolve_token(token_in, services.tokens, "tokenIn", problems)
        t_out = resolve_token(token_out, services.tokens, "tokenOut", problems)
        if t_in is not None and t_out is not None and t_in == t_out:
            problems.add("SAME_TOKEN", "tokenOut", f"must differ from tokenIn (both are {t_in.symbol})")
        field, raw = ("amount", amount) if amount_in is None and amount is not None else ("amountIn", amount_in)
        parsed = parse_amount(raw, t_in, field, problems)
        opts = services.options
        bps = parse_slippage(slippage_bps, None, problems, default=opts.default_slippage_bps,
                             maximum=opts.max_slippage_bps)  # fmt: skip
        for p in problems.items:
            p["location"] = "query"
        problems.raise_if_any()
        assert t_in is not None and t_out is not None and parsed is not None and bps is not None
        decision = await services.engine.route(t_in.symbol, t_out.symbol, parsed[0])
        quotes = [quote_view(q, t_in, t_out) for q in decision.get("quotes") or []]
        skipped = list(decision.get("skipped") or [])
        if decision.get("route") is None:
            err = decision.get("error") or {"code": "NO_ROUTE", "message": "no route", "transient": False}
            details = {
                "quotes": [q.model_dump(by_alias=True, exclude_none=True) for q in quotes],
                "skipped": skipped,
            }
            status = 503 if err.get("transient") else 422
            raise ApiError(status, err.get("code", "NO_ROUTE"), err.get("message", "no route"), details)
        route = route_view(decision["route"], services.tokens, bps)
        assert route is not None
        best_dex = "+".join(sorted({leg.dex for leg in route.legs}))
        return QuoteResponse(
            token_in=t_in.symbol,
            token_out=t_out.symbol,
            amount_in=parsed[1],
            slippage_bps=bps,
            route=route,
            quotes=quotes,
            skipped=skipped,
            best_dex=best_dex,
            reason=decision.get("reason") or "",
        )

    # ------------------------------------------------------------------ operations

    @app.get(
        "/api/queue/metrics",
        tags=["operations"],
        response_model=QueueMetricsResponse,
        dependencies=[Depends(limit_reads)],
        summary="Queue metrics",
        description="waiting (queued), running, retrying (waiting out a backoff), completed and failed "
        "(all time, from PostgreSQL), the rate limit and the concurrency. `running` is null and "
        "`engineAvailable` false when the dispatcher does not answer.",
        responses={503: error_example(503, "REDIS_UNAVAILABLE", "Redis is unavailable. Retry shortly.")},
    )
    async def queue_metrics(services: ServicesDep) -> QueueMetricsResponse:
        async def dispatcher() -> dict[str, Any] | None:
            try:
                return await services.engine.dispatcher_stats()
            except EngineUnavailable as exc:
                log.warning("dispatcher stats unavailable: %s", exc)
                return None

        depth, counts, stats = await asyncio.gather(
            services.queue.depth(), services.store.count_by_status(), dispatcher()
        )
        return QueueMetricsResponse(
            waiting=depth.waiting,
            running=None if stats is None else int(stats.get("running", 0)),
            retrying=depth.delayed,
            completed=counts.get("confirmed", 0),
            failed=counts.get("failed", 0),
            rate_limit_per_minute=int(
                stats.get("rateLimitPerMinute", services.rate_limit_per_minute) if stats else services.rate_limit_per_minute
            ),
            concurrency=int(stats.get("concurrency", services.concurrency) if stats else services.concurrency),
            by_status=counts,
            dispatcher=stats,
            engine_available=stats is not None,
        )

    @app.get(
        "/health",
        tags=["operations"],
        response_model=HealthResponse,
        summary="Health check",
        description="Probes PostgreSQL, Redis and the engine's Ray actors. 200 when all answer; 503 "
        "naming the ones that do not.",
        responses={
            503: {
                "model": HealthResponse,
                "description": "Something is down",
                "content": {
                    "application/json": {
                        "example": {
                            "status": "unavailable",
                            "checks": {
                                "postgres": {"ok": True, "latencyMs": 0.8},
                                "redis": {"ok": False, "error": "ConnectionError: connection refused"},
                                "ray": {"ok": True, "latencyMs": 3.1},
                            },
                            "down": ["redis"],
                            "error": error_body("UNHEALTHY", "down: redis", {"down": ["redis"]})["error"],
                        }
                    }
                },
            }
        },
    )
    async def health(services: ServicesDep, response: Response) -> HealthResponse:
        timeout = services.options.probe_timeout_s
        checks = dict(
            zip(
                ("postgres", "redis", "ray"),
                await asyncio.gather(
                    _probe(_ping_postgres(services.db), timeout),
                    _probe(services.redis.ping(), timeout),
                    _probe_engine(services.engine, timeout),
                ),
                strict=True,
            )
        )
        down = [name for name, check in checks.items() if not check["ok"]]
        error = None
        if down:
            response.status_code = 503
            error = error_body("UNHEALTHY", f"down: {', '.join(down)}", {"down": down})["error"]
        return HealthResponse.model_validate(
            {"status": "unavailable" if down else "ok", "checks": checks, "down": down, "error": error}
        )

    return app


# --------------------------------------------------------------------------- helpers


async def _ping_postgres(pool: Any) -> None:
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")


async def _probe(awaitable: Any, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        return {"ok": False, "error": f"no answer in {timeout:g}s"}
    except Exception as exc:  # noqa: BLE001 — a probe reports, it never raises
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}


async def _probe_engine(engine: Any, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(engine.health(), timeout)
    except TimeoutError:
        return {"ok": False, "error": f"no answer in {timeout:g}s"}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    ok = bool(result.get("ok"))
    out: dict[str, Any] = {"ok": ok, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}
    if not ok:
        out = {"ok": False, "error": str(result.get("error", "unhealthy"))[:300]}
    return out
