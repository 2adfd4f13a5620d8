"""Rate limits shared by every process, as atomic Lua scripts on Redis's own clock.

:class:`SlidingWindowLimiter`: at most ``limit`` hits in any ``window_s``
seconds (an exact sliding log) per key: the engine's starts per minute and
the API's per-client limits.
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

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



class RedisRateWindows:
    """``engine.ports.RateWindows`` on one Redis client."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    def window(self, *, limit: int, window_s: float, prefix: str) -> SlidingWindowLimiter:
        return SlidingWindowLimiter(self._redis, limit=limit, window_s=window_s, prefix=prefix)
