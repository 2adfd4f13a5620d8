"""The trigger book: armed waiting orders and the price events that fire them.

An armed order (limit, take-profit, stop-loss, trailing stop) waits for the
*executable* price of its whole amount: ``out(amount)``, the exact output of
the best route for that amount on the current pool states. Every decision is
an exact integer comparison of ``out(amount)`` with a threshold in base units
of token_out.

Checking every order on every price event would cost one quote per order.
Instead, per direction, the book quotes only the smallest and the largest
armed amounts. Output is concave in input with ``out(0) = 0`` (for one AMM
pool, and for the best of several routes), so the ratio ``out(a) / a`` does
not increase with ``a``; for every armed amount ``a_min <= a <= a_max``:

    lower = out(a_max)/a_max - slack/a_min  <=  out(a)/a  <=  (out(a_min) + slack)/a_min = upper

``slack`` absorbs the pools' integer rounding, which breaks monotonicity by
a few base units of output plus a few base units of *input* (a fee rounded
up costs a whole input unit, worth ``out/a`` output units: thousands when
USDC buys BONK), hence ``slack = slack_units * (1 + ceil(out(a_min) / a_min))``.

Orders are kept sorted by ``threshold / amount``, so the orders the bounds
cannot decide (and those certain to fire) are one contiguous range found by
bisection; only those are quoted exactly. A firing is always confirmed by
the order's own exact quote, which the :class:`Firing` carries.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Protocol

from sortedcontainers import SortedList

BPS = 10_000
MIN_TRAILING_BPS = 50
MAX_TRAILING_BPS = 5_000


class Quoted(Protocol):
    @property
    def amount_out(self) -> int:
        """Base units of token_out the best route pays for the amount asked."""
        ...


# amount_in (base units) -> the best route's quote now, None when no route can fill it.
QuoteFn = Callable[[int], Quoted | None]


class TriggerKind(StrEnum):
    LIMIT = "limit"  # fire when out(amount) >= threshold_out
    TAKE_PROFIT = "take_profit"  # fire when out(amount) >= threshold_out
    STOP_LOSS = "stop_loss"  # fire when out(amount) <= threshold_out
    TRAILING_STOP = "trailing_stop"  # fire when out(amount) <= high_out * (1 - bps), floored


_FIRE_AT_OR_ABOVE = frozenset({TriggerKind.LIMIT, TriggerKind.TAKE_PROFIT})


def _check_int(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Trigger:
    order_id: str
    kind: TriggerKind
    token_in: str  # symbols
    token_out: str
    amount_in: int  # base units of token_in
    threshold_out: int  # base units of token_out; 0 for a trailing stop
    expires_at: float  # epoch seconds
    trailing_bps: int = 0  # trailing stop only
    high_out: int | None = None  # trailing stop only: high-water mark (None: next quote sets it)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TriggerKind(self.kind))
        if self.token_in == self.token_out:
            raise ValueError("a trigger needs two different tokens")
        _check_int(self.amount_in, "amount_in", 1)
        if self.kind is TriggerKind.TRAILING_STOP:
            _check_int(self.trailing_bps, "trailing_bps", MIN_TRAILING_BPS)
            if self.trailing_bps > MAX_TRAILING_BPS:
                raise ValueError(
                    f"trailing_bps must be <= {MAX_TRAILING_BPS}, got {self.trailing_bps!r}"
                )
            if self.threshold_out != 0:
                raise ValueError("a trailing stop has no fixed threshold_out (0)")
            if self.high_out is not None:
                _check_int(self.high_out, "high_out", 1)
        else:
            _check_int(self.threshold_out, "threshold_out", 1)
            if self.trailing_bps != 0 or self.high_out is not None:
                raise ValueError(f"a {self.kind} order has no trailing_bps or high_out")

    @property
    def direction(self) -> tuple[str, str]:
        return (self.token_in, self.token_out)

    @property
    def fires_at_or_above(self) -> bool:
        return self.kind in _FIRE_AT_OR_ABOVE

    @property
    def trigger_out(self) -> int | None:
        """The output the order fires at (None: a trailing stop that has no high yet)."""
        if self.kind is not TriggerKind.TRAILING_STOP:
            return self.threshold_out
        if self.high_out is None:
            return None
        return self.high_out * (BPS - self.trailing_bps) // BPS

    def fires_on(self, amount_out: int) -> bool:
        """Whether an exact output of ``amount_out`` for the whole amount fires the order."""
        trigger = self.trigger_out
        if trigger is None:
            return False
        return amount_out >= trigger if self.fires_at_or_above else amount_out <= trigger


def threshold_out(
    price: Decimal, amount_in: int, decimals_in: int, decimals_out: int, *, round_up: bool
) -> int:
    """The output, in base units of token_out, that ``price`` (human units: token_out
    per one token_in) means for ``amount_in`` base units of token_in, exactly.

    Rounded up for orders that fire at or above it (never worse than the price
    asked), down for stop-losses.
    """
    if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
        raise ValueError(f"price must be a positive finite Decimal, got {price!r}")
    _check_int(amount_in, "amount_in", 1)
    exact = Fraction(price) * amount_in * Fraction(10) ** (decimals_out - decimals_in)
    return math.ceil(exact) if round_up else math.floor(exact)


@dataclass(frozen=True, slots=True)
class Firing:
    trigger: Trigger  # as it was when it fired (trailing: with its final high_out)
    quoted: Quoted  # the exact quote it fired on

    @property
    def amount_out(self) -> int:
        return self.quoted.amount_out


# --------------------------------------------------------------------------- one direction

_Entry = tuple[Fraction, str]  # (sort key, order id): unique, so removal is a bisection


def _above_entry(trigger: Trigger) -> _Entry:
    # Negated so that, as in the stop side, "more certain to fire" sorts higher.
    return (-Fraction(trigger.threshold_out, trigger.amount_in), trigger.order_id)


def _below_entry(trigger: Trigger) -> _Entry:
    assert trigger.trigger_out is not None
    return (Fraction(trigger.trigger_out, trigger.amount_in), trigger.order_id)


def _high_entry(trigger: Trigger) -> _Entry:
    assert trigger.high_out is not None
    return (Fraction(trigger.high_out, trigger.amount_in), trigger.order_id)


@dataclass(slots=True)
class _Direction:
    """The armed orders of one (token_in, token_out), in the sorted structures the bounds search."""

    amounts: SortedList = field(default_factory=SortedList)  # every armed amount_in
    above: SortedList = field(default_factory=SortedList)  # limit, take-profit: _above_entry
    below: SortedList = field(default_factory=SortedList)  # stop-loss, trailing with a high
    highs: SortedList = field(default_factory=SortedList)  # trailing with a high: _high_entry
    unset: dict[str, None] = field(default_factory=dict)  # trailing waiting for a first quote

    def __len__(self) -> int:
        return len(self.amounts)

    def add(self, trigger: Trigger) -> None:
        self.amounts.add(trigger.amount_in)
        if trigger.fires_at_or_above:
            self.above.add(_above_entry(trigger))
        elif trigger.kind is TriggerKind.TRAILING_STOP and trigger.high_out is None:
            self.unset[trigger.order_id] = None
        else:
            self.below.add(_below_entry(trigger))
            if trigger.kind is TriggerKind.TRAILING_STOP:
                self.highs.add(_high_entry(trigger))

    def remove(self, trigger: Trigger) -> None:
        self.amounts.remove(trigger.amount_in)
        if trigger.fires_at_or_above:
            self.above.remove(_above_entry(trigger))
        elif trigger.kind is TriggerKind.TRAILING_STOP and trigger.high_out is None:
            del self.unset[trigger.order_id]
        else:
            self.below.remove(_below_entry(trigger))
            if trigger.kind is TriggerKind.TRAILING_STOP:
                self.highs.remove(_high_entry(trigger))


@dataclass(frozen=True, slots=True)
class _Bounds:
    """Bounds on out(a)/a of every armed amount; None: unbounded (check every order exactly)."""

    upper: Fraction | None
    lower: Fraction | None

    def fire_above_candidates(self, side: SortedList) -> Iterable[_Entry]:
        # threshold/amount <= upper, i.e. -threshold/amount >= -upper
        return side if self.upper is None else side.irange(minimum=(-self.upper,))

    def fire_below_candidates(self, side: SortedList) -> Iterable[_Entry]:
        # trigger/amount >= lower
        return side if self.lower is None else side.irange(minimum=(self.lower,))

    def high_candidates(self, highs: SortedList) -> Iterable[_Entry]:
        # high/amount < upper: only those can see an output above their high
        if self.upper is None:
            return highs
        return highs.irange(maximum=(self.upper,), inclusive=(True, False))


class _Quotes:
    """The event's quote function, asked at most once per amount, counting its calls."""

    def __init__(self, quote: QuoteFn) -> None:
        self._quote = quote
        self._seen: dict[int, Quoted | None] = {}
        self.calls = 0

    def __call__(self, amount_in: int) -> Quoted | None:
        if amount_in not in self._seen:
            self.calls += 1
            self._seen[amount_in] = self._quote(amount_in)
        return self._seen[amount_in]


