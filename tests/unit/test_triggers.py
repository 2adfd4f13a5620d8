"""sim.triggers: which armed orders a price event fires, decided on real pool math."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.pools import CpmmPool, DlmmFeeParams, DlmmPool, Pool, SimError, SwapQuote
from sim.tokens import BONK, SOL, USDC, Token
from sim.triggers import Firing, QuoteFn, Trigger, TriggerBook, TriggerKind, threshold_out

PROPERTY = settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
LIMIT, TAKE_PROFIT, STOP_LOSS, TRAILING = (
    TriggerKind.LIMIT,
    TriggerKind.TAKE_PROFIT,
    TriggerKind.STOP_LOSS,
    TriggerKind.TRAILING_STOP,
)
FAR_FUTURE = 4_000_000_000.0


def cpmm() -> CpmmPool:
    return CpmmPool("raydium:SOL-USDC", SOL, USDC, 1_000 * SOL.one, 150_000 * USDC.one)


def dlmm(token_x: Token = SOL, price: float = 150.0, shape: str = "spot") -> DlmmPool:
    return DlmmPool.with_liquidity(
        f"meteora:{token_x.symbol}-USDC",
        token_x,
        USDC,
        price=price,
        value_y=300_000 * USDC.one,
        bin_step=20,
        bins_each_side=35,
        params=DlmmFeeParams(base_factor=10_000),
        shape=shape,  # type: ignore[arg-type]
    )


def best_of(token_in: str, *pools: Pool) -> QuoteFn:
    """The best single pool's exact quote, None when no pool can fill the amount."""

    def quote(amount_in: int) -> SwapQuote | None:
        quotes = []
        for pool in pools:
            try:
                quotes.append(pool.quote_exact_in(token_in, amount_in))
            except SimError:
                pass
        return max(quotes, key=lambda q: q.amount_out, default=None)

    return quote


def out_now(pool: Pool, token_in: str, amount_in: int) -> int:
    return pool.quote_exact_in(token_in, amount_in).amount_out


def order(
    order_id: str,
    kind: TriggerKind,
    amount_in: int,
    threshold: int = 0,
    *,
    token_in: str = "SOL",
    token_out: str = "USDC",
    expires_at: float = FAR_FUTURE,
    bps: int = 0,
    high: int | None = None,
) -> Trigger:
    return Trigger(order_id, kind, token_in, token_out, amount_in, threshold, expires_at, bps, high)


def trailing(
    order_id: str, amount_in: int, bps: int, high: int | None = None, **kw: object
) -> Trigger:
    return order(order_id, TRAILING, amount_in, bps=bps, high=high, **kw)  # type: ignore[arg-type]


def fire(
    book: TriggerBook, pool: Pool, token_in: str = "SOL", token_out: str = "USDC"
) -> list[str]:
    """The ids the event fires, on ``pool``'s exact quotes."""
    firings = book.on_prices(token_in, token_out, best_of(token_in, pool))
    return [f.trigger.order_id for f in firings]


def raise_sol_price(pool: Pool, usdc: int) -> None:
    pool.swap_exact_in("USDC", usdc * USDC.one)


def lower_sol_price(pool: Pool, sol: int) -> None:
    pool.swap_exact_in("SOL", sol * SOL.one)


# -- thresholds and validation ----------------------------------------------------


def test_threshold_out_is_exact_and_rounds_the_way_asked() -> None:
    assert threshold_out(Decimal("150.5"), SOL.one, 9, 6, round_up=True) == 150_500_000
    assert threshold_out(Decimal("150.5"), SOL.one, 9, 6, round_up=False) == 150_500_000
    # 3 lamports at 150.5 USDC/SOL = 0.4515 USDC base units
    assert threshold_out(Decimal("150.5"), 3, 9, 6, round_up=True) == 1
    assert threshold_out(Decimal("150.5"), 3, 9, 6, round_up=False) == 0
    # USDC -> BONK: 1 USDC at 50_000.00001 BONK/USDC, 6 -> 5 decimals
    assert threshold_out(Decimal("50000.00001"), USDC.one, 6, 5, round_up=True) == 5_000_000_001
    # A price no float holds exactly: 0.1 * 3 base units, same decimals
    assert threshold_out(Decimal("0.1"), 30, 6, 6, round_up=False) == 3
    assert threshold_out(Decimal("0.1"), 30, 6, 6, round_up=True) == 3
    assert threshold_out(Decimal("0.1000000001"), 30, 6, 6, round_up=True) == 4


