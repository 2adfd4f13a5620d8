"""The asyncio Redis client the engine uses, with reconnect-and-retry configured.

``redis.asyncio.Redis.from_url`` alone does not retry: after a Redis restart
the first command on every pooled connection fails with ``ConnectionError``.
This client retries connection errors and timeouts with a short exponential
backoff, so a restart (a fraction of a second with ``LocalRedis``) is ridden
out. A retried command may run twice if the server executed it before the
connection dropped; everything built on it is at-least-once and idempotent
downstream (order CAS transitions, one trade per order leg).

Keep ``OrderQueue.read(block_ms=...)`` below ``socket_timeout``.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError


def open_redis(
    url: str,
    *,
    retries: int = 8,
    socket_timeout: float = 10.0,
    max_connections: int | None = None,
    decode_responses: bool = False,
) -> aioredis.Redis:
    """A client for ``url`` that reconnects across a server restart (~2 s of retries)."""
    return aioredis.Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), retries),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        socket_timeout=socket_timeout,
        socket_connect_timeout=min(socket_timeout, 5.0),
        socket_keepalive=True,
        health_check_interval=30,
        max_connections=max_connections,
        decode_responses=decode_responses,
    )
