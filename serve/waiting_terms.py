"""What an order that waits asks for: its price or trailing distance and its expiry, judged and made exact.

A price is tokenOut per one tokenIn for the whole order (its exact quoted
output divided by its input), so it becomes one exact threshold in base
units of tokenOut: rounded up for a limit or a take-profit (never worse than
asked), down for a stop-loss. Codes: ``MISSING_PRICE``, ``INVALID_PRICE``,
``PRICE_ON_MARKET_ORDER``, ``INVALID_TRAILING_BPS``, ``INVALID_EXPIRY``; a sniper's
``TOKEN_ALREADY_TRADES``, ``INVALID_TOKEN``, ``MISSING_LIQUIDITY``, ``INVALID_LIQUIDITY``,
``INVALID_PRICE_IMPACT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from engine.waiting import DEFAULT_LIFETIME_S, MAX_LIFETIME_S, stored_sniper, stored_trigger
from serve.requests import NumberOrText
from sim.tokens import Token
from sim.triggers import threshold_out

WAITING_TYPES = ("limit", "stop_loss", "take_profit", "trailing_stop", "sniper")
DEFAULT_SNIPER_IMPACT_BPS = 1_000
_BASE58 = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_PRICE_FIELD = {"limit": "limitPrice", "stop_loss": "triggerPrice", "take_profit": "triggerPrice"}
MAX_PRICE_CHARS = 64


class ProblemSink(Protocol):
    def add(self, code: str, field: str, message: str, **extra: Any) -> None: ...


class WaitingRequest(Protocol):
    limit_price: NumberOrText | None
    trigger_price: NumberOrText | None
    trailing_bps: NumberOrText | None
    expires_at: NumberOrText | None
    min_liquidity: NumberOrText | None
    max_price_impact_bps: NumberOrText | None


@dataclass(frozen=True, slots=True)
class WaitingTerms:
    trigger: dict[str, Any]
    expires_at: datetime
    asked: tuple[str | None, int | None, str | None]  # price, trailing bps, expiry as sent: the request hash's part


def refuse_market_extras(req: WaitingRequest, problems: ProblemSink) -> None:
    """A market order executes now: a price, a trailing distance or an expiry means the client meant another type."""
    for field, value in (("limitPrice", req.limit_price), ("triggerPrice", req.trigger_price),
                         ("trailingBps", req.trailing_bps), ("expiresAt", req.expires_at),
                         ("minLiquidity", req.min_liquidity), ("maxPriceImpactBps", req.max_price_impact_bps)):  # fmt: skip
        if value is not None:
            problems.add("PRICE_ON_MARKET_ORDER", field,
                         f"a market order executes now and takes no {field}; set type to an order that waits "
                         f"({', '.join(WAITING_TYPES)})")  # fmt: skip


def waiting_terms(
    req: WaitingRequest, order_type: str, token_in: Token | None, token_out: Token | None, amount_in: int | None,
    problems: ProblemSink, *, now: datetime,
) -> WaitingTerms | None:  # fmt: skip
    """The exact terms of a waiting order, or None (with the problems added) when they are wrong."""
    price_field = _PRICE_FIELD.get(order_type)
    price = trailing = None
    for field, value in (("limitPrice", req.limit_price), ("triggerPrice", req.trigger_price)):
        if value is not None and field != price_field:
            problems.add("INVALID_PRICE", field, f"a {order_type} order takes no {field}" +
                         (f"; it takes {price_field}" if price_field else "; it takes trailingBps"))  # fmt: skip
    if price_field is not None:
        price = _price(req.limit_price if order_type == "limit" else req.trigger_price, price_field, problems)
        if req.trailing_bps is not None:
            problems.add("INVALID_TRAILING_BPS", "trailingBps", f"only a trailing_stop takes trailingBps, not a {order_type}")
    else:
        trailing = _trailing_bps(req.trailing_bps, problems)
    expires_at = _expiry(req.expires_at, problems, now=now)
    if expires_at is None or token_in is None or token_out is None or amount_in is None:
        return None
    if price_field is not None:
        if price is None:
            return None
        threshold = threshold_out(price, amount_in, token_in.decimals, token_out.decimals,
                                  round_up=order_type != "stop_loss")  # fmt: skip
        if threshold <= 0:
            problems.add("INVALID_PRICE", price_field,
                         f"{format(price, 'f')} {token_out.symbol} per {token_in.symbol} is less than one base unit "
                         f"of {token_out.symbol} for this amount")  # fmt: skip
            return None
        trigger = stored_trigger(order_type, price=price, threshold_out=threshold)
    else:
        if trailing is None:
            return None
        trigger = stored_trigger(order_type, price=None, threshold_out=0, trailing_bps=trailing)
    asked = (None if price is None else format(price, "f"), trailing, None if req.expires_at is None else str(req.expires_at))
    return WaitingTerms(trigger, expires_at, asked)


def _price(raw: NumberOrText | None, field: str, problems: ProblemSink, *, code: str = "INVALID_PRICE",
           missing: str = "MISSING_PRICE") -> Decimal | None:  # fmt: skip
    """A positive decimal within 1e-30..1e30 (a price, or a sniper's liquidity)."""
    if raw is None:
        problems.add(missing, field, "field required for this order type")
        return None
    text = raw.strip() if isinstance(raw, str) else str(raw)
    if len(text) > MAX_PRICE_CHARS:
        problems.add(code, field, f"is longer than {MAX_PRICE_CHARS} characters")
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        problems.add(code, field, f"{text!r} is not a number")
        return None
    if not value.is_finite() or value <= 0:
        problems.add(code, field, f"must be a positive number, got {text}")
        return None
    if not -30 <= value.adjusted() <= 30:
        problems.add(code, field, f"{text} is outside 1e-30..1e30")
        return None
    return value


def _trailing_bps(raw: NumberOrText | None, problems: ProblemSink) -> int | None:
    if raw is None:
        problems.add("MISSING_PRICE", "trailingBps", "field required for a trailing_stop (50..5000 bps)")
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value() or not 50 <= value <= 5000:
        problems.add("INVALID_TRAILING_BPS", "trailingBps", f"must be a whole number of bps within 50..5000, got {raw}",
                     min=50, max=5000)  # fmt: skip
        return None
    return int(value)


def _expiry(raw: NumberOrText | None, problems: ProblemSink, *, now: datetime) -> datetime | None:
    if raw is None:
        return now + timedelta(seconds=DEFAULT_LIFETIME_S)
    when = _parse_time(raw)
    if when is None:
        problems.add("INVALID_EXPIRY", "expiresAt", f"{str(raw)[:64]!r} is neither ISO 8601 nor unix milliseconds")
        return None
    if when <= now:
        problems.add("INVALID_EXPIRY", "expiresAt", f"{when.isoformat()} is in the past")
        return None
    if when > now + timedelta(seconds=MAX_LIFETIME_S):
        problems.add("INVALID_EXPIRY", "expiresAt", f"{when.isoformat()} is more than 30 days away")
        return None
    return when


def _parse_time(raw: NumberOrText) -> datetime | None:
    text = raw.strip() if isinstance(raw, str) else str(raw)
    if len(text) > 64:
        return None
    try:
        millis = Decimal(text)
    except InvalidOperation:
        millis = None
    try:
        if millis is not None:
            if not millis.is_finite():
                return None
            return datetime.fromtimestamp(float(millis) / 1000, UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AwaitedToken:
    """The token a sniper waits for, as far as it is known: a symbol, or a mint (then its symbol is the mint)."""

    ref: str
    symbol: str
    mint: str


def awaited_token(raw: str, known: bool, problems: ProblemSink) -> AwaitedToken | None:
    """The token a sniper names; it must not trade yet (every known token has a pool)."""
    ref = raw.strip()
    if known:
        problems.add("TOKEN_ALREADY_TRADES", "tokenOut",
                     f"{ref} has a pool already: a sniper waits for a token's first pool; send a market or limit order")  # fmt: skip
        return None
    if ref.isalnum() and 1 <= len(ref) <= 16:
        return AwaitedToken(ref, ref.upper(), "")
    if 32 <= len(ref) <= 44 and set(ref) <= _BASE58:
        return AwaitedToken(ref, ref, ref)
    problems.add("INVALID_TOKEN", "tokenOut", "a sniper's token is a symbol (1..16 letters or digits) or a mint")
    return None


def sniper_terms(req: WaitingRequest, token_in: Token | None, awaited: AwaitedToken | None,
                 problems: ProblemSink, *, now: datetime) -> WaitingTerms | None:  # fmt: skip
    for field, value in (("limitPrice", req.limit_price), ("triggerPrice", req.trigger_price),
                         ("trailingBps", req.trailing_bps)):  # fmt: skip
        if value is not None:
            problems.add("INVALID_PRICE", field, f"a sniper takes no {field}; it fires when its token's pool opens")
    liquidity = _price(req.min_liquidity, "minLiquidity", problems, code="INVALID_LIQUIDITY", missing="MISSING_LIQUIDITY")
    impact = _bps_within(req.max_price_impact_bps, "maxPriceImpactBps", 1, 5000, DEFAULT_SNIPER_IMPACT_BPS,
                         problems, code="INVALID_PRICE_IMPACT")  # fmt: skip
    expires_at = _expiry(req.expires_at, problems, now=now)
    if None in (liquidity, impact, expires_at, token_in, awaited):
        return None
    assert liquidity is not None and impact is not None and expires_at is not None and awaited is not None
    trigger = stored_sniper(awaited.ref, min_liquidity=liquidity, max_price_impact_bps=impact)
    asked = (format(liquidity, "f"), impact, None if req.expires_at is None else str(req.expires_at))
    return WaitingTerms(trigger, expires_at, asked)


def _bps_within(raw: NumberOrText | None, field: str, low: int, high: int, default: int, problems: ProblemSink,
                *, code: str) -> int | None:  # fmt: skip
    if raw is None:
        return default
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value != value.to_integral_value() or not low <= value <= high:
        problems.add(code, field, f"must be a whole number of bps within {low}..{high}, got {raw}", min=low, max=high)
        return None
    return int(value)
