"""The order queue: a Redis Stream read by a consumer group, plus a ZSET of delayed retries.

* ``enqueue`` adds ``{order_id}`` to the stream; ``read`` hands new entries to
  one consumer; they stay *pending* (unacked) until ``ack``, which also
  deletes the entry, so ``XLEN - pending`` is the number still waiting.
* A restarted consumer takes back its own unacked entries with
  ``pending_for``; entries of a dead consumer are taken over with
  ``claim_stale`` (XAUTOCLAIM).
* Two lanes: orders fired by a stop (and snipers) go to ``orders:queue:priority``,
  which every read serves first; their message ids carry a ``p:`` prefix, so
  ``ack`` and ``defer`` know the lane. Everything else reads both lanes.
* Retries wait in the ZSET ``orders:delayed`` (score = due time, epoch
  seconds) until ``promote_due`` moves them atomically (Lua) into the stream.
* If Redis lost the stream (restart without persistence), the group is
  recreated on the ``NOGROUP`` error and the call retried; the orders
  themselves are recovered from PostgreSQL (``OrderStore.unfinished_orders``).

Delivery is at-least-once: consumers must be idempotent (the order CAS
transitions and the per-(order, leg) trade uniqueness make them so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

T = TypeVar("T")
Entry = tuple[str, str]  # (message id, order id)
PRIORITY_TAG = "p:"

_PROMOTE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, order_id in ipairs(due) do
    redis.call('XADD', KEYS[2], '*', 'order_id', order_id)
end
if #due > 0 then
    redis.call('ZREM', KEYS[1], unpack(due))
end
return #due
"""


