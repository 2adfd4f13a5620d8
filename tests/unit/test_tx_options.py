"""An order's transaction options (priorityFee, maxPriorityFeeLamports, jitoTipLamports) and how the
API shows the chain: validation with clear 422s, the stored options, the landing and its finality."""

from __future__ import annotations

import pytest

from serve.presenters.chain import chain_view, landing_view, transaction_view
from serve.requests import ExecuteOrderRequest
from tests.unit.order_terms import SOL_USDC, refused, valid



@pytest.mark.parametrize(("sent", "stored"), [("auto", "auto"), ("veryhigh", "veryHigh"), ("HIGH", "high"),
                                              (125_000, 125_000), ("125000", 125_000), (0, 0)])  # fmt: skip
def test_a_priority_fee_is_a_level_or_micro_lamports_per_cu(sent: object, stored: object):
    order = valid(priorityFee=sent)
    assert order.tx_options == {"priorityFee": stored} and order.new_order().tx_options == {"priorityFee": stored}


def test_no_options_store_nothing_and_the_options_change_the_request_hash():
    assert valid().tx_options is None and valid().new_order().tx_options is None
    tipped = valid(jitoTipLamports=10_000, maxPriorityFeeLamports=1_000_000)
    assert tipped.tx_options == {"jitoTipLamports": 10_000, "maxPriorityFeeLamports": 1_000_000}
    assert tipped.request_hash() != valid().request_hash() == valid().request_hash()


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"priorityFee": "urgent"}, "INVALID_PRIORITY_FEE", "priorityFee"),
    ({"priorityFee": -1}, "INVALID_PRIORITY_FEE", "priorityFee"),
    ({"priorityFee": 1.5}, "INVALID_PRIORITY_FEE", "priorityFee"),
    ({"priorityFee": 10**13}, "INVALID_PRIORITY_FEE", "priorityFee"),
    ({"maxPriorityFeeLamports": "lots"}, "INVALID_PRIORITY_FEE", "maxPriorityFeeLamports"),
    ({"jitoTipLamports": 999}, "INVALID_TIP", "jitoTipLamports"),
    ({"jitoTipLamports": -5}, "INVALID_TIP", "jitoTipLamports"),
    ({"jitoTipLamports": 11 * 10**9}, "INVALID_TIP", "jitoTipLamports"),
])  # fmt: skip
def test_bad_options_are_422s_that_name_the_field(body: dict, code: str, field: str):
    error = refused(**body)
    assert error.code == code and error.details[0]["field"] == field


def test_a_boolean_fee_is_a_type_error_and_problems_are_named_together():
    with pytest.raises(Exception) as caught:  # pydantic: 422 VALIDATION_ERROR through the API
        ExecuteOrderRequest.model_validate({**SOL_USDC, "priorityFee": True})
    assert "priorityFee" in str(caught.value) or "priority_fee" in str(caught.value)
    error = refused(priorityFee="urgent", jitoTipLamports=5)
    assert [d["field"] for d in error.details] == ["priorityFee", "jitoTipLamports"]


def test_the_order_view_shows_the_terms_and_the_landing_then_finality():
    route = {"tx": {"cu_limit": 140_000, "cu_price": 50_000, "blockhash": "H", "last_valid_block_height": 300,
                    "jito_tip_lamports": 0},
             "landing": {"slot": 10, "landedAt": 1_000.0, "finalizesAt": 1_013.0, "resends": 1}}  # fmt: skip
    view = transaction_view({"priorityFee": 50_000}, route)
    assert view == {"priorityFee": 50_000, "computeUnitLimit": 140_000, "computeUnitPrice": 50_000,
                    "recentBlockhash": "H", "lastValidBlockHeight": 300, "protected": False}  # fmt: skip
    assert transaction_view(None, {}) is None and landing_view({}) is None
    early = landing_view(route, now=1_005.0)
    assert early["commitment"] == "confirmed" and early["finalizesAt"].startswith("1970-01-01T00:16:53")
    late = landing_view(route, now=1_013.0)
    assert late["commitment"] == "finalized" and late["finalizedAt"] == early["finalizesAt"]
    assert chain_view(None)["enabled"] is False and chain_view({"slot": 3}) == {"enabled": True, "slot": 3}
