"""Who is calling: the API key a request carries, and what its owner may see and do.

A key travels as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; a
browser's WebSocket, which cannot set headers, offers it as the subprotocol
``dexengine.key.<key>`` beside ``dexengine`` (the socket is accepted with
``dexengine``). When keys are not required every caller is the one anonymous
owner, who may do everything (a local engine, as the original spec's clients
expect).

An order belongs to the key that placed it: anyone else is told it does not
exist (``404``, no existence leak); an admin key sees every order and alone
may read the queue, scrape ``/metrics`` and drive the simulation (``403`` for
other keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from serve.errors import ApiError, error_example
from serve.services import Services

SUBPROTOCOL = "dexengine"
KEY_SUBPROTOCOL = "dexengine.key."
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dexengine"'}


@dataclass(frozen=True, slots=True)
class Caller:
    """``owner``: the key's name (None: anonymous, keys not required)."""

    owner: str | None
    admin: bool
    keyed: bool

    def may_see(self, owner: str | None) -> bool:
        return self.admin or owner == self.owner

    @property
    def limit_key(self) -> str | None:
        """What per-client limits count under: the owner, when the caller has a key."""
        return f"key:{self.owner}" if self.keyed else None


ANONYMOUS = Caller(owner=None, admin=True, keyed=False)

UNAUTHORIZED_EXAMPLE = error_example(
    401, "UNAUTHORIZED", "this API needs a key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
)
FORBIDDEN_EXAMPLE = error_example(403, "FORBIDDEN", "this needs an admin key")


def offered_subprotocols(conn: HTTPConnection) -> list[str]:
    raw = conn.headers.get("sec-websocket-protocol") or ""
    return [part.strip() for part in raw.split(",") if part.strip()]


def presented_key(conn: HTTPConnection) -> str | None:
    authorization = conn.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    header = conn.headers.get("x-api-key")
    if header and header.strip():
        return header.strip()
    if conn.scope.get("type") == "websocket":
        for offered in offered_subprotocols(conn):
            if offered.startswith(KEY_SUBPROTOCOL):
                return offered[len(KEY_SUBPROTOCOL):]
    return None


def accepted_subprotocol(conn: HTTPConnection) -> str | None:
    """The subprotocol to accept a WebSocket with: ``dexengine`` when the client offered it."""
    return SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(conn) else None


async def identify(conn: HTTPConnection, services: Services) -> Caller:
    """The caller of ``conn``; ApiError 401 when keys are required and none valid came with it."""
    ring = services.keys
    if ring is None or not await ring.required():
        return ANONYMOUS
    key = presented_key(conn)
    if key is None:
        raise ApiError(
            401, "UNAUTHORIZED",
            "this API needs a key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'", None, _CHALLENGE,
        )  # fmt: skip
    record = await ring.identify(key)
    if record is None:
        raise ApiError(401, "INVALID_API_KEY", "the API key is not valid (unknown, revoked or mistyped)", None,
                       _CHALLENGE)  # fmt: skip
    return Caller(owner=record.name, admin=record.admin, keyed=True)


async def get_caller(conn: HTTPConnection) -> Caller:
    services = getattr(conn.app.state, "services", None)
    if services is None:  # pragma: no cover - the lifespan did not run
        raise ApiError(503, "SERVICE_UNAVAILABLE", "the API is starting up; retry shortly")
    return await identify(conn, services)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def require_admin(caller: CallerDep) -> Caller:
    if not caller.admin:
        raise ApiError(403, "FORBIDDEN", "this needs an admin key (dexengine keys create --name NAME --admin)")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]
