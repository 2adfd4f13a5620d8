"""A waiting order's terms, judged before anything is stored (serve.validation with serve.waiting_terms)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.unit.order_terms import refused, valid



def test_a_limit_becomes_one_exact_minimum_out_rounded_up_and_takes_no_slippage():
    order = valid(type="limit", limitPrice="150.0000005")
    assert order.slippage_bps == 0
    # 2 SOL x 150.0000005 USDC = 300.000001 USDC = 300000001 base units (6 decimals), exactly
    assert order.waiting.trigger == {"kind": "limit", "thresholdOut": "300000001", "price": "150.0000005"}
    assert order.new_order().trigger == order.waiting.trigger
    assert refused(type="limit", limitPrice="150", slippageBps=100).code == "INVALID_SLIPPAGE"


def test_a_stop_rounds_down_and_defaults_to_500_bps_of_slippage():
    order = valid(type="stop_loss", triggerPrice="150.0000009")
    assert order.waiting.trigger["thresholdOut"] == "300000001"  # 300.0000018 rounded down
    assert order.slippage_bps == 500
    assert valid(type="take_profit", triggerPrice="200", slippageBps=250).slippage_bps == 250


def test_a_trailing_stop_takes_bps_within_50_to_5000_and_no_price():
    assert valid(type="trailing_stop", trailingBps=300).waiting.trigger["trailingBps"] == 300
    assert refused(type="trailing_stop", trailingBps=49).code == "INVALID_TRAILING_BPS"
    assert refused(type="trailing_stop", trailingBps="1.5").code == "INVALID_TRAILING_BPS"
    assert refused(type="trailing_stop").code == "MISSING_PRICE"
    assert refused(type="trailing_stop", trailingBps=100, triggerPrice="5").code == "INVALID_PRICE"
    assert refused(type="stop_loss", triggerPrice="5", trailingBps=100).code == "INVALID_TRAILING_BPS"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "limit"}, "MISSING_PRICE"),
        ({"type": "limit", "limitPrice": "-1"}, "INVALID_PRICE"),
        ({"type": "limit", "limitPrice": "abc"}, "INVALID_PRICE"),
        ({"type": "limit", "limitPrice": "1e99"}, "INVALID_PRICE"),
        ({"type": "limit", "limitPrice": "9" * 70}, "INVALID_PRICE"),
        ({"type": "limit", "triggerPrice": "150"}, "INVALID_PRICE"),
        ({"type": "stop_loss", "triggerPrice": "0.0000000001"}, "INVALID_PRICE"),  # below one base unit
        ({"type": "market", "triggerPrice": "150"}, "PRICE_ON_MARKET_ORDER"),
        ({"expiresAt": "2030-01-01T00:00:00Z"}, "PRICE_ON_MARKET_ORDER"),
        ({"type": "limit", "limitPrice": "150", "tokenOut": "SOL"}, "SAME_TOKEN"),
        ({"type": "twap"}, "UNSUPPORTED_ORDER_TYPE"),
        ({"type": "sniper", "tokenOut": "NEWCOIN"}, "MISSING_LIQUIDITY"),
        ({"type": "sniper", "tokenOut": "NEWCOIN", "minLiquidity": "0"}, "INVALID_LIQUIDITY"),
        ({"type": "sniper", "tokenOut": "USDC", "minLiquidity": "10"}, "TOKEN_ALREADY_TRADES"),
        ({"type": "sniper", "tokenOut": "not a token!", "minLiquidity": "10"}, "INVALID_TOKEN"),
        ({"type": "sniper", "tokenOut": "NEWCOIN", "minLiquidity": "10", "maxPriceImpactBps": 0}, "INVALID_PRICE_IMPACT"),
        ({"type": "sniper", "tokenOut": "NEWCOIN", "minLiquidity": "10", "limitPrice": "1"}, "INVALID_PRICE"),
        ({"type": "market", "minLiquidity": "10"}, "PRICE_ON_MARKET_ORDER"),
    ],
)
def test_bad_terms_are_named(body: dict, code: str):
    assert refused(**body).code == code


def test_expiry_is_iso_or_unix_ms_in_the_next_30_days_and_defaults_to_a_day():
    now = datetime.now(UTC)
    default = valid(type="limit", limitPrice="150").waiting.expires_at
    assert timedelta(hours=23, minutes=59) < default - now <= timedelta(hours=24, seconds=5)
    in_an_hour = now + timedelta(hours=1)
    assert valid(type="limit", limitPrice="150", expiresAt=in_an_hour.isoformat()).waiting.expires_at == in_an_hour
    millis = int(in_an_hour.timestamp() * 1000)
    stamped = valid(type="limit", limitPrice="150", expiresAt=millis).waiting.expires_at
    assert abs((stamped - in_an_hour).total_seconds()) < 0.002
    naive = in_an_hour.replace(tzinfo=None).isoformat()  # no zone: UTC
    assert valid(type="limit", limitPrice="150", expiresAt=naive).waiting.expires_at == in_an_hour
    for bad in ("yesterday", (now - timedelta(seconds=1)).isoformat(), (now + timedelta(days=31)).isoformat(), "NaN"):
        assert refused(type="limit", limitPrice="150", expiresAt=bad).code == "INVALID_EXPIRY"


def test_the_same_order_hashes_the_same_whatever_its_default_expiry():
    a = valid(type="limit", limitPrice="150")
    assert a.request_hash() == valid(type="limit", limitPrice="150").request_hash()  # a later default expiry
    assert a.request_hash() != valid(type="limit", limitPrice="151").request_hash()
    assert a.request_hash() != valid(type="take_profit", triggerPrice="150").request_hash()
    assert Decimal(a.waiting.trigger["price"]) == 150


def test_a_sniper_waits_for_a_token_by_symbol_or_mint_with_its_bounds():
    order = valid(type="sniper", tokenOut="newcoin", minLiquidity="100")
    assert (order.token_out.symbol, order.token_out.mint) == ("NEWCOIN", "")
    assert order.waiting.trigger == {"kind": "sniper", "tokenRef": "newcoin", "minLiquidity": "100",
                                     "maxPriceImpactBps": 1000}  # fmt: skip
    assert order.slippage_bps == 500
    mint = "7" * 44
    by_mint = valid(type="sniper", tokenOut=mint, minLiquidity="5", maxPriceImpactBps=300)
    new = by_mint.new_order()
    assert (new.token_out, new.mint_out, new.trigger["maxPriceImpactBps"]) == (mint, mint, 300)
    assert by_mint.request_hash() != order.request_hash()


def test_simulation_controls_are_on_for_a_local_engine_and_off_on_any_other_address_unless_asked():
    from engine.settings import ApiSettings

    assert ApiSettings().sim_controls_on
    assert not ApiSettings(host="0.0.0.0").sim_controls_on
    assert ApiSettings(host="0.0.0.0", sim_controls="on").sim_controls_on
    assert not ApiSettings(sim_controls="off").sim_controls_on
