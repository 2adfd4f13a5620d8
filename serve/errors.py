"""One JSON error shape for every failure the API reports.

    {"error": {"code": "UNKNOWN_TOKEN", "message": "tokenIn: ...", "details": {...}}}

``ApiError`` is raised by the endpoints; the handlers installed by
:func:`install_error_handlers` turn it, FastAPI's validation errors,
Starlette's HTTP errors (404 for unknown routes, 405), database and Redis
outages (503) and anything unexpected (500, never for client input) into
that shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import EngineUnavailable
from serve.camel import CamelModel

log = logging.getLogger("serve.errors")


class ApiError(Exception):
    """An error the client is told about, with a stable ``code``."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status_code: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status_code, headers=headers)


# --------------------------------------------------------------------------- OpenAPI models


class ErrorInfo(CamelModel):
    code: str = Field(description="Stable, machine-readable error code.", examples=["UNKNOWN_TOKEN"])
    message: str = Field(description="What is wrong, for humans.", examples=["tokenIn: unknown token 'DOGE'"])
    details: Any = Field(None, description="Structured context: the fields at fault, limits, ids.")


class ErrorResponse(BaseModel):
    """The one error shape of this API."""

    error: ErrorInfo


def error_example(status: int, code: str, message: str, details: Any = None, summary: str | None = None) -> dict:
    """An entry for a route's ``responses=`` with one example of the error shape."""
    return {
        "model": ErrorResponse,
        "description": summary or message,
        "content": {"application/json": {"example": error_body(code, message, details)}},
    }


# --------------------------------------------------------------------------- validation errors

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    426: "UPGRADE_REQUIRED",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "amountIn")`` -> ``amountIn``; ``("query", "limit")`` -> ``limit``."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    # pydantic reports a failing union member / validator by its name: drop those
    parts = [p for p in parts if not p.startswith("function-") and p not in ("str", "int", "float", "decimal")]
    return ".".join(parts) or "body"


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return str(loc[0]) if loc and loc[0] in ("body", "query", "path", "header", "cookie") else "body"


def _clean_msg(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def validation_details(errors: list[dict[str, Any]], prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """pydantic's error list as ``[{field, location, message, type}]``, one per field."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for err in errors:
        loc = tuple(prefix) + tuple(err.get("loc", ()))
        field = field_path(loc)
        message = _clean_msg(str(err.get("msg", "invalid")))
        if err.get("type") == "missing":
            message = "field required"
        key = (field, message)
        if key in seen:
            continue
        seen.add(key)
        item = {"field": field, "location": _location(loc), "message": message, "type": err.get("type")}
        ctx = err.get("ctx") or {}
        if err.get("type") == "json_invalid" and ctx.get("error"):
            item["message"] = f"malformed JSON: {ctx['error']}"
        out.append(item)
    return out


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    """The ApiError for a list of pydantic errors (malformed JSON is a 400)."""
    if any(e.get("type") == "json_invalid" for e in errors):
        err = next(e for e in errors if e.get("type") == "json_invalid")
        ctx = err.get("ctx") or {}
        pos = err.get("loc", ("body", None))[-1]
        where = f" at character {pos}" if isinstance(pos, int) else ""
        return ApiError(
            400,
            "MALFORMED_JSON",
            f"the request body is not valid JSON{where}: {ctx.get('error', 'decode error')}",
            {"position": pos if isinstance(pos, int) else None},
        )
    details = validation_details(errors)
    if len(details) == 1:
        d = details[0]
        message = f"{d['field']}: {d['message']}"
    else:
        message = "invalid request: " + "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return ApiError(422, "VALIDATION_ERROR", message, details)


# --------------------------------------------------------------------------- handlers


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    err = validation_error(list(exc.errors()))
    return error_response(err.status_code, err.code, err.message, err.details)


async def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR" if exc.status_code < 500 else "SERVER_ERROR")
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and (detail is None or detail == "Not Found"):
        message = f"no such endpoint: {request.method} {request.url.path}"
        details: Any = {"path": request.url.path, "docs": "/docs"}
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
        details = {"allow": exc.headers.get("Allow") if exc.headers else None}
    else:
        message = detail or f"HTTP {exc.status_code}"
        details = None if isinstance(exc.detail, str) else exc.detail
    return error_response(exc.status_code, code, message, details, getattr(exc, "headers", None))


def _is_database_error(exc: BaseException) -> bool:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout))


def _is_redis_error(exc: BaseException) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (RedisConnectionError, RedisTimeout))


def unavailable_error(exc: BaseException) -> ApiError | None:
    """A 503 for an outage of PostgreSQL, Redis or the engine; None for anything else."""
    if _is_database_error(exc):
        return ApiError(
            503,
            "DATABASE_UNAVAILABLE",
            "PostgreSQL is unavailable; nothing was stored. Retry shortly.",
            {"service": "postgres"},
            {"Retry-After": "1"},
        )
    if _is_redis_error(exc):
        return ApiError(
            503,
            "REDIS_UNAVAILABLE",
            "Redis is unavailable. Retry shortly.",
            {"service": "redis"},
            {"Retry-After": "1"},
        )
    if isinstance(exc, EngineUnavailable):
        return ApiError(
            503,
            "ENGINE_UNAVAILABLE",
            f"the engine did not answer: {exc}",
            {"service": "ray"},
            {"Retry-After": "1"},
        )
    return None


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    outage = unavailable_error(exc)
    if outage is not None:
        log.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return await _api_error(request, outage)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "INTERNAL_ERROR", "internal server error; it has been logged", None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(EngineUnavailable, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
    try:
        import psycopg
        import psycopg_pool

        app.add_exception_handler(psycopg.OperationalError, _unexpected)
        app.add_exception_handler(psycopg.InterfaceError, _unexpected)
        app.add_exception_handler(psycopg_pool.PoolTimeout, _unexpected)
    except ImportError:  # pragma: no cover
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout

        app.add_exception_handler(RedisConnectionError, _unexpected)
        app.add_exception_handler(RedisTimeout, _unexpected)
    except ImportError:  # pragma: no cover
        pass
