"""Launches from the market config: the market opens a scheduled token's pool, trades it, and a restarted
market and engine still know it. Real Ray, PostgreSQL and Redis."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
import ray
import yaml

from actors.launched import LAUNCHPAD_NAME
from engine.settings import DEFAULT_MARKET_CONFIG
from sim.launches import launch_mint
from sim.tokens import Token, TokenRegistry
from tests.integration.engine_harness import base_settings, run, running_engine, submit, wait_final

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def launch_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = yaml.safe_load(DEFAULT_MARKET_CONFIG.read_text())
    config["launches"] = {
        "scheduled": [{"after_s": 0.5, "symbol": "TICK", "pair_with": "USDC", "dex": "raydium",
                       "liquidity": 20_000, "price": 0.25}],  # fmt: skip
        "random": {"per_hour": 0},
    }
    path = tmp_path_factory.mktemp("market") / "market.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(check, timeout_s: float = 30.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout_s:g}s"
        time.sleep(0.2)


def trades_of(database_url: str, pool_id: str) -> list[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return [k for (k,) in conn.execute("SELECT kind FROM pool_trades WHERE pool_id = %s", (pool_id,))]


def test_a_scheduled_launch_opens_its_pool_the_market_trades_it_and_a_restart_keeps_it(
    database_url: str, redis_url: str, ray_session: None, launch_config: Path
) -> None:
    settings = base_settings(database_url, redis_url, market={"enabled": True, "tick_s": 0.2,
                                                               "config": str(launch_config)})  # fmt: skip
    pool_id = "raydium:TICK-USDC"
    with running_engine(settings) as actors:
        wait_for(lambda: pool_id in ray.get(actors.router.pool_ids.remote()), what="the scheduled launch")
        wait_for(lambda: trades_of(database_url, pool_id), what="the market trading the launched pool")
        tokens = TokenRegistry()
        tokens.add(Token("TICK", launch_mint(settings.seed, "TICK"), 6))
        (order,) = run(submit(settings, [("USDC", "TICK", "100")], tokens=tokens))
        assert wait_final(settings, [order]) == {order: "confirmed"}
        launched = ray.get(actors.launchpad.launched.remote())
        assert [p["poolId"] for p in launched] == [pool_id]
    # A new engine on the same store: the launchpad re-creates the pool's actor from PostgreSQL, and the
    # schedule does not launch it twice (TOKEN_EXISTS).
    with running_engine(settings, reset=False) as actors:
        assert pool_id in ray.get(actors.router.pool_ids.remote())
        (again,) = run(submit(settings, [("TICK", "USDC", "50")], tokens=tokens))
        assert wait_final(settings, [again]) == {again: "confirmed"}
        pad = ray.get_actor(LAUNCHPAD_NAME, namespace=settings.ray.namespace)
        assert len(ray.get(pad.launched.remote())) == 1
