"""The router following the pools: routes made on the states the pools report as they change, with no
pool call per route; a pool whose actor died is skipped. Real Ray, PostgreSQL and Redis.

The pools here take 3 s to answer a quote (a simulated quote latency, which a router that asked them
per route would wait out: each would be skipped after 0.5 s); following is switched on explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import ray

from actors.system import EngineActors
from engine.settings import EngineSettings
from sim.decision import RouteDecision, VenueQuote
from sim.pools import restore_pool
from tests.integration.engine_harness import assert_invariants, base_settings, run, running_engine, submit, wait_final

pytestmark = pytest.mark.integration

SOL = 10**9
CPMM = "raydium:SOL-USDC"
DLMM = "meteora:SOL-USDC"


@pytest.fixture(scope="module")
def engine(database_url: str, redis_url: str, ray_session: None) -> Iterator[tuple[EngineSettings, EngineActors]]:
    settings = base_settings(
        database_url, redis_url, dispatch={"executors": 2},
        latency={"quote_s": 3.0, "quote_jitter_s": 0.0, "execution_min_s": 0.0, "execution_max_s": 0.0},
        routing={"follow_pools": "on", "pool_timeout_s": 0.5},
    )  # fmt: skip
    with running_engine(settings) as actors:
        yield settings, actors


def route(actors: EngineActors, amount: int = SOL) -> RouteDecision:
    return ray.get(actors.router.route.remote("SOL", "USDC", amount), timeout=30)


def quoted(decision: RouteDecision) -> dict[str, int]:
    return {q.pool_id: q.amount_out for q in decision.quotes if isinstance(q, VenueQuote) and q.kind == "single"}


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout_s:g}s"
        time.sleep(0.05)
    return found


def route_until(actors: EngineActors, wanted: Callable[[RouteDecision], bool], what: str) -> RouteDecision:
    def check() -> RouteDecision | None:
        decision = route(actors)
        return decision if wanted(decision) else None

    return eventually(check, what)


def cpmm_quote(actors: EngineActors, amount: int = SOL) -> int:
    return restore_pool(ray.get(actors.pools[CPMM].snapshot.remote())).quote_exact_in("SOL", amount).amount_out


def test_a_route_asks_no_pool_and_sees_every_venue(engine: tuple[EngineSettings, EngineActors]) -> None:
    _, actors = engine
    decision = route_until(actors, lambda d: {CPMM, DLMM} <= set(quoted(d)), "both pools followed")
    assert decision.skipped == ()  # asked, each would have been skipped: POOL_TIMEOUT after 0.5 s
    assert quoted(decision)[CPMM] == cpmm_quote(actors)


def test_a_route_after_a_trade_sees_the_pool_as_the_trade_left_it(engine: tuple[EngineSettings, EngineActors]) -> None:
    settings, actors = engine
    before = cpmm_quote(actors)
    moved = ray.get(actors.pools[CPMM].shock.remote(-150.0), timeout=30)
    assert moved["trade"] is not None
    after = cpmm_quote(actors)
    assert after < before
    eventually(lambda: quoted(route(actors)).get(CPMM) == after, "the router seeing the shock")
    (order,) = run(submit(settings, [("SOL", "USDC", "2")]))
    assert wait_final(settings, [order]) == {order: "confirmed"}
    eventually(lambda: quoted(route(actors)).get(CPMM) == cpmm_quote(actors), "the router seeing the fill")
    assert_invariants(settings, actors, [order])


def test_a_pool_whose_actor_died_is_skipped_and_orders_go_to_the_other(engine: tuple[EngineSettings, EngineActors]) -> None:
    settings, actors = engine
    ray.kill(actors.pools[CPMM], no_restart=True)
    decision = route_until(actors, lambda d: any(s.pool_id == CPMM for s in d.skipped), "the dead pool skipped")
    (skipped,) = [s for s in decision.skipped if s.pool_id == CPMM]
    assert skipped.code == "POOL_UNAVAILABLE"
    assert set(quoted(decision)) == {DLMM}
    (order,) = run(submit(settings, [("SOL", "USDC", "1")]))
    assert wait_final(settings, [order]) == {order: "confirmed"}


def test_a_stopping_pool_answers_its_watchers_at_once(engine: tuple[EngineSettings, EngineActors]) -> None:
    """So that it can exit: an actor exits only once its running calls have returned."""
    _, actors = engine
    pool = actors.pools[DLMM]
    version, _ = ray.get(pool.state_since.remote(None), timeout=30)
    waiting = pool.watch.remote(version, 600.0)  # unchanged: it would wait up to 600 s
    ready, _ = ray.wait([waiting], timeout=1.0)
    assert ready == []
    ray.get(pool.stop_watching.remote(), timeout=30)
    assert ray.get(waiting, timeout=60) == (version, None)
    assert ray.get(pool.watch.remote(version, 600.0), timeout=60) == (version, None)  # and every later one
