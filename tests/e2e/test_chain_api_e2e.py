"""The chain through Ray Serve's HTTP proxy: an order's fee options, its landing and finality, the chain's
state and the congestion control. Real clients, the live engine with the chain on (50 ms slots)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from localservers.ports import free_port
from tests.e2e.serve_harness import serving, stream
from tests.integration.engine_harness import base_settings

pytestmark = pytest.mark.e2e

QUIET = {"load": 0.0, "bundles_per_slot": 0.0, "hot_load": 0.0, "ingress_loss": 0.0, "wave_sigma": 0.0}


@pytest.fixture(scope="module")
def api(database_url: str, redis_url: str, ray_session: None) -> Iterator[str]:
    settings = base_settings(
        database_url, redis_url, api={"port": free_port()}, dispatch={"executors": 2},
        chain={"enabled": "on", "overrides": {"chain": {"slot_s": 0.05, "skip_rate": 0.0}, "presets": {"calm": QUIET}}},
    )  # fmt: skip
    with serving(settings) as base:
        yield base


def test_an_order_with_a_priority_fee_lands_and_its_view_turns_finalized(api: str) -> None:
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "slippageBps": 100, "priorityFee": 30_000,
            "maxPriorityFeeLamports": 1_000_000}  # fmt: skip
    accepted = httpx.post(f"{api}/api/orders/execute", json=body, timeout=10)
    assert accepted.status_code == 202, accepted.text
    order_id = accepted.json()["orderId"]
    events, _ = asyncio.run(stream(api.replace("http", "ws") + f"/api/orders/{order_id}/ws", timeout=30))
    assert [e["status"] for e in events] == ["pending", "routing", "building", "submitted", "confirmed"]
    confirmed = events[-1]["details"]
    assert confirmed["commitment"] == "confirmed" and confirmed["fees"]["baseLamports"] == 5_000
    assert events[2]["details"]["transaction"]["computeUnitPrice"] == 30_000
    view = httpx.get(f"{api}/api/orders/{order_id}", timeout=10).json()
    assert view["transaction"]["priorityFee"] == 30_000 and view["transaction"]["maxPriorityFeeLamports"] == 1_000_000
    assert view["landing"]["slot"] == confirmed["slot"] and view["landing"]["fees"] == confirmed["fees"]
    deadline = time.monotonic() + 15  # 32 blocks of 50 ms
    while view["landing"]["commitment"] != "finalized":
        assert time.monotonic() < deadline, view["landing"]
        time.sleep(0.3)
        view = httpx.get(f"{api}/api/orders/{order_id}", timeout=10).json()
    assert view["landing"]["finalizedAt"].endswith("Z")


def test_bad_fee_options_are_422s_in_the_error_shape(api: str) -> None:
    for body, code in (({"priorityFee": "urgent"}, "INVALID_PRIORITY_FEE"), ({"jitoTipLamports": 10}, "INVALID_TIP"),
                       ({"priorityFee": True}, "VALIDATION_ERROR")):  # fmt: skip
        answer = httpx.post(f"{api}/api/orders/execute", json={"tokenIn": "SOL", "tokenOut": "USDC",
                                                               "amountIn": "1", **body}, timeout=10)  # fmt: skip
        assert answer.status_code == 422 and answer.json()["error"]["code"] == code, answer.text


def test_the_chain_is_shown_and_its_congestion_switched(api: str) -> None:
    chain = httpx.get(f"{api}/api/chain", timeout=10).json()
    assert chain["enabled"] is True and chain["congestion"] == "calm" and chain["slot"] > 0
    assert set(chain["recentFees"]) == {"p25", "p50", "p75", "p95", "samples"}
    switched = httpx.post(f"{api}/api/sim/congestion", json={"preset": "congested"}, timeout=10)
    assert switched.status_code == 200 and switched.json()["congestion"] == "congested"
    assert httpx.get(f"{api}/api/chain", timeout=10).json()["congestion"] == "congested"
    wrong = httpx.post(f"{api}/api/sim/congestion", json={"preset": "jammed"}, timeout=10)
    assert wrong.status_code == 422 and "error" in wrong.json()
    httpx.post(f"{api}/api/sim/congestion", json={"preset": "calm"}, timeout=10)


def test_metrics_carry_the_chain_as_api_chain_shows_it(api: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    chain = httpx.get(f"{api}/api/chain", timeout=10).json()
    text = httpx.get(f"{api}/metrics", timeout=10).text
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip
    assert got[("dex_engine_up", ())] == 1
    landed = got[("dex_chain_transactions_total", (("outcome", "landed"),))]
    assert landed >= chain["landed"] >= 1  # counts only grow between the two reads
    assert got[("dex_chain_slot", ())] >= chain["slot"]
    assert ("dex_chain_recent_priority_fee", (("percentile", "p50"),)) in got


async def test_the_demo_prints_slots_fees_and_re_sends_for_its_orders(api: str, capsys) -> None:
    from runtime.demo import run_demo_client

    assert await run_demo_client(api, 5, waiting=False) == 0
    out = capsys.readouterr().out
    confirmed = [line for line in out.splitlines() if " confirmed " in line and line.startswith("[order")]
    assert len(confirmed) == 5 and all(" slot " in line and " SOL re-sends " in line for line in confirmed)
    assert "tip 10000" in out  # the protected one
