"""Orders landing through the chain actor on the real engine: Ray, PostgreSQL, Redis; 50 ms slots.

One engine for the module. Its presets are made for certainty: ``calm`` takes every send,
``busy`` loses 80 % of them (with seed 7 the first two sends are lost, the third taken),
``congested`` loses all but one in a thousand (every blockhash expires). A searcher watches
every waiting transaction and sandwiches what pays it at least 0.0001 SOL.
"""

from __future__ import annotations

import time

import psycopg
import pytest
import ray

from tests.integration.engine_harness import (
    assert_invariants,
    base_settings,
    history,
    run,
    running_engine,
    submit,
    wait_final,
)

pytestmark = pytest.mark.integration

QUIET = {"load": 0.0, "bundles_per_slot": 0.0, "hot_load": 0.0, "ingress_loss": 0.0, "wave_sigma": 0.0}
CHAIN = {
    "enabled": "on",
    "overrides": {
        "chain": {"slot_s": 0.05, "skip_rate": 0.0, "rebroadcast_s": 0.1, "blockhash_valid_blocks": 20,
                  "jito_share": 1.0},
        "preset": "busy",
        "presets": {"calm": QUIET, "busy": {**QUIET, "ingress_loss": 0.8},
                    "congested": {**QUIET, "ingress_loss": 0.999}},
        "mev": {"rate": 1.0, "min_profit_lamports": 100_000},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def chain_engine(database_url, redis_url, ray_session):
    settings = base_settings(database_url, redis_url, seed=7, chain=CHAIN, dispatch={"executors": 4},
                             routing={"allow_two_hop": False})  # fmt: skip
    assert settings.chain_on
    with running_engine(settings) as actors:
        yield settings, actors


def congestion(actors, preset: str) -> dict:
    return ray.get(actors.chain.set_congestion.remote(preset))


def final_details(settings, order_id: str) -> dict:
    return history(settings, order_id)[-1]["details"]


def test_a_lost_send_is_re_sent_and_lands(chain_engine):
    settings, actors = chain_engine
    (order_id,) = run(submit(settings, [("SOL", "USDC", "1")], slippage_bps=50))
    assert wait_final(settings, [order_id], timeout_s=30) == {order_id: "confirmed"}
    landed = final_details(settings, order_id)
    assert [s["received"] for s in landed["sends"]] == [False, False, True] and landed["resends"] == 2
    assert landed["commitment"] == "confirmed" and isinstance(landed["slot"], int)
    assert landed["fees"]["baseLamports"] == 5_000
    assert_invariants(settings, actors, [order_id])


def test_an_order_lands_in_its_slot_with_its_fees(chain_engine):
    settings, actors = chain_engine
    congestion(actors, "calm")
    (order_id,) = run(submit(settings, [("SOL", "USDC", "1")], slippage_bps=50,
                             tx_options={"priorityFee": 20_000}))  # fmt: skip
    assert wait_final(settings, [order_id], timeout_s=30) == {order_id: "confirmed"}
    rows = history(settings, order_id)
    assert [r["status"] for r in rows] == ["pending", "routing", "building", "submitted", "confirmed"]
    tx = rows[2]["details"]["transaction"]
    landed = rows[-1]["details"]
    assert tx["computeUnitPrice"] == 20_000 and tx["computeUnitLimit"] in (140_000, 170_000)
    assert landed["fees"]["priorityLamports"] == tx["computeUnitLimit"] * 20_000 // 1_000_000
    assert landed["computeUnitsConsumed"] == tx["computeUnitLimit"] and landed["resends"] == 0
    assert rows[3]["details"]["lastValidBlockHeight"] == tx["lastValidBlockHeight"]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        (stamp,) = conn.execute("SELECT details->'chain' FROM pool_trades WHERE order_id = %s", (order_id,)).fetchone()
    assert stamp["slot"] == landed["slot"]  # the fill carries where it landed
    info = ray.get(actors.chain.info.remote())
    assert info["congestion"] == "calm" and info["landed"] >= 2 and info["blockHeight"] > landed["blockHeight"] - 1
    assert_invariants(settings, actors, [order_id])


def test_an_expired_blockhash_is_retried_with_a_fresh_one(chain_engine):
    settings, actors = chain_engine
    congestion(actors, "congested")
    (order_id,) = run(submit(settings, [("SOL", "USDC", "1")], slippage_bps=50))
    deadline = time.monotonic() + 20
    while not any(r["details"].get("error", {}).get("code") == "BLOCKHASH_EXPIRED"
                  for r in history(settings, order_id)):  # fmt: skip
        assert time.monotonic() < deadline, history(settings, order_id)
        time.sleep(0.05)
    congestion(actors, "calm")
    assert wait_final(settings, [order_id], timeout_s=30) == {order_id: "confirmed"}
    rows = history(settings, order_id)
    hashes = [r["details"]["transaction"]["recentBlockhash"] for r in rows if r["status"] == "building"]
    assert len(hashes) >= 2 and len(set(hashes)) == len(hashes)  # each attempt signed afresh
    assert rows[-1]["attempt"] >= 2
    assert_invariants(settings, actors, [order_id])


def test_a_loose_bound_is_sandwiched_and_a_protected_order_is_not(chain_engine):
    settings, actors = chain_engine
    congestion(actors, "calm")
    # SOL -> USDT has one pool, a constant-product one (a DLMM pool's volatility fee makes the same
    # sandwich cost more than it earns)
    (victim,) = run(submit(settings, [("SOL", "USDT", "5")], slippage_bps=300))
    assert wait_final(settings, [victim], timeout_s=30) == {victim: "confirmed"}
    (protected,) = run(submit(settings, [("SOL", "USDT", "5")], slippage_bps=300,
                              tx_options={"jitoTipLamports": 10_000}))  # fmt: skip
    assert wait_final(settings, [protected], timeout_s=30) == {protected: "confirmed"}
    assert final_details(settings, victim)["sandwiched"] is True
    safe = final_details(settings, protected)
    assert not safe.get("sandwiched") and safe["fees"]["tipLamports"] == 10_000
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        (mev,) = conn.execute("SELECT count(*) FROM pool_trades WHERE kind = 'mev'").fetchone()
    assert mev == 2  # the front-run and the back-run, real trades in the books
    assert_invariants(settings, actors, [victim, protected])


def test_an_order_waiting_on_a_chain_actor_that_dies_still_ends_and_fills_once(chain_engine):
    settings, actors = chain_engine
    congestion(actors, "congested")  # nothing lands: the transaction waits on the chain
    (order_id,) = run(submit(settings, [("SOL", "USDC", "1")], slippage_bps=50))
    deadline = time.monotonic() + 20
    while not any(r["status"] == "submitted" for r in history(settings, order_id)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ray.kill(actors.chain, no_restart=False)  # restarted as the same chain, in its configured preset (busy)
    assert wait_final(settings, [order_id], timeout_s=60)[order_id] in ("confirmed", "failed")
    codes = [r["details"].get("error", {}).get("code") for r in history(settings, order_id)]
    assert "CHAIN_UNAVAILABLE" in codes or "BLOCKHASH_EXPIRED" in codes
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        (fills,) = conn.execute("SELECT count(*) FROM pool_trades WHERE order_id = %s", (order_id,)).fetchone()
    assert fills <= 1
    congestion(actors, "calm")
    assert_invariants(settings, actors, [order_id])
