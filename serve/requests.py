"""The order request as it travels: JSON types, aliases and lengths, checked by pydantic.

Two steps judge an order. This model is the first: it accepts any order that
is well-formed JSON of the right types (and its OpenAPI schema comes from
these types), answering 422 ``VALIDATION_ERROR`` otherwise. Whether the
order makes sense on this market (known, different tokens, an amount the
token can express, slippage in range) needs the token registry and the API's
options, so :func:`serve.validation.validate_order` judges that next, naming
every field at fault at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AliasChoices, ConfigDict, Field, PlainValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from serve.camel import CamelModel

MAX_TOKEN_REF_CHARS = 64

NumberOrText = int | float | str


def _number_or_text(expected: str) -> Callable[[Any], NumberOrText]:
    """A validator that lets a JSON number or string through unchanged; ``expected`` says what else is wrong."""

    def check(value: Any) -> NumberOrText:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise PydanticCustomError("VALIDATION_ERROR", expected)
        return value

    return check


TokenRef = Annotated[str, StringConstraints(max_length=MAX_TOKEN_REF_CHARS)]
"""A token by symbol (any case) or mint address, as the client wrote it."""

OrderTypeName = Annotated[str, StringConstraints(max_length=32)]

DecimalAmount = Annotated[
    NumberOrText,
    PlainValidator(_number_or_text('must be a decimal string such as "1.5" or a number')),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}]}),
]
"""Token units, as a decimal string (exact) or a JSON number; its value is judged against the token later."""

SlippageBps = Annotated[
    NumberOrText,
    PlainValidator(_number_or_text("must be an integer number of basis points")),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 5000}),
]

TrailingBps = Annotated[
    NumberOrText,
    PlainValidator(_number_or_text("must be an integer number of basis points")),
    WithJsonSchema({"type": "integer", "minimum": 50, "maximum": 5000}),
]

Expiry = Annotated[
    NumberOrText,
    PlainValidator(_number_or_text('must be an ISO 8601 time such as "2030-01-01T00:00:00Z" or unix milliseconds')),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]}),
]

PriorityFee = Annotated[
    NumberOrText,
    PlainValidator(_number_or_text('must be "auto", "low", "medium", "high", "veryHigh" or micro-lamports per CU')),
    WithJsonSchema({"anyOf": [{"type": "string", "enum": ["auto", "low", "medium", "high", "veryHigh"]},
                              {"type": "integer", "minimum": 0}]}),
]

Lamports = Annotated[
    NumberOrText,
    PlainValidator(_number_or_text("must be a whole number of lamports")),
    WithJsonSchema({"type": "integer", "minimum": 0}),
]

SlippageFraction = Annotated[
    NumberOrText,
    PlainValidator(_number_or_text("must be a fraction such as 0.01 (1 %)")),
    WithJsonSchema({"type": "number"}),
]


EXECUTE_EXAMPLES: dict[str, dict[str, Any]] = {
    "market": {
        "summary": "Market order: sell 1.5 SOL for USDC, 1 % slippage",
        "value": {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    },
    "by_mint": {
        "summary": "Tokens by mint address, amount as a JSON number, default slippage (50 bps)",
        "value": {
            "type": "market",
            "tokenIn": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "tokenOut": "So11111111111111111111111111111111111111112",
            "amountIn": 250,
        },
    },
    "seed_aliases": {
        "summary": "The original spec's field names: amount, and slippage as a fraction (0.01 = 1 %)",
        "value": {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 2, "slippage": 0.01},
    },
    "limit": {
        "summary": "Limit order: sell 2 SOL once the best route pays at least 180 USDC per SOL",
        "value": {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2", "limitPrice": "180",
                  "expiresAt": "2030-01-01T00:00:00Z"},
    },
    "stop_loss": {
        "summary": "Stop-loss: sell 2 SOL as a market order once it pays 140 USDC per SOL or less",
        "value": {"type": "stop_loss", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2", "triggerPrice": "140",
                  "slippageBps": 300},
    },
    "take_profit": {
        "summary": "Take-profit: sell 2 SOL as a market order once it pays 200 USDC per SOL or more",
        "value": {"type": "take_profit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2", "triggerPrice": "200"},
    },
    "trailing_stop": {
        "summary": "Trailing stop: sell 2 SOL once the price falls 5 % below its highest since the order was armed",
        "value": {"type": "trailing_stop", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "2", "trailingBps": 500},
    },
    "sniper": {
        "summary": "Sniper: buy MEOW with 5 SOL as soon as its first pool opens with at least 100 SOL of liquidity",
        "value": {"type": "sniper", "tokenIn": "SOL", "tokenOut": "MEOW", "amountIn": "5", "minLiquidity": "100",
                  "maxPriceImpactBps": 800},
    },
    "priority": {
        "summary": "Market order with a high priority fee, capped at 0.001 SOL, sent as a protected Jito bundle",
        "value": {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1", "slippageBps": 100,
                  "priorityFee": "high", "maxPriorityFeeLamports": 1000000, "jitoTipLamports": 10000},
    },
    "two_hop": {
        "summary": "BONK to USDC (routed through SOL when that pays more)",
        "value": {"type": "market", "tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
    },
}


class ExecuteOrderRequest(CamelModel):
    """A new order. Unknown fields are ignored."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXECUTE_EXAMPLES["market"]["value"]]})

    type: OrderTypeName = Field(
        "market",
        validation_alias=AliasChoices("type", "orderType"),
        description="Order type: `market` (executes now), or one that waits: `limit` (with `limitPrice`), "
        "`stop_loss` and `take_profit` (with `triggerPrice`), `trailing_stop` (with `trailingBps`), `sniper` "
        "(a `tokenOut` that has no pool yet, with `minLiquidity`). Alias: `orderType`.",
        examples=["market"],
    )
    token_in: TokenRef = Field(
        description="Token sold: a symbol (SOL, USDC, USDT, BONK, JUP; any case) or a mint address.",
        examples=["SOL"],
    )
    token_out: TokenRef = Field(
        description="Token bought: a symbol or a mint address; must differ from tokenIn (a sniper: a token "
        "with no pool yet).",
        examples=["USDC"],
    )
    amount_in: DecimalAmount | None = Field(
        None,
        description="Amount of tokenIn to sell, in token units (not base units): a decimal string "
        "(preferred, exact) or a JSON number. At most the token's decimals of precision.",
        examples=["1.5"],
    )
    amount: DecimalAmount | None = Field(
        None, description="Alias of amountIn, for clients written for the original spec.", examples=[1.5]
    )
    slippage_bps: SlippageBps | None = Field(
        None, description="Slippage tolerance in basis points, 1..5000 (default 50 = 0.5 %).", examples=[100]
    )
    slippage: SlippageFraction | None = Field(
        None,
        description="Alias of slippageBps as a fraction, for clients written for the original spec: "
        "0.01 is 1 % (100 bps); 0.0001..0.5.",
        examples=[0.01],
    )
    limit_price: DecimalAmount | None = Field(
        None,
        description="limit orders: the least tokenOut per one tokenIn the whole order may execute at (its "
        "exact quoted output divided by its input). It fires as soon as the best route pays that, and executes "
        "with exactly `amountIn × limitPrice` as its minimum out.",
        examples=["180"],
    )
    trigger_price: DecimalAmount | None = Field(
        None,
        description="stop_loss: fires when the executable price (tokenOut per tokenIn) falls to or below it; "
        "take_profit: when it rises to or above it. Then executes as a market order with `slippageBps` "
        "(default 500).",
        examples=["140"],
    )
    trailing_bps: TrailingBps | None = Field(
        None,
        description="trailing_stop: 50..5000. The trigger follows the highest executable price seen since the "
        "order was armed, at `high × (1 − trailingBps/10000)`, and only ever moves up.",
        examples=[500],
    )
    min_liquidity: DecimalAmount | None = Field(
        None,
        description="sniper: the least liquidity (the new pool's whole value, in tokenIn units) its pool must "
        "open with for the order to fire.",
        examples=["100"],
    )
    max_price_impact_bps: SlippageBps | None = Field(
        None,
        description="sniper: the most the order may move the launch pool's price, 1..5000 bps (default 1000); "
        "a route that would move it more fails PRICE_IMPACT_TOO_HIGH.",
        examples=[800],
    )
    expires_at: Expiry | None = Field(
        None,
        description="Orders that wait: when they stop waiting, as ISO 8601 (`2030-01-01T00:00:00Z`) or unix "
        "milliseconds. Default 24 h from now, at most 30 days.",
        examples=["2030-01-01T00:00:00Z"],
    )
    priority_fee: PriorityFee | None = Field(
        None,
        description="The transaction's priority fee: `auto` (default: the median of recently landed fees), "
        "`low` (p25), `medium` (p50), `high` (p75), `veryHigh` (p95), or a compute-unit price in micro-lamports "
        "per CU. Ignored when the chain is off (zero-latency mode).",
        examples=["high"],
    )
    max_priority_fee_lamports: Lamports | None = Field(
        None,
        description="The most the priority fee may cost, in lamports (default 5,000,000 = 0.005 SOL).",
        examples=[1_000_000],
    )
    jito_tip_lamports: Lamports | None = Field(
        None,
        description="More than 0 (at least 1,000): sent as a protected Jito bundle with this tip, which lands at "
        "the top of a block or not at all and cannot be sandwiched; the tip is paid only when it lands.",
        examples=[10_000],
    )
