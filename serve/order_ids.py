"""Order ids at the API's edge: any UUID notation in, the canonical form out, and the errors about them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path
from starlette.requests import HTTPConnection

from serve.errors import ApiError

ORDER_ID_EXAMPLE = "5b0c3f9e-8f0e-4a52-9d0c-6a3f0b7f6f21"

OrderIdPath = Annotated[
    str, Path(alias="orderId", description="The order's id (a UUID).", examples=[ORDER_ID_EXAMPLE], max_length=200)
]


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


def order_not_found(order_id: str) -> ApiError:
    return ApiError(404, "ORDER_NOT_FOUND", f"no order with id {order_id}", {"orderId": order_id})


def stream_urls(conn: HTTPConnection, order_id: str) -> tuple[str, str]:
    """(absolute ws:// URL from the request's host, path) of the order's status stream."""
    url = conn.url_for("order_ws", orderId=order_id)
    scheme = conn.headers.get("x-forwarded-proto", conn.url.scheme).split(",")[0].strip()
    ws_scheme = "wss" if scheme in ("https", "wss") else "ws"
    return str(url.replace(scheme=ws_scheme)), url.path
