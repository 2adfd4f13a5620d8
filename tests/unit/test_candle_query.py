"""The candles request's time range: interval, from and to judged, the first bucket whole, the count capped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serve.candle_query import MAX_CANDLES, candle_range, parse_time
from serve.errors import ApiError

NOW = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)


def refused(interval: str = "1m", start: str | None = None, end: str | None = None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        candle_range(interval, start, end, now=NOW)
    error = caught.value
    assert error.status_code == 422 and error.details[0]["location"] == "query"
    return error


def test_the_default_is_the_last_two_hours_from_a_whole_bucket() -> None:
    span = candle_range("1m", None, None, now=NOW)

    assert span.end == NOW
    assert span.start == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)  # 10:00:30 moved back to its minute
    assert span.buckets == 121


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1893499200", datetime(2030, 1, 1, 12, tzinfo=UTC)),
        ("1893499200.5", datetime(2030, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
        ("2030-01-01T12:00:00Z", datetime(2030, 1, 1, 12, tzinfo=UTC)),
        ("2030-01-01T13:00:00+01:00", datetime(2030, 1, 1, 12, tzinfo=UTC)),
        ("2030-01-01T12:00:00", datetime(2030, 1, 1, 12, tzinfo=UTC)),  # no offset: UTC
        (" 2030-01-01 12:00 ", datetime(2030, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_or_unix_seconds(text: str, expected: datetime) -> None:
    assert parse_time(text, "from") == expected


@pytest.mark.parametrize("text", ["yesterday", "", "nan", "inf", "1e3", "1893499200000", "-5", "0001-01-01T00:00:00Z"])
def test_anything_else_is_invalid_time(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_time(text, "to")
    error = caught.value
    assert (error.status_code, error.code, error.details[0]["field"]) == (422, "INVALID_TIME", "to")


def test_bad_interval_range_and_count_are_422_with_their_codes() -> None:
    assert refused("2m").code == "INVALID_INTERVAL"
    assert refused("1m", start="2030-01-01T12:00:00Z", end="2030-01-01T12:00:00Z").code == "INVALID_RANGE"
    assert refused("1m", start="2030-01-02T00:00:00Z", end="2030-01-01T00:00:00Z").code == "INVALID_RANGE"
    assert refused("1m", start="2029-12-30T00:00:00Z").code == "TOO_MANY_CANDLES"
    assert refused("1m", start="junk").code == "INVALID_TIME"


def test_exactly_the_most_buckets_is_allowed_one_more_is_not() -> None:
    end = datetime(2030, 1, 1, tzinfo=UTC)
    start = end - timedelta(minutes=MAX_CANDLES)
    assert candle_range("1m", start.isoformat(), end.isoformat(), now=NOW).buckets == MAX_CANDLES
    assert refused("1m", (start - timedelta(seconds=1)).isoformat(), end.isoformat()).code == "TOO_MANY_CANDLES"


@pytest.mark.parametrize(("interval", "start"), [("5m", "12:00"), ("15m", "12:00"), ("1h", "12:00"), ("4h", "12:00"),
                                                 ("1d", "00:00")])  # fmt: skip
def test_every_interval_starts_its_buckets_on_its_own_multiples(interval: str, start: str) -> None:
    span = candle_range(interval, "2030-01-01T12:03:10Z", "2030-01-01T12:30:00Z", now=NOW)
    assert span.start == datetime.fromisoformat(f"2030-01-01T{start}:00+00:00")
