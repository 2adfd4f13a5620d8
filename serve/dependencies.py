"""What the endpoints are handed: the process's services and limits, and a checked order submission."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Depends, Header, Request
from starlette.requests import HTTPConnection

from serve.auth import CallerDep
from serve.errors import ApiError
from serve.limits import ClientLimits, client_key
from serve.requests import EXECUTE_EXAMPLES, ExecuteOrderRequest
from serve.services import Services
from serve.submission import OrderSubmission, take_order


def _starting_up() -> ApiError:  # pragma: no cover - the lifespan did not run
    return ApiError(503, "SERVICE_UNAVAILABLE", "the API is starting up; retry shortly")


def get_services(conn: HTTPConnection) -> Services:
    services = getattr(conn.app.state, "services", None)
    if services is None:  # pragma: no cover - the lifespan did not run
        raise _starting_up()
    return services


def get_limits(conn: HTTPConnection) -> ClientLimits:
    limits = getattr(conn.app.state, "limits", None)
    if limits is None:  # pragma: no cover - the lifespan did not run
        raise _starting_up()
    return limits


def order_message_limit(conn: HTTPConnection) -> int:
    """The most bytes an order may take: the HTTP body limit, applied to the WebSocket upgrade's message."""
    return int(conn.app.state.max_body_bytes)


ServicesDep = Annotated[Services, Depends(get_services)]
LimitsDep = Annotated[ClientLimits, Depends(get_limits)]
OrderMessageLimitDep = Annotated[int, Depends(order_message_limit)]


async def limit_orders(request: Request, limits: LimitsDep, caller: CallerDep) -> None:
    """Counts an order submission against the client's limit (429 over it); the client is the key's owner
    when keys are in use."""
    await limits.check("orders", caller.limit_key or client_key(request))


async def limit_reads(request: Request, limits: LimitsDep, caller: CallerDep) -> None:
    await limits.check("reads", caller.limit_key or client_key(request))


async def order_submission(
    services: ServicesDep,
    caller: CallerDep,
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
) -> OrderSubmission:
    """The POSTed order once well-formed (422), under a valid key (400) and valid on this market (422)."""
    await services.learn_tokens(body.token_in, body.token_out)
    return take_order(body, services, idempotency_key=idempotency_key, client_id=client_id, owner=caller.owner)


OrderSubmissionDep = Annotated[OrderSubmission, Depends(order_submission)]
