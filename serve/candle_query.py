"""The time range of a candles request: its interval, ``from`` and ``to``, judged and made exact.

``from`` and ``to`` are ISO 8601 (a time without an offset is UTC) or Unix
seconds. ``to`` defaults to now and ``from`` to two hours before ``to``;
``from`` is moved back to the start of its bucket, so the first candle is a
whole one. Bad input is a 422 in the API's error shape: ``INVALID_INTERVAL``,
``INVALID_TIME``, ``INVALID_RANGE`` (``from`` not before ``to``),
``TOO_MANY_CANDLES`` (more than :data:`MAX_CANDLES` buckets).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from serve.errors import ApiError

INTERVALS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3_600, "4h": 14_400, "1d": 86_400}
MAX_CANDLES = 1_000
DEFAULT_SPAN = timedelta(hours=2)
MAX_TIME_CHARS = 64
_EPOCH_SECONDS = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CandleRange:
    interval: str
    step: timedelta
    start: datetime  # on a bucket edge
    end: datetime  # exclusive

    @property
    def buckets(self) -> int:
        return math.ceil((self.end - self.start) / self.step)


def _problem(code: str, field: str, message: str) -> ApiError:
    detail = {"field": field, "location": "query", "message": message, "type": code}
    return ApiError(422, code, f"{field}: {message}", [detail])


def parse_time(raw: str, field: str) -> datetime:
    """ISO 8601 or Unix seconds, as an aware UTC time; 422 INVALID_TIME otherwise."""
    text = raw.strip()
    when: datetime | None = None
    if _EPOCH_SECONDS.match(text):
        seconds = float(text)
        if _EARLIEST.timestamp() <= seconds < _LATEST.timestamp():
            when = datetime.fromtimestamp(seconds, UTC)
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    if when is None or not _EARLIEST <= when < _LATEST:
        raise _problem("INVALID_TIME", field, f"{raw[:MAX_TIME_CHARS]!r} is not an ISO 8601 time such as "
                       f'"2030-01-01T00:00:00Z" or Unix seconds between 1970 and 9999')  # fmt: skip
    return when


def _bucket_start(when: datetime, step: timedelta) -> datetime:
    """The start of ``when``'s bucket: the last multiple of ``step`` since the epoch at or before it."""
    return _EARLIEST + ((when - _EARLIEST) // step) * step


def candle_range(interval: str, start: str | None, end: str | None, *, now: datetime) -> CandleRange:
    seconds = INTERVALS.get(interval)
    if seconds is None:
        raise _problem("INVALID_INTERVAL", "interval",
                       f"{interval[:16]!r} is not an interval; use one of {', '.join(INTERVALS)}")  # fmt: skip
    step = timedelta(seconds=seconds)
    until = parse_time(end, "to") if end is not None else now
    since = parse_time(start, "from") if start is not None else until - DEFAULT_SPAN
    if since >= until:
        raise _problem("INVALID_RANGE", "from", "must be before to")
    found = CandleRange(interval, step, max(_bucket_start(since, step), _EARLIEST), until)
    if found.buckets > MAX_CANDLES:
        raise _problem("TOO_MANY_CANDLES", "from",
                       f"{found.buckets} {interval} candles asked for; at most {MAX_CANDLES} per request "
                       "(a shorter range or a longer interval)")  # fmt: skip
    return found
