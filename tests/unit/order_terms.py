"""Judging an order body as the API does, for the unit tests of its terms: valid, or refused with a 422."""

from __future__ import annotations

import pytest

from serve.errors import ApiError
from serve.requests import ExecuteOrderRequest
from serve.validation import ValidOrder, validate_order
from sim.tokens import TokenRegistry

TOKENS = TokenRegistry()
SOL_USDC = {"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2"}


def valid(**body: object) -> ValidOrder:
    return validate_order(ExecuteOrderRequest.model_validate({**SOL_USDC, **body}), TOKENS)


def refused(**body: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        valid(**body)
    assert caught.value.status_code == 422
    return caught.value