def _bounds(direction: _Direction, quotes: _Quotes, slack_units: int) -> _Bounds:
    a_min, a_max = direction.amounts[0], direction.amounts[-1]
    q_min, q_max = quotes(a_min), quotes(a_max)
    if q_min is None or q_max is None:
        # No liquidity at one end (rare): the bounds say nothing, every order is checked.
        return _Bounds(None, None)
    per_input_unit = -(-q_min.amount_out // a_min)
    slack = slack_units * (1 + per_input_unit)
    upper = Fraction(q_min.amount_out + slack, a_min)
    lower = max(Fraction(0), Fraction(q_max.amount_out, a_max) - Fraction(slack, a_min))
    return _Bounds(upper, lower)


# --------------------------------------------------------------------------- the book


class TriggerBook:
    """Armed orders by direction; :meth:`on_prices` fires them, :meth:`expire` ages them out.

    Plain state, no I/O: the caller persists what :meth:`take_moved_highs`
    reports and calls :meth:`expire` before :meth:`on_prices` (an event does
    not look at the clock).
    """

    def __init__(self, *, slack_units: int = 64) -> None:
        _check_int(slack_units, "slack_units", 0)
        self.slack_units = slack_units
        self.last_quotes = 0  # quote calls made by the last on_prices
        self._orders: dict[str, Trigger] = {}
        self._directions: dict[tuple[str, str], _Direction] = {}
        self._arming: dict[str, int] = {}  # order id -> the arming its heap entry must match
        self._next_arming = 0
        # (expires_at, arming, order id); an entry whose arming is not current is stale
        self._expiry: list[tuple[float, int, str]] = []
        self._moved: dict[str, int] = {}

    # -- arming -------------------------------------------------------------

    def arm(self, trigger: Trigger) -> bool:
        """Arm ``trigger``; False (and no change) when an order with its id is already armed."""
        if trigger.order_id in self._orders:
            return False
        self._orders[trigger.order_id] = trigger
        self._next_arming += 1
        self._arming[trigger.order_id] = self._next_arming
        heapq.heappush(self._expiry, (trigger.expires_at, self._next_arming, trigger.order_id))
        self._directions.setdefault(trigger.direction, _Direction()).add(trigger)
        return True

    def disarm(self, order_id: str) -> Trigger | None:
        """Remove the order; None when it is not armed (never was, fired, expired, disarmed)."""
        trigger = self._orders.get(order_id)
        if trigger is not None:
            self._remove(trigger)
        return trigger

    def get(self, order_id: str) -> Trigger | None:
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._orders

    def directions(self) -> set[tuple[str, str]]:
        return set(self._directions)

    # -- price events ---------------------------------------------------------

    def on_prices(self, token_in: str, token_out: str, quote: QuoteFn) -> list[Firing]:
        """The pool states behind ``quote`` changed: remove and return every order of
        that direction that fires now, each with its own exact quote."""
        self.last_quotes = 0
        direction = self._directions.get((token_in, token_out))
        if direction is None:
            return []
        quotes = _Quotes(quote)
        bounds = _bounds(direction, quotes, self.slack_units)
        self._raise_highs(direction, quotes, bounds)
        candidates = [
            *bounds.fire_above_candidates(direction.above),
            *bounds.fire_below_candidates(direction.below),
        ]
        firings: list[Firing] = []
        for _, order_id in candidates:
            trigger = self._orders[order_id]
            quoted = quotes(trigger.amount_in)
            if quoted is not None and trigger.fires_on(quoted.amount_out):
                self._remove(trigger)
                firings.append(Firing(trigger, quoted))
        self.last_quotes = quotes.calls
        return firings

    def _raise_highs(self, direction: _Direction, quotes: _Quotes, bounds: _Bounds) -> None:
        """Trailing stops whose output is above their high-water mark take it as the new high
        (so a new high never fires: only a later drop does)."""
        waiting = list(direction.unset)
        rising = [order_id for _, order_id in bounds.high_candidates(direction.highs)]
        for order_id in [*waiting, *rising]:
            trigger = self._orders[order_id]
            quoted = quotes(trigger.amount_in)
            if quoted is None or quoted.amount_out <= 0:
                continue
            if trigger.high_out is None or quoted.amount_out > trigger.high_out:
                self._update(trigger, replace(trigger, high_out=quoted.amount_out))

    def _update(self, old: Trigger, new: Trigger) -> None:
        direction = self._directions[old.direction]
        direction.remove(old)
        direction.add(new)
        self._orders[new.order_id] = new
        if new.high_out is not None:
            self._moved[new.order_id] = new.high_out

    def take_moved_highs(self) -> dict[str, int]:
        """Armed trailing stops whose high_out moved since the last call (order id -> high_out)."""
        moved, self._moved = self._moved, {}
        return moved

    # -- expiry ---------------------------------------------------------------

    def expire(self, now: float) -> list[Trigger]:
        """Remove and return every order with ``expires_at <= now``, earliest first."""
        expired: list[Trigger] = []
        while self._expiry and self._expiry[0][0] <= now:
            _, arming, order_id = heapq.heappop(self._expiry)
            if self._arming.get(order_id) == arming:
                trigger = self._orders[order_id]
                self._remove(trigger)
                expired.append(trigger)
        return expired

    def next_expiry(self) -> float | None:
        """The earliest ``expires_at`` armed, None when the book is empty."""
        while self._expiry and self._arming.get(self._expiry[0][2]) != self._expiry[0][1]:
            heapq.heappop(self._expiry)
        return self._expiry[0][0] if self._expiry else None

    # -- removal --------------------------------------------------------------

    def _remove(self, trigger: Trigger) -> None:
        direction = self._directions[trigger.direction]
        direction.remove(trigger)
        if not direction:
            del self._directions[trigger.direction]
        del self._orders[trigger.order_id]
        del self._arming[trigger.order_id]
        # A gone order has nothing left to persist: its Firing (or disarm) carries its last high.
        self._moved.pop(trigger.order_id, None)
        if len(self._expiry) > 2 * len(self._orders) + 64:
            self._compact_expiry()

    def _compact_expiry(self) -> None:
        self._expiry = [
            (self._orders[order_id].expires_at, arming, order_id)
            for order_id, arming in self._arming.items()
        ]
        heapq.heapify(self._expiry)
