"""Rate limits shared by every process, as atomic Lua scripts on Redis's own clock.

* :class:`TokenBucket` — the engine-wide order rate (e.g. 100 orders/minute):
  ``burst`` tokens, refilled at ``rate_per_s``.
* :class:`SlidingWindowLimiter` — per-client API limits: at most ``limit``
  requests in any ``window_s`` seconds (an exact sliding log).
"""

from __future__ import annotations

import asyncio
import math
import uuid

import redis.asyncio as aioredis

# KEYS[1] bucket hash; ARGV: rate per second, burst.
# Returns "0" when a token was taken, else the seconds until one is available.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
    tokens = burst
    ts = now
end
if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate)
    ts = now
end
local wait = 0
if tokens >= 1 then
    tokens = tokens - 1
else
    wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.6f', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.17g', wait)
"""

# KEYS[1] sorted set of request times; ARGV: limit, window seconds, unique member.
# Returns {allowed (0/1), retry-after seconds as a string}.
_SLIDING_WINDOW = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now - window))
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
    redis.call('ZADD', KEYS[1], string.format('%.6f', now), ARGV[3])
    redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
    return {1, '0'}
end
local oldest = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
local retry = tonumber(oldest[2]) + window - now
if retry < 0 then retry = 0 end
return {0, string.format('%.6f', retry)}
"""


class TokenBucket:
    """``burst`` tokens refilled at ``rate_per_s``; ``rate_per_s <= 0`` means unlimited."""

    def __init__(self, redis: aioredis.Redis, key: str, *, rate_per_s: float, burst: int) -> None:
        if burst < 1 and rate_per_s > 0:
            raise ValueError("burst must be at least 1")
        self.key = key
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self._script = redis.register_script(_TOKEN_BUCKET)

    @property
    def unlimited(self) -> bool:
        return self.rate_per_s <= 0 or math.isinf(self.rate_per_s)

    async def acquire(self) -> float:
        """Take a token: 0.0 if taken, else the seconds to wait (nothing is taken)."""
        if self.unlimited:
            return 0.0
        wait = float(await self._script(keys=[self.key], args=[repr(self.rate_per_s), self.burst]))
        return max(0.0, wait)

    async def wait(self, *, timeout: float | None = None) -> float:
        """Sleep until a token is taken; returns the seconds waited.

        Raises ``TimeoutError`` if that would take longer than ``timeout``.
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            delay = await self.acquire()
            if delay == 0.0:
                return loop.time() - began
            if timeout is not None and loop.time() - began + delay > timeout:
                raise TimeoutError(f"no token from {self.key} within {timeout}s")
            await asyncio.sleep(delay)


class SlidingWindowLimiter:
    """At most ``limit`` hits per ``window_s`` seconds for each client id."""

    def __init__(
        self, redis: aioredis.Redis, *, limit: int, window_s: float, prefix: str = "ratelimit:client"
    ) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.limit = int(limit)
        self.window_s = float(window_s)
        self.prefix = prefix
        self._script = redis.register_script(_SLIDING_WINDOW)

    def key(self, client_id: str) -> str:
        return f"{self.prefix}:{client_id}"

    async def hit(self, client_id: str) -> tuple[bool, float]:
        """Count one request: ``(True, 0.0)`` if allowed, else ``(False, retry_after_s)``."""
        if self.limit <= 0:
            return True, 0.0
        allowed, retry = await self._script(
            keys=[self.key(client_id)], args=[self.limit, repr(self.window_s), uuid.uuid4().hex]
        )
        return bool(int(allowed)), float(retry)

    acquire = hit
