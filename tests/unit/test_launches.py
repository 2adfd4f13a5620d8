"""Token launches and sniper orders: the pure parts, and the sniper through the desk and the lifecycle (no Ray)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from engine.config import build_market, build_pools, load_market_config
from engine.records import NewOrder
from engine.settings import DEFAULT_MARKET_CONFIG
from engine.waiting import TriggerDesk, stored_sniper
from sim.launches import Launch, LaunchProcess, Sniper, SniperBook, launch_mint, launch_pool, liquidity_in
from sim.orders import OrderStatus
from sim.tokens import SOL, USDC, to_base_units
from tests.unit.lifecycle_fakes import TOKENS, make_world
from tests.unit.test_waiting_orders import LaneQueue

FAR = 10**12


def a_launch(symbol: str = "MEOW", dex: str = "raydium", liquidity: str = "200", price: str = "0.0001",
             after_s: float = 0.0) -> Launch:  # fmt: skip
    return Launch(symbol, launch_mint(7, symbol), 6, "SOL", dex, Decimal(liquidity), Decimal(price), after_s)


@pytest.mark.parametrize("dex", ["raydium", "meteora"])
def test_a_launch_opens_its_pool_at_its_price_with_its_liquidity(dex: str):
    pool = launch_pool(a_launch(dex=dex), SOL)
    assert pool.pool_id == f"{dex}:MEOW-SOL" and pool.token_x.symbol == "MEOW"
    assert pool.spot_price("MEOW") == pytest.approx(0.0001, rel=0.01)
    assert liquidity_in(pool, "SOL") == pytest.approx(Decimal(200), rel=Decimal("0.03"))


def test_launches_are_refused_when_they_make_no_sense():
    for bad in ({"symbol": "ME OW"}, {"dex": "orca"}, {"price": Decimal(0)}, {"pair_with": "MEOW"}):
        values = {"symbol": "MEOW", "mint": "m" * 32, "decimals": 6, "pair_with": "SOL", "dex": "raydium",
                  "liquidity": Decimal(1), "price": Decimal(1), **bad}  # fmt: skip
        with pytest.raises(ValueError):
            Launch(**values)


def test_the_same_seed_gives_the_same_launches_each_once_and_in_order():
    def run(seed: int) -> list[tuple[str, str, Decimal, float]]:
        process = LaunchProcess([a_launch("LATE", after_s=50), a_launch("EARLY", after_s=5)], per_hour=360, seed=seed)
        out = []
        for t in range(0, 120, 7):
            out += [(x.symbol, x.dex, x.price, round(x.after_s, 3)) for x in process.due(float(t))]
        assert process.due(120.0) == []
        return out

    first = run(1)
    assert first == run(1) and first != run(2)
    symbols = [s for s, *_ in first]
    assert symbols.index("EARLY") < symbols.index("LATE") and symbols.count("EARLY") == 1
    assert any(s.startswith("LNCH") for s in symbols)
    assert LaunchProcess(per_hour=0).next_due() == float("inf")
    assert launch_mint(7, "MEOW") == launch_mint(7, "MEOW") != launch_mint(8, "MEOW")


def test_a_sniper_fires_on_its_token_s_first_pool_with_enough_liquidity_and_only_then():
    book = SniperBook()
    pool = launch_pool(a_launch(), SOL)
    mint = pool.token_x.mint
    book.arm(Sniper("by-symbol", "meow", "SOL", Decimal(150), FAR))
    book.arm(Sniper("by-mint", mint, "SOL", Decimal(1), FAR))
    book.arm(Sniper("too-deep", "MEOW", "SOL", Decimal(10_000), FAR))
    book.arm(Sniper("other-token", "WOOF", "SOL", Decimal(1), FAR))
    book.arm(Sniper("pays-with-usdc", "MEOW", "USDC", Decimal(1), FAR))
    assert not book.arm(Sniper("by-mint", mint, "SOL", Decimal(1), FAR))
    fired = {s.order_id for s, token in book.opened(pool)}
    assert fired == {"by-symbol", "by-mint"}
    assert book.opened(pool) == []  # at most once
    assert all(i in book for i in ("too-deep", "other-token", "pays-with-usdc")) and "by-mint" not in book
    assert book.disarm("other-token").token_ref == "WOOF" and book.disarm("other-token") is None
    assert book.next_expiry() == FAR
    assert {s.order_id for s in book.expire(FAR)} == {"too-deep", "pays-with-usdc"} and len(book) == 0


def test_the_market_trades_a_launched_pool_towards_its_opening_price():
    config = load_market_config(DEFAULT_MARKET_CONFIG)
    market = build_market(config, build_pools(config), seed=3, tick_s=0.5)
    pool = launch_pool(a_launch(), SOL)
    assert market.add_pool(pool, {"MEOW": 0.0001 * market.reference_price("SOL")})
    assert not market.add_pool(pool, {})
    pool.swap_exact_in("SOL", 20 * SOL.one, 0, 0.0)  # someone buys: MEOW is dear now
    assert pool.spot_price("MEOW") > 0.000105
    for _ in range(20):
        for trade in market.tick(0.5):
            pass
    assert pool.spot_price("MEOW") == pytest.approx(0.0001, rel=0.03)


def sniper_order(world, symbol: str, *, min_liquidity: str = "100", impact_bps: int = 1000, amount: str = "1"):
    expires = datetime.fromtimestamp(world.clock.now, UTC) + timedelta(hours=1)
    return world.book.add(NewOrder(
        type="sniper", token_in="SOL", token_out=symbol, mint_in=SOL.mint, mint_out="",
        amount_in=to_base_units(amount, SOL), amount_in_decimal=amount, slippage_bps=500, expires_at=expires,
        trigger=stored_sniper(symbol, min_liquidity=Decimal(min_liquidity), max_price_impact_bps=impact_bps),
    ))  # fmt: skip


async def test_a_sniper_is_armed_fired_by_the_launch_into_the_priority_lane_and_bought_within_its_bound():
    world = make_world()
    pool = launch_pool(a_launch("PURR"), SOL)
    TOKENS.add(pool.token_x)
    order = sniper_order(world, "purr")
    tight = sniper_order(world, "PURR", impact_bps=1, amount="10")
    queue = LaneQueue()
    desk = TriggerDesk(world.book, world.feed, queue, TOKENS, world.clock)
    for armed in (order, tight):
        assert (await world.lifecycle.run(armed.id)).status == "open"
        assert world.book.events[armed.id][-1].details["waitingFor"]["token"] in ("purr", "PURR")
        assert await desk.arm_by_id(armed.id)
    assert await desk.pools_opened([launch_pool(a_launch("OTHER"), SOL)]) == []
    world.venues.pools[pool.pool_id] = pool  # the launch: the pool exists for the router and the executors
    assert sorted(await desk.pools_opened([pool])) == sorted([order.id, tight.id])
    assert sorted(queue.priority) == sorted([order.id, tight.id])
    fired = world.book.orders[order.id]
    assert (fired.status, fired.token_out, fired.mint_out) == (OrderStatus.TRIGGERED, "PURR", pool.token_x.mint)
    assert world.book.events[order.id][-1].details["poolId"] == pool.pool_id
    assert (await world.lifecycle.run(order.id)).status == "confirmed"
    assert world.book.orders[order.id].dex == "raydium"
    assert (await world.lifecycle.run(tight.id)).status == "failed"
    assert world.book.orders[tight.id].error_code == "PRICE_IMPACT_TOO_HIGH"


def test_a_launched_token_is_learnt_once_and_a_clash_is_refused():
    from sim.tokens import Token, TokenRegistry

    tokens = TokenRegistry()
    token = Token("HISS", launch_mint(7, "HISS"), 6)
    assert tokens.add(token) and not tokens.add(token)
    assert tokens.resolve("hiss") == token == tokens.resolve(token.mint)
    with pytest.raises(ValueError, match="clashes"):
        tokens.add(Token("HISS", USDC.mint, 6))
