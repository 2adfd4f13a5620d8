"""Probes of what the API stands on (PostgreSQL, Redis, the engine's actors), for ``/health``.

A probe reports; it never raises. Each has ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from serve.services import Services


class _Unhealthy(Exception):
    """The dependency answered, and said it is not well (its own words are the message)."""


async def _engine_health(engine: Any) -> None:
    result = await engine.health()
    if not result.get("ok"):
        raise _Unhealthy(str(result.get("error", "unhealthy")))


async def _probe(check: Awaitable[Any], timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, timeout)
    except TimeoutError:
        return {"ok": False, "error": f"no answer in {timeout:g}s"}
    except _Unhealthy as exc:
        return {"ok": False, "error": str(exc)[:300]}
    except Exception as exc:  # noqa: BLE001 — a probe reports, it never raises
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 2)}


async def probe_all(services: Services) -> dict[str, dict[str, Any]]:
    """``{"postgres": {...}, "redis": {...}, "ray": {...}}``, each ``{"ok", "latencyMs"}`` or ``{"ok", "error"}``."""
    timeout = services.options.probe_timeout_s
    results = await asyncio.gather(
        _probe(services.health.ping_database(), timeout),
        _probe(services.health.ping_redis(), timeout),
        _probe(_engine_health(services.engine), timeout),
    )
    return dict(zip(("postgres", "redis", "ray"), results, strict=True))