@pytest.mark.parametrize(
    "price", [Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity"), 150.0]
)
def test_threshold_out_refuses_a_bad_price(price: Decimal) -> None:
    with pytest.raises(ValueError):
        threshold_out(price, SOL.one, 9, 6, round_up=True)


@pytest.mark.parametrize(
    "build",
    [
        lambda: order("a", LIMIT, 0, 10),
        lambda: order("a", LIMIT, -1, 10),
        lambda: order("a", LIMIT, True, 10),  # type: ignore[arg-type]
        lambda: order("a", LIMIT, 10, 0),
        lambda: order("a", STOP_LOSS, 10, 0),
        lambda: order("a", TAKE_PROFIT, 10, -5),
        lambda: order("a", LIMIT, 10, 10, bps=100),
        lambda: order("a", STOP_LOSS, 10, 10, high=20),
        lambda: trailing("a", 10, 49),
        lambda: trailing("a", 10, 5_001),
        lambda: trailing("a", 10, 100, high=0),
        lambda: order("a", TRAILING, 10, 5, bps=100),
        lambda: order("a", LIMIT, 10, 10, token_out="SOL"),
        lambda: order("a", "market", 10, 10),  # type: ignore[arg-type]
    ],
)
def test_an_invalid_trigger_is_refused(build: Callable[[], Trigger]) -> None:
    with pytest.raises(ValueError):
        build()


def test_a_valid_trigger_and_its_trigger_output() -> None:
    assert trailing("a", 10, 50).trigger_out is None
    assert trailing("a", 10, 5_000, high=1_001).trigger_out == 500
    assert trailing("a", 10, 100, high=1_000).trigger_out == 990
    assert order("a", "stop_loss", 10, 7).kind is STOP_LOSS  # type: ignore[arg-type]


# -- each kind fires when the price reaches it, not before ----------------------------


def test_a_limit_fires_once_the_price_rises_to_it_not_before() -> None:
    pool = cpmm()
    book = TriggerBook()
    want = out_now(pool, "SOL", SOL.one) * 102 // 100  # 2% above the price now
    book.arm(order("lim", LIMIT, SOL.one, want))
    assert fire(book, pool) == []
    raise_sol_price(pool, 750)  # ~1% up
    assert out_now(pool, "SOL", SOL.one) < want
    assert fire(book, pool) == [] and "lim" in book
    raise_sol_price(pool, 2_000)  # ~3.7% up in all
    firings = book.on_prices("SOL", "USDC", best_of("SOL", pool))
    assert [f.trigger.order_id for f in firings] == ["lim"]
    assert firings[0].amount_out == out_now(pool, "SOL", SOL.one) >= want
    assert firings[0].quoted.amount_in == SOL.one  # type: ignore[attr-defined]
    assert "lim" not in book and len(book) == 0


def test_a_take_profit_fires_on_the_way_up() -> None:
    pool = cpmm()
    book = TriggerBook()
    book.arm(order("tp", TAKE_PROFIT, 5 * SOL.one, out_now(pool, "SOL", 5 * SOL.one) * 101 // 100))
    assert fire(book, pool) == []
    raise_sol_price(pool, 1_500)
    assert fire(book, pool) == ["tp"]


def test_a_stop_loss_fires_once_the_price_falls_to_it_not_before() -> None:
    pool = cpmm()
    book = TriggerBook()
    stop = out_now(pool, "SOL", 2 * SOL.one) * 97 // 100
    book.arm(order("stop", STOP_LOSS, 2 * SOL.one, stop))
    raise_sol_price(pool, 3_000)  # up: a stop never fires on a rise
    assert fire(book, pool) == []
    lower_sol_price(pool, 20)  # back down, still above the stop
    assert fire(book, pool) == []
    lower_sol_price(pool, 30)
    firings = book.on_prices("SOL", "USDC", best_of("SOL", pool))
    assert [f.trigger.order_id for f in firings] == ["stop"] and firings[0].amount_out <= stop


def test_usdc_to_sol_orders_fire_on_the_other_side() -> None:
    pool = cpmm()
    book = TriggerBook()
    buy = out_now(pool, "USDC", 150 * USDC.one) * 101 // 100  # buy SOL 1% cheaper
    book.arm(order("buy", LIMIT, 150 * USDC.one, buy, token_in="USDC", token_out="SOL"))
    assert fire(book, pool, "USDC", "SOL") == []
    assert fire(book, pool) == []  # the other direction holds nothing
    lower_sol_price(pool, 15)
    assert fire(book, pool, "USDC", "SOL") == ["buy"]


@pytest.mark.parametrize("kind", [LIMIT, TAKE_PROFIT, STOP_LOSS])
def test_the_exact_boundary_fires_and_one_unit_past_it_does_not(kind: TriggerKind) -> None:
    pool = dlmm()
    book = TriggerBook()
    amount = 3 * SOL.one + 12_345
    out = out_now(pool, "SOL", amount)
    past = out + 1 if kind is not STOP_LOSS else out - 1
    book.arm(order("at", kind, amount, out))
    book.arm(order("past", kind, amount, past))
    assert fire(book, pool) == ["at"]
    assert book.get("past") is not None


# -- trailing stops ---------------------------------------------------------------


def test_a_trailing_stop_follows_the_price_up_never_down_and_fires_on_the_drop() -> None:
    pool = cpmm()
    book = TriggerBook()
    amount = 4 * SOL.one
    book.arm(trailing("trail", amount, 200))  # 2%
    assert fire(book, pool) == []
    first = out_now(pool, "SOL", amount)
    assert book.get("trail").high_out == first  # type: ignore[union-attr]
    assert book.take_moved_highs() == {"trail": first}
    assert book.take_moved_highs() == {}

    raise_sol_price(pool, 3_000)
    assert fire(book, pool) == []
    high = out_now(pool, "SOL", amount)
    assert high > first and book.get("trail").high_out == high  # type: ignore[union-attr]
    assert book.take_moved_highs() == {"trail": high}

    lower_sol_price(pool, 5)  # down ~1%: less than 2% off the high
    assert high * 98 // 100 < out_now(pool, "SOL", amount) < high
    assert fire(book, pool) == []
    assert book.get("trail").high_out == high  # type: ignore[union-attr]
    assert book.take_moved_highs() == {}

    lower_sol_price(pool, 10)
    firings = book.on_prices("SOL", "USDC", best_of("SOL", pool))
    assert [f.trigger.order_id for f in firings] == ["trail"]
    assert firings[0].trigger.high_out == high
    assert firings[0].amount_out <= high * 9_800 // 10_000
    assert book.take_moved_highs() == {} and "trail" not in book


def test_a_trailing_stop_fires_exactly_at_its_trigger() -> None:
    pool = dlmm()
    amount = 7 * SOL.one
    out = out_now(pool, "SOL", amount)
    # The smallest high whose trigger (high * 99%, floored) reaches today's output.
    high = -(-out * 10_000 // 9_900)
    assert high * 9_900 // 10_000 == out and (high - 1) * 9_900 // 10_000 == out - 1
    book = TriggerBook()
    book.arm(trailing("at", amount, 100, high=high))
    book.arm(trailing("short", amount, 100, high=high - 1))
    assert fire(book, pool) == ["at"]
    assert book.get("short").high_out == high - 1  # type: ignore[union-attr]


def test_a_first_quote_sets_the_high_and_never_fires() -> None:
    pool = cpmm()
    book = TriggerBook()
    book.arm(trailing("t", SOL.one, 50))
    lower_sol_price(pool, 200)  # a crash before the first event does not matter
    assert fire(book, pool) == []
    assert book.get("t").high_out == out_now(pool, "SOL", SOL.one)  # type: ignore[union-attr]


def test_a_disarmed_trailing_stop_reports_no_moved_high() -> None:
    pool = cpmm()
    book = TriggerBook()
    book.arm(trailing("t", SOL.one, 50))
    book.arm(trailing("u", SOL.one, 50))
    fire(book, pool)
    book.disarm("t")
    assert book.take_moved_highs() == {"u": out_now(pool, "SOL", SOL.one)}


# -- arming, disarming, expiry ---------------------------------------------------------


def test_arming_twice_is_a_no_op_and_disarm_returns_the_order_once() -> None:
    book = TriggerBook()
    first = order("a", LIMIT, 10, 10)
    assert book.arm(first) is True
    assert book.arm(order("a", STOP_LOSS, 99, 1)) is False
    assert book.get("a") is first and len(book) == 1 and "a" in book
    assert book.directions() == {("SOL", "USDC")}
    assert book.disarm("a") is first
    assert book.disarm("a") is None and book.get("a") is None and "a" not in book
    assert book.directions() == set() and len(book) == 0


def test_a_fired_order_fires_exactly_once_until_it_is_armed_again() -> None:
    pool = cpmm()
    book = TriggerBook()
    limit = order("a", LIMIT, SOL.one, out_now(pool, "SOL", SOL.one))
    book.arm(limit)
    assert fire(book, pool) == ["a"]
    assert fire(book, pool) == []
    assert book.disarm("a") is None  # the cancel that lost the race
    assert book.arm(limit) is True
    assert fire(book, pool) == ["a"]


def test_an_order_disarmed_between_events_never_fires() -> None:
    pool = cpmm()
    book = TriggerBook()
    book.arm(order("a", STOP_LOSS, SOL.one, out_now(pool, "SOL", SOL.one) * 99 // 100))
    book.arm(order("b", STOP_LOSS, SOL.one, out_now(pool, "SOL", SOL.one) * 99 // 100))
    assert fire(book, pool) == []
    assert book.disarm("a") is not None
    lower_sol_price(pool, 50)
    assert fire(book, pool) == ["b"]


def test_expiry_returns_what_is_due_in_order_and_next_expiry_skips_the_gone() -> None:
    book = TriggerBook()
    assert book.next_expiry() is None and book.expire(1e12) == []
    for name, at in [("c", 30.0), ("a", 10.0), ("b", 20.0), ("d", 40.0)]:
        book.arm(order(name, LIMIT, 10, 10, expires_at=at))
    assert book.next_expiry() == 10.0
    book.disarm("a")
    assert book.next_expiry() == 20.0
    assert book.expire(19.9) == []
    assert [t.order_id for t in book.expire(30.0)] == ["b", "c"]
    assert book.expire(30.0) == [] and book.next_expiry() == 40.0
    # Re-armed with a later expiry, the old arming's heap entry must not expire it.
    book.arm(order("a", LIMIT, 10, 10, expires_at=50.0))
    book.disarm("d")
    book.arm(order("d", LIMIT, 10, 10, expires_at=60.0))
    assert book.expire(45.0) == [] and book.next_expiry() == 50.0
    assert [t.order_id for t in book.expire(100.0)] == ["a", "d"]
    assert len(book) == 0 and book.next_expiry() is None and book.directions() == set()


def test_many_arms_and_disarms_keep_expiry_right() -> None:
    book = TriggerBook()
    for round_ in range(50):
        for k in range(20):
            book.arm(order(f"o{k}", LIMIT, 10, 10, expires_at=float(round_ * 100 + k)))
        for k in range(19):
            book.disarm(f"o{k}")
    assert len(book) == 1 and book.next_expiry() == 19.0
    assert [t.order_id for t in book.expire(1e9)] == ["o19"]


def test_a_trailing_high_keeps_its_expiry() -> None:
    pool = cpmm()
    book = TriggerBook()
    book.arm(trailing("t", SOL.one, 100, expires_at=5.0))
    fire(book, pool)
    assert book.next_expiry() == 5.0
    assert [t.order_id for t in book.expire(5.0)] == ["t"]


# -- no liquidity ---------------------------------------------------------------------


def test_an_order_no_route_can_fill_never_fires_and_the_others_still_do() -> None:
    pool = dlmm()
    book = TriggerBook()
    huge = 100_000 * SOL.one  # more than every bin holds
    book.arm(order("huge", STOP_LOSS, huge, 10**18))
    book.arm(order("small", STOP_LOSS, SOL.one, out_now(pool, "SOL", SOL.one)))
    book.arm(order("never", STOP_LOSS, SOL.one, 1))
    assert fire(book, pool) == ["small"]
    assert book.last_quotes == 2  # the bound failed: each amount quoted once, exactly
    assert book.on_prices("SOL", "USDC", lambda amount: None) == []
    assert set(book.directions()) == {("SOL", "USDC")} and len(book) == 2


def test_an_event_for_an_empty_direction_asks_no_quote() -> None:
    book = TriggerBook()
    calls: list[int] = []

    def quote(amount: int) -> None:
        calls.append(amount)

    assert book.on_prices("SOL", "USDC", quote) == []
    assert calls == [] and book.last_quotes == 0


# -- the bounds need the input-unit slack --------------------------------------------------


def test_rounding_on_a_cheap_output_token_is_covered_by_the_slack() -> None:
    """USDC -> BONK: one USDC base unit buys ~5000 BONK base units, so a fee rounded up by
    one input unit moves a dust order's ratio by thousands of output units, far more than
    ``slack_units`` of output alone would absorb."""
    pool = dlmm(BONK, price=0.00002)
    big = USDC.one
    big_out = out_now(pool, "USDC", big)
    # A dust amount whose ratio is more than 64 output units below the big order's.
    dust = next(a for a in range(2, 200) if out_now(pool, "USDC", a) + 64 < big_out * a // big)
    book = TriggerBook()
    book.arm(order("dust", LIMIT, dust, 10**15, token_in="USDC", token_out="BONK"))
    book.arm(order("big", LIMIT, big, big_out, token_in="USDC", token_out="BONK"))
    fired = book.on_prices("USDC", "BONK", best_of("USDC", pool))
    assert [f.trigger.order_id for f in fired] == ["big"]


# -- the cost of an event ---------------------------------------------------------------


def far_orders(pool: Pool, n: int) -> list[Trigger]:
    """Limits at twice today's price, stops at half, trailing stops far below a high far above,
    amounts from 0.01 to 10 SOL."""
    made = []
    for k in range(n):
        amount = int(SOL.one * 10 ** (-2 + 3 * k / n)) + k
        out = out_now(pool, "SOL", amount)
        kind = (LIMIT, TAKE_PROFIT, STOP_LOSS, TRAILING)[k % 4]
        if kind is TRAILING:
            made.append(trailing(f"far{k}", amount, 5_000, high=out * 3 // 2))
        else:
            far = out * 2 if kind is not STOP_LOSS else out // 2
            made.append(order(f"far{k}", kind, amount, far))
    return made


def test_an_event_over_10000_far_orders_asks_a_handful_of_quotes() -> None:
    pool = cpmm()
    book = TriggerBook()
    for trigger in far_orders(pool, 10_000):
        book.arm(trigger)
    amounts = [k * SOL.one for k in range(1, 6)]
    near = [
        order(f"near{a}", STOP_LOSS, a, out_now(pool, "SOL", a) * 99 // 100) for a in amounts
    ]
    for trigger in near:
        book.arm(trigger)
    assert fire(book, pool) == []
    assert book.last_quotes <= 4
    raise_sol_price(pool, 2_000)
    assert fire(book, pool) == [] and book.last_quotes <= 4
    lower_sol_price(pool, 40)  # every near stop fires, nothing far does
    assert sorted(fire(book, pool)) == [t.order_id for t in near]
    assert book.last_quotes <= 2 + len(near) + 4
    assert len(book) == 10_000 and book.take_moved_highs() == {}


# -- the property: the book fires exactly what checking every order would ---------------------


@dataclass
class Model:
    """One order as the brute force sees it."""

    kind: TriggerKind
    token_in: str
    amount: int
    threshold: int
    bps: int
    high: int | None


def brute_force(models: dict[str, Model], quote: QuoteFn) -> tuple[dict[str, int], dict[str, int]]:
    """(fired id -> output, moved high id -> high) checking every order with its own exact quote."""
    fired: dict[str, int] = {}
    moved: dict[str, int] = {}
    for order_id, m in models.items():
        quoted = quote(m.amount)
        if quoted is None:
            continue
        out = quoted.amount_out
        if m.kind is TRAILING:
            if m.high is None or out > m.high:
                m.high = moved[order_id] = out
            elif out <= m.high * (10_000 - m.bps) // 10_000:
                fired[order_id] = out
        elif m.kind in (LIMIT, TAKE_PROFIT):
            if out >= m.threshold:
                fired[order_id] = out
        elif out <= m.threshold:
            fired[order_id] = out
    for order_id in fired:
        del models[order_id]
    return fired, moved


@dataclass
class Market:
    name: str
    pools: list[Pool]
    x: Token  # the non-USDC token
    usd_per_x: float

    def quote(self, token_in: str) -> QuoteFn:
        return best_of(token_in, *self.pools)

    def units(self, token: str, usd: float) -> int:
        one = self.x.one if token == self.x.symbol else USDC.one
        per = self.usd_per_x if token == self.x.symbol else 1.0
        return max(1, int(usd / per * one))


MARKETS: dict[str, Callable[[], Market]] = {
    "cpmm": lambda: Market("cpmm", [cpmm()], SOL, 150.0),
    "dlmm": lambda: Market("dlmm", [dlmm(shape="curve")], SOL, 150.0),
    "best of cpmm and dlmm": lambda: Market("both", [cpmm(), dlmm()], SOL, 150.0),
    "dlmm BONK": lambda: Market("bonk", [dlmm(BONK, price=0.00002)], BONK, 0.00002),
}

KINDS = st.sampled_from([LIMIT, TAKE_PROFIT, STOP_LOSS, TRAILING])
ORDER = st.tuples(
    KINDS,
    st.booleans(),  # sell x (else sell USDC)
    st.floats(-3.0, 4.0),  # log10 of the USD amount
    st.integers(-400, 400),  # threshold / high offset from today's output, bps
    st.integers(50, 600),  # trailing bps
    st.booleans(),  # trailing: arm with a high (else the first quote sets it)
)
# A few orders of a handful of base units: their rounding is what the slack must absorb.
DUST = st.tuples(
    KINDS, st.booleans(), st.integers(2, 300), st.integers(-400, 400), st.integers(50, 600),
    st.booleans(),
)
STEP = st.one_of(
    st.tuples(st.just("swap"), st.booleans(), st.floats(1.0, 4.7)),  # sell x?, log10 USD
    st.tuples(st.just("arm"), ORDER),
    st.tuples(st.just("disarm"), st.integers(0, 10**6)),
)


def make_order(
    market: Market, order_id: str, spec: tuple, span: tuple[float, float]  # type: ignore[type-arg]
) -> Trigger:
    """An order of ``spec``; a float size in [-3, 4] is mapped into ``span`` (log10 USD)."""
    kind, sell_x, size, offset, bps, with_high = spec
    token_in, token_out = (market.x.symbol, "USDC") if sell_x else ("USDC", market.x.symbol)
    if isinstance(size, int):
        amount = size
    else:
        low, high = span
        amount = market.units(token_in, 10 ** (low + (size + 3) / 7 * (high - low)))
    quoted = market.quote(token_in)(amount)
    now = quoted.amount_out if quoted is not None else 1_000
    shifted = max(1, now * (10_000 + offset) // 10_000)
    if kind is TRAILING:
        return trailing(order_id, amount, bps, high=shifted if with_high else None,
                        token_in=token_in, token_out=token_out)
    return order(order_id, kind, amount, shifted, token_in=token_in, token_out=token_out)


def check_event(book: TriggerBook, market: Market, models: dict[str, Model]) -> None:
    for token_in, token_out in ((market.x.symbol, "USDC"), ("USDC", market.x.symbol)):
        mine = {k: m for k, m in models.items() if m.token_in == token_in}
        firings = book.on_prices(token_in, token_out, market.quote(token_in))
        fired, moved = brute_force(mine, market.quote(token_in))
        assert {f.trigger.order_id: f.amount_out for f in firings} == fired
        for f in firings:
            expected_high = models[f.trigger.order_id].high
            assert f.trigger.high_out == expected_high
            del models[f.trigger.order_id]
        assert book.take_moved_highs() == moved
        for order_id, m in mine.items():
            assert book.get(order_id).high_out == m.high  # type: ignore[union-attr]
    assert len(book) == len(models)


@pytest.mark.parametrize("market_name", sorted(MARKETS))
@PROPERTY
@given(
    orders=st.lists(ORDER, min_size=1, max_size=25),
    dust=st.lists(DUST, max_size=2),
    steps=st.lists(STEP, min_size=1, max_size=10),
    narrow=st.booleans(),  # amounts within one decade: a narrow band, most orders decided unquoted
)
def test_the_book_fires_exactly_what_checking_every_order_fires(
    market_name: str,
    orders: list[tuple],  # type: ignore[type-arg]
    dust: list[tuple],  # type: ignore[type-arg]
    steps: list[tuple],  # type: ignore[type-arg]
    narrow: bool,
) -> None:
    market = MARKETS[market_name]()
    book = TriggerBook()
    models: dict[str, Model] = {}
    ids = itertools.count()

    def arm(spec: tuple) -> None:  # type: ignore[type-arg]
        trigger = make_order(market, f"o{next(ids)}", spec, (1.0, 2.0) if narrow else (-3.0, 4.0))
        assert book.arm(trigger)
        models[trigger.order_id] = Model(
            trigger.kind, trigger.token_in, trigger.amount_in, trigger.threshold_out,
            trigger.trailing_bps, trigger.high_out,
        )

    for spec in [*orders, *dust]:
        arm(spec)
    check_event(book, market, models)
    for step in steps:
        if step[0] == "swap":
            _, sell_x, usd = step
            token = market.x.symbol if sell_x else "USDC"
            try:
                market.pools[0].swap_exact_in(token, market.units(token, 10**usd))
            except SimError:
                pass  # that side ran dry: no move
        elif step[0] == "arm":
            arm(step[1])
        elif models:
            victim = sorted(models)[step[1] % len(models)]
            assert book.disarm(victim) is not None
            del models[victim]
        check_event(book, market, models)


def test_firing_carries_the_quote_it_fired_on() -> None:
    pool = cpmm()
    quoted = pool.quote_exact_in("SOL", SOL.one)
    firing = Firing(order("a", LIMIT, SOL.one, 1), quoted)
    assert firing.amount_out == quoted.amount_out == 149_475_897
    with pytest.raises(AttributeError):
        firing.quoted = quoted  # type: ignore[misc]
