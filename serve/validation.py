"""Whether an order (or a quote) makes sense on this market: the second step after pydantic.

Every check here needs the token registry or the API's options, and every
field at fault is named in one 422 whose code is that of the first problem
(``UNKNOWN_TOKEN``, ``SAME_TOKEN``, ``INVALID_AMOUNT``, ``AMOUNT_TOO_LARGE``,
``INVALID_SLIPPAGE``, ``UNSUPPORTED_ORDER_TYPE``, ``VALIDATION_ERROR``, and a waiting
order's codes: ``serve.waiting_terms``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from serve.amounts import human
from serve.errors import ApiError
from serve.requests import ExecuteOrderRequest, NumberOrText
from serve.tx_options import tx_options
from engine.waiting import DEFAULT_TRIGGERED_SLIPPAGE_BPS
from serve.waiting_terms import (
    WAITING_TYPES,
    AwaitedToken,
    WaitingTerms,
    awaited_token,
    refuse_market_extras,
    sniper_terms,
    waiting_terms,
)
from sim.tokens import InvalidAmount, Token, TokenRegistry, UnknownToken, format_decimal, to_base_units

U64_MAX = 2**64 - 1  # an SPL token account holds at most this many base units
MAX_AMOUNT_CHARS = 64
SUPPORTED_TYPES = ("market", *WAITING_TYPES)


@dataclass(frozen=True, slots=True)
class ValidOrder:
    """A validated order, ready for ``storage.orders.NewOrder``."""

    type: str
    token_in: Token
    token_out: Token | AwaitedToken  # a sniper's: the token it waits for, as far as it is known
    amount_in: int
    amount_in_decimal: str
    slippage_bps: int
    waiting: WaitingTerms | None = None
    tx_options: dict[str, Any] | None = None  # priorityFee, maxPriorityFeeLamports, jitoTipLamports as sent

    def request_hash(self) -> str:
        """Same meaning, same hash: "1.5" and 1.5, amount and amountIn, SOL and its mint."""
        out = self.token_out.mint or self.token_out.symbol
        parts: list[Any] = [self.type, self.token_in.mint, out, self.amount_in, self.slippage_bps]
        if self.waiting is not None:
            parts += list(self.waiting.asked)  # the expiry as sent: a defaulted one moves with the clock
        if self.tx_options is not None:
            parts.append(sorted(self.tx_options.items()))
        canonical = json.dumps(parts, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def new_order(self) -> Any:
        from engine.records import NewOrder

        return NewOrder(
            type=self.type,
            token_in=self.token_in.symbol,
            token_out=self.token_out.symbol,
            mint_in=self.token_in.mint,
            mint_out=self.token_out.mint,
            amount_in=self.amount_in,
            amount_in_decimal=self.amount_in_decimal,
            slippage_bps=self.slippage_bps,
            trigger=None if self.waiting is None else self.waiting.trigger,
            expires_at=None if self.waiting is None else self.waiting.expires_at,
            tx_options=self.tx_options,
        )


@dataclass(frozen=True, slots=True)
class QuoteTerms:
    """A validated route preview: what to sell, what to buy, how much, and the slippage for minAmountOut."""

    token_in: Token
    token_out: Token
    amount_in: int
    amount_in_decimal: str
    slippage_bps: int


class Problems:
    """Collects field problems; raises one 422 naming every field at fault."""

    def __init__(self, location: str = "body") -> None:
        self.items: list[dict[str, Any]] = []
        self.location = location

    def add(self, code: str, field: str, message: str, **extra: Any) -> None:
        self.items.append({"field": field, "location": self.location, "message": message, "type": code, **extra})

    def raise_if_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        if len(self.items) == 1:
            message = f"{first['field']}: {first['message']}"
        else:
            message = "invalid order: " + "; ".join(f"{p['field']}: {p['message']}" for p in self.items)
        raise ApiError(422, first["type"], message, self.items)


# --------------------------------------------------------------------------- one field each


def resolve_token(ref: str, tokens: TokenRegistry, field: str, problems: Problems) -> Token | None:
    if not ref.strip():
        problems.add("VALIDATION_ERROR", field, "must be a token symbol or mint address")
        return None
    try:
        return tokens.resolve(ref.strip())
    except UnknownToken:
        known = sorted(t.symbol for t in tokens)
        problems.add(
            "UNKNOWN_TOKEN", field, f"unknown token {ref.strip()!r} (known: {', '.join(known)}, or their mints)",
            known=known,
        )  # fmt: skip
        return None


def _amount_value(raw: NumberOrText, field: str, problems: Problems) -> tuple[Decimal, str] | None:
    """(value, text as written) of a positive finite amount; no token needed for these checks."""
    text = raw.strip() if isinstance(raw, str) else str(raw)
    if not text:
        problems.add("INVALID_AMOUNT", field, "must not be empty")
        return None
    if len(text) > MAX_AMOUNT_CHARS:
        problems.add("INVALID_AMOUNT", field, f"is longer than {MAX_AMOUNT_CHARS} characters")
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        problems.add("INVALID_AMOUNT", field, f"{text!r} is not a number")
        return None
    if not value.is_finite():
        problems.add("INVALID_AMOUNT", field, "must be a finite number")
        return None
    if value <= 0:
        problems.add("INVALID_AMOUNT", field, f"must be greater than zero, got {text}")
        return None
    return value, text


def parse_amount(
    raw: NumberOrText | None, token: Token | None, field: str, problems: Problems
) -> tuple[int, str] | None:
    """A human amount (decimal string or JSON number) -> (base units, normalised text)."""
    if raw is None:
        problems.add("VALIDATION_ERROR", field, "field required")
        return None
    checked = _amount_value(raw, field, problems)
    if checked is None or token is None:  # with the token unknown nothing more can be checked
        return None
    value, text = checked
    most = human(U64_MAX, token)
    if value.adjusted() > 30:
        problems.add("AMOUNT_TOO_LARGE", field, f"{text} {token.symbol} is more than any token account can hold",
                     max=most)  # fmt: skip
        return None
    smallest = human(1, token)
    if value.adjusted() < -token.decimals:  # below one base unit (and beyond the context's exponent range)
        problems.add(
            "INVALID_AMOUNT", field, f"{token.symbol} has {token.decimals} decimals; the smallest amount is {smallest}",
            decimals=token.decimals,
        )  # fmt: skip
        return None
    try:
        units = to_base_units(value, token)
    except InvalidAmount as exc:
        problems.add("INVALID_AMOUNT", field, str(exc), decimals=token.decimals)
        return None
    if units <= 0:  # pragma: no cover - excluded above; kept as a guard
        problems.add("INVALID_AMOUNT", field, f"the smallest amount is {smallest}", decimals=token.decimals)
        return None
    if units > U64_MAX:
        problems.add(
            "AMOUNT_TOO_LARGE", field, f"{text} {token.symbol} is more than any token account can hold (max {most})",
            max=most,
        )  # fmt: skip
        return None
    return units, format_decimal(value)


def _slippage_number(raw: NumberOrText, field: str, problems: Problems) -> Decimal | None:
    try:
        return Decimal(str(raw).strip())
    except InvalidOperation:
        problems.add("INVALID_SLIPPAGE", field, f"{raw!r} is not a number")
        return None


def _bps(raw: NumberOrText, problems: Problems, maximum: int) -> int | None:
    value = _slippage_number(raw, "slippageBps", problems)
    if value is None:
        return None
    if not value.is_finite() or value != value.to_integral_value():
        problems.add("INVALID_SLIPPAGE", "slippageBps", "must be a whole number of basis points")
        return None
    bps = int(value)
    if not 1 <= bps <= maximum:
        problems.add("INVALID_SLIPPAGE", "slippageBps", f"must be between 1 and {maximum} bps, got {bps}",
                     min=1, max=maximum)  # fmt: skip
        return None
    return bps


def _fraction_bps(raw: NumberOrText, problems: Problems, maximum: int) -> int | None:
    fraction = _slippage_number(raw, "slippage", problems)
    if fraction is None:
        return None
    if not fraction.is_finite():
        problems.add("INVALID_SLIPPAGE", "slippage", "must be a finite number")
        return None
    in_bps = fraction * 10_000
    if in_bps != in_bps.to_integral_value():
        problems.add("INVALID_SLIPPAGE", "slippage", "is a fraction (0.01 = 1 %) with at most 4 decimals (1 bp)")
        return None
    bps = int(in_bps)
    if not 1 <= bps <= maximum:
        most = Decimal(maximum) / 10_000
        problems.add(
            "INVALID_SLIPPAGE", "slippage",
            f"is a fraction (0.01 = 1 %) and must be between 0.0001 and {most}, got {raw}",
            min=0.0001, max=float(most),
        )  # fmt: skip
        return None
    return bps


def parse_slippage(
    bps_raw: NumberOrText | None, fraction_raw: NumberOrText | None, problems: Problems, *, default: int, maximum: int
) -> int | None:
    """Slippage in bps from ``slippageBps`` or the fraction ``slippage`` (which must agree when both are sent)."""
    bps = None
    if bps_raw is not None:
        bps = _bps(bps_raw, problems, maximum)
        if bps is None:
            return None
    if fraction_raw is not None:
        from_fraction = _fraction_bps(fraction_raw, problems, maximum)
        if from_fraction is None:
            return None
        if bps is not None and bps != from_fraction:
            problems.add(
                "INVALID_SLIPPAGE", "slippage",
                f"disagrees with slippageBps ({fraction_raw} is {from_fraction} bps, slippageBps is {bps}); send one",
            )  # fmt: skip
            return None
        bps = from_fraction
    return default if bps is None else bps


# --------------------------------------------------------------------------- whole requests


def _order_type(raw: str, problems: Problems) -> str:
    order_type = (raw or "market").strip().lower()
    if order_type not in SUPPORTED_TYPES:
        problems.add("UNSUPPORTED_ORDER_TYPE", "type", f"unknown order type {raw!r}; use one of {', '.join(SUPPORTED_TYPES)}",
                     supported=list(SUPPORTED_TYPES))  # fmt: skip
    return order_type


def _pair(ref_in: str, ref_out: str, tokens: TokenRegistry, problems: Problems, *,
          sniper: bool = False) -> tuple[Token | None, Token | AwaitedToken | None]:  # fmt: skip
    token_in = resolve_token(ref_in, tokens, "tokenIn", problems)
    if sniper:
        return token_in, awaited_token(ref_out, ref_out.strip() in tokens, problems)
    token_out = resolve_token(ref_out, tokens, "tokenOut", problems)
    if token_in is not None and token_out is not None and token_in == token_out:
        problems.add("SAME_TOKEN", "tokenOut", f"must differ from tokenIn (both are {token_in.symbol})")
    return token_in, token_out


def validate_order(
    req: ExecuteOrderRequest, tokens: TokenRegistry, *, default_slippage_bps: int = 50, max_slippage_bps: int = 5_000
) -> ValidOrder:
    """Every semantic check of an order; raises one ApiError (422) naming the fields."""
    problems = Problems()
    order_type = _order_type(req.type, problems)
    token_in, token_out = _pair(req.token_in, req.token_out, tokens, problems, sniper=order_type == "sniper")
    amount_field, amount_raw = "amountIn", req.amount_in
    if req.amount_in is None and req.amount is not None:
        amount_field, amount_raw = "amount", req.amount
    elif req.amount_in is not None and req.amount is not None and str(req.amount_in) != str(req.amount):
        problems.add("VALIDATION_ERROR", "amount", "is an alias of amountIn; send one of them")
    parsed = parse_amount(amount_raw, token_in, amount_field, problems)
    waiting: WaitingTerms | None = None
    if order_type == "limit":
        # Its limit is its minimum out: a slippage on top would only make it worse than asked.
        for field, value in (("slippageBps", req.slippage_bps), ("slippage", req.slippage)):
            if value is not None:
                problems.add("INVALID_SLIPPAGE", field, "a limit order executes at its limit price; it takes no slippage")
        slippage: int | None = 0
    else:
        default = DEFAULT_TRIGGERED_SLIPPAGE_BPS if order_type in WAITING_TYPES else default_slippage_bps
        slippage = parse_slippage(req.slippage_bps, req.slippage, problems, default=default, maximum=max_slippage_bps)
    if order_type == "sniper":
        assert not isinstance(token_out, Token)
        waiting = sniper_terms(req, token_in, token_out, problems, now=datetime.now(UTC))
    elif order_type in WAITING_TYPES:
        assert not isinstance(token_out, AwaitedToken)
        waiting = waiting_terms(req, order_type, token_in, token_out, parsed[0] if parsed else None, problems,
                                now=datetime.now(UTC))  # fmt: skip
    elif order_type == "market":
        refuse_market_extras(req, problems)
    options = tx_options(req, problems)
    problems.raise_if_any()
    assert token_in is not None and token_out is not None and parsed is not None and slippage is not None
    return ValidOrder(order_type, token_in, token_out, parsed[0], parsed[1], slippage, waiting, options)


def validate_quote(
    token_in: str,
    token_out: str,
    amount_in: str | None,
    amount: str | None,
    slippage_bps: int | None,
    tokens: TokenRegistry,
    *,
    default_slippage_bps: int,
    max_slippage_bps: int,
) -> QuoteTerms:
    """The checks of an order, on a quote's query parameters; raises one ApiError (422) naming them."""
    problems = Problems(location="query")
    t_in, t_out = _pair(token_in, token_out, tokens, problems)
    field, raw = ("amount", amount) if amount_in is None and amount is not None else ("amountIn", amount_in)
    parsed = parse_amount(raw, t_in, field, problems)
    bps = parse_slippage(slippage_bps, None, problems, default=default_slippage_bps, maximum=max_slippage_bps)
    problems.raise_if_any()
    assert t_in is not None and t_out is not None and parsed is not None and bps is not None
    return QuoteTerms(t_in, t_out, parsed[0], parsed[1], bps)