@dataclass(frozen=True, slots=True)
class QueueDepth:
    waiting: int  # in the stream, not yet handed to a consumer
    pending: int  # handed to a consumer, not yet acked
    delayed: int  # waiting for their retry time

    @property
    def total(self) -> int:
        return self.waiting + self.pending + self.delayed

    def to_json(self) -> dict[str, int]:
        return {
            "waiting": self.waiting,
            "pending": self.pending,
            "delayed": self.delayed,
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An entry handed to a consumer and not acknowledged yet."""

    msg_id: str
    order_id: str | None  # None when the entry was deleted while pending
    consumer: str
    idle_ms: int  # since it was (last) delivered


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_nogroup(error: ResponseError) -> bool:
    return str(error).startswith("NOGROUP")


class OrderQueue:
    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str = "orders:queue",
        group: str = "executors",
        *,
        delayed_key: str = "orders:delayed",
        promote_batch: int = 500,
        priority_stream: str | None = None,
    ) -> None:
        self._redis = redis
        self.stream = stream
        self.priority_stream = priority_stream or f"{stream}:priority"
        self.group = group
        self.delayed_key = delayed_key
        self._promote_batch = promote_batch
        self._promote = redis.register_script(_PROMOTE_DUE)

    @property
    def _lanes(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """(stream, message id tag) of each lane, the priority lane first."""
        return (self.priority_stream, PRIORITY_TAG), (self.stream, "")

    def _lane_of(self, msg_id: str) -> tuple[str, str]:
        """(stream, Redis message id) of a message id as we hand it out."""
        if msg_id.startswith(PRIORITY_TAG):
            return self.priority_stream, msg_id[len(PRIORITY_TAG):]
        return self.stream, msg_id

    async def ensure_group(self) -> None:
        """Create the streams and group if missing (from the stream's start: nothing is skipped)."""
        for stream, _tag in self._lanes:
            try:
                await self._redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    async def _with_group(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except ResponseError as error:
            if not _is_nogroup(error):
                raise
        await self.ensure_group()
        return await call()

    async def enqueue(self, order_id: str, *, priority: bool = False) -> str:
        if priority:
            return PRIORITY_TAG + _text(await self._redis.xadd(self.priority_stream, {"order_id": order_id}))
        return _text(await self._redis.xadd(self.stream, {"order_id": order_id}))

    async def read(self, consumer: str, count: int = 1, block_ms: int | None = None) -> list[Entry]:
        """New entries for ``consumer``, the priority lane's first; blocks up to ``block_ms``
        (None: do not block). One read of both lanes: up to ``count`` entries from each."""
        lanes = {stream: ">" for stream, _tag in self._lanes}
        read = partial(self._redis.xreadgroup, self.group, consumer, lanes, count=count, block=block_ms)
        return self._entries(await self._with_group(read))

    async def pending_for(self, consumer: str, *, batch: int = 100) -> list[Entry]:
        """Every entry delivered to ``consumer`` and not acked (to resume after a restart)."""
        entries: list[Entry] = []
        for stream, tag in self._lanes:
            last = "0"
            while True:
                read = partial(self._redis.xreadgroup, self.group, consumer, {stream: last}, count=batch)
                page = self._entries(await self._with_group(read))
                entries.extend(page)
                if len(page) < batch:
                    break
                last = page[-1][0].removeprefix(tag)
        return entries

    async def claim_stale(self, consumer: str, min_idle_ms: int, *, count: int = 100) -> list[Entry]:
        """Take over up to ``count`` entries idle for ``min_idle_ms`` in other consumers' hands."""
        claimed: list[Entry] = []
        for stream, tag in self._lanes:
            cursor = "0-0"
            while len(claimed) < count:
                claim = partial(
                    self._redis.xautoclaim,
                    stream, self.group, consumer, min_idle_ms, start_id=cursor, count=count - len(claimed),
                )  # fmt: skip
                reply = await self._with_group(claim)
                cursor = _text(reply[0])
                claimed.extend(self._pairs(reply[1], tag))
                if cursor == "0-0":
                    break
        return claimed

    async def ack(self, msg_id: str) -> bool:
        """Acknowledge and delete the entry; False if it was not pending."""
        stream, msg_id = self._lane_of(msg_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, self.group, msg_id)
            pipe.xdel(stream, msg_id)
            acked, _deleted = await pipe.execute(raise_on_error=False)
        if isinstance(acked, ResponseError):
            if _is_nogroup(acked):
                return False
            raise acked
        return bool(acked)

    async def defer(self, msg_id: str, order_id: str, due_at: float) -> None:
        """Atomically: schedule a retry of ``order_id`` and ack its current entry.

        A retry comes back in the normal lane: the priority was for the firing, not for retries."""
        stream, msg_id = self._lane_of(msg_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.delayed_key, {order_id: due_at})
            pipe.xack(stream, self.group, msg_id)
            pipe.xdel(stream, msg_id)
            await pipe.execute(raise_on_error=False)

    async def promote_due(self, now: float) -> int:
        """Move every retry due by ``now`` into the stream; returns how many moved."""
        moved = 0
        while True:
            batch = int(
                await self._promote(
                    keys=[self.delayed_key, self.stream], args=[repr(float(now)), self._promote_batch]
                )
            )
            moved += batch
            if batch < self._promote_batch:
                return moved

    async def next_due(self) -> float | None:
        """When the earliest retry is due (epoch seconds); None when none waits."""
        first = await self._redis.zrange(self.delayed_key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def depth(self) -> QueueDepth:
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, _tag in self._lanes:
                pipe.xlen(stream)
                pipe.xpending(stream, self.group)
            pipe.zcard(self.delayed_key)
            *lanes, delayed = await pipe.execute(raise_on_error=False)
        if isinstance(delayed, Exception):
            raise delayed
        waiting = pending = 0
        for length, pending_info in zip(lanes[::2], lanes[1::2], strict=True):
            if isinstance(length, Exception):
                raise length
            lane_pending = 0
            if isinstance(pending_info, ResponseError):
                if not _is_nogroup(pending_info):
                    raise pending_info
            else:
                lane_pending = int(pending_info["pending"])
            waiting += max(0, int(length) - lane_pending)
            pending += lane_pending
        return QueueDepth(waiting=waiting, pending=pending, delayed=int(delayed))

    async def queued_order_ids(self, *, batch: int = 1000) -> set[str]:
        """Every order id still in the stream (waiting or unacked) or waiting to retry."""
        ids: set[str] = set()
        for stream, _tag in self._lanes:
            start = "-"
            while True:
                messages = await self._redis.xrange(stream, min=start, max="+", count=batch)
                ids.update(order_id for _, order_id in self._pairs(messages))
                if len(messages) < batch:
                    break
                start = "(" + _text(messages[-1][0])
        ids.update(_text(m) for m in await self._redis.zrange(self.delayed_key, 0, -1))
        return ids

    async def pending_entries(self, *, batch: int = 500) -> list[PendingEntry]:
        """Every entry delivered and not acknowledged, with its order and how long it has been idle."""
        entries: list[PendingEntry] = []
        for stream, tag in self._lanes:
            entries += await self._pending_in(stream, tag, batch)
        return entries

    async def _pending_in(self, stream: str, tag: str, batch: int) -> list[PendingEntry]:
        entries: list[PendingEntry] = []
        start = "-"
        while True:
            try:
                page = await self._redis.xpending_range(stream, self.group, start, "+", batch)
            except ResponseError as error:
                if _is_nogroup(error):
                    return entries
                raise
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in page:
                    pipe.xrange(stream, min=row["message_id"], max=row["message_id"])
                found = await pipe.execute()
            for row, messages in zip(page, found, strict=True):
                pairs = self._pairs(messages)
                entries.append(PendingEntry(
                    tag + _text(row["message_id"]), pairs[0][1] if pairs else None, _text(row["consumer"]),
                    int(row["time_since_delivered"]),
                ))  # fmt: skip
            if len(page) < batch:
                return entries
            start = "(" + _text(page[-1]["message_id"])

    # -- parsing ---------------------------------------------------------------
    def _entries(self, reply: Any) -> list[Entry]:
        entries: list[Entry] = []
        if not reply:
            return entries
        streams = reply.items() if isinstance(reply, dict) else reply  # RESP3 gives a dict
        by_stream = {_text(stream): messages for stream, messages in streams}
        for stream, tag in self._lanes:  # the priority lane first
            entries.extend(self._pairs(by_stream.get(stream), tag))
        return entries

    @staticmethod
    def _pairs(messages: Any, tag: str = "") -> list[Entry]:
        pairs: list[Entry] = []
        for msg_id, fields in messages or []:
            if msg_id is None or not fields:
                continue  # an entry deleted while pending
            order_id = fields.get(b"order_id", fields.get("order_id"))
            if order_id is not None:
                pairs.append((tag + _text(msg_id), _text(order_id)))
        return pairs
