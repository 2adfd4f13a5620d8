"""Simulation controls: move the market on purpose (to trip stops and limits in tests, demos and load runs).

On by default on a local engine (``api.sim_controls``); off, every route here answers 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field, model_validator

from serve.camel import CamelModel
from serve.dependencies import ServicesDep, limit_orders
from engine.errors import MarketOff
from serve.errors import ApiError, error_example
from sim.tokens import UnknownToken

router = APIRouter(tags=["simulation"], dependencies=[Depends(limit_orders)])


class ShockRequest(CamelModel):
    """Either ``token`` (the market's reference price moves, and stays) or ``poolId`` (one pool, by a real trade)."""

    token: str | None = Field(None, max_length=64, description="A token symbol: its reference price moves for good; "
                              "the arbitrage flow carries every pool of that token after it.", examples=["SOL"])
    pool_id: str | None = Field(None, max_length=128, description="One pool, moved now by a real trade through its "
                                "actor (recorded as a `shock` trade); arbitrage then pulls it back.",
                                examples=["raydium:SOL-USDC"])
    move_bps: int = Field(description="Signed: -300 moves the price 3 % down.", ge=-5000, le=5000, examples=[-300])

    @model_validator(mode="after")
    def _one_target(self) -> ShockRequest:
        if (self.token is None) == (self.pool_id is None):
            raise ValueError("send exactly one of token and poolId")
        if self.move_bps == 0:
            raise ValueError("moveBps must not be 0")
        return self


class ShockResponse(CamelModel):
    target: str
    price_before: float = Field(description="token: USD per token; pool: token_x in token_y, spot.")
    price_after: float
    details: dict[str, Any] = Field(default_factory=dict)


def _controls_on(services: Any) -> None:
    if not services.options.sim_controls:
        raise ApiError(404, "NOT_FOUND", "simulation controls are off on this engine (api.sim_controls)")


@router.post(
    "/api/sim/shock",
    response_model=ShockResponse,
    summary="Move prices on purpose",
    description="`{\"token\": \"SOL\", \"moveBps\": -300}` moves the market's reference price of SOL 3 % down "
    "for good (the arbitrage flow then carries every SOL pool after it: needs the market on); "
    "`{\"poolId\": \"raydium:SOL-USDC\", \"moveBps\": 200}` moves one pool now by a real trade through its "
    "actor. Answers with the prices before and after.",
    responses={
        400: error_example(400, "MALFORMED_JSON", "the request body is not valid JSON"),
        404: error_example(404, "UNKNOWN_POOL", "no pool raydium:DOGE-USDC"),
        409: error_example(409, "MARKET_OFF", "the market simulator is off: move a pool (poolId) instead",
                           summary="The market is off, or the pool cannot move that far (POOL_CANNOT_MOVE)"),
        503: error_example(503, "ENGINE_UNAVAILABLE", "the engine did not answer"),
    },
)
async def shock(body: ShockRequest, services: ServicesDep) -> ShockResponse:
    _controls_on(services)
    if body.token is not None:
        try:
            token = services.tokens.resolve(body.token.strip())
        except UnknownToken:
            raise ApiError(422, "UNKNOWN_TOKEN", f"token: unknown token {body.token!r}") from None
        try:
            before, after = await services.engine.shock_token(token.symbol, body.move_bps)
        except MarketOff as exc:
            raise ApiError(409, "MARKET_OFF", f"{exc}: move a pool (poolId) instead") from None
        return ShockResponse(target=token.symbol, price_before=before, price_after=after)
    pool_ids = {s.pool_id for s in await services.engine.pool_summaries()}
    if body.pool_id not in pool_ids:
        raise ApiError(404, "UNKNOWN_POOL", f"no pool {body.pool_id!r} (pools: {', '.join(sorted(pool_ids))})")
    moved = await services.engine.shock_pool(body.pool_id, body.move_bps)
    if moved.get("trade") is None:
        raise ApiError(409, "POOL_CANNOT_MOVE", f"{body.pool_id}: its liquidity cannot move its price "
                       f"{body.move_bps:+d} bps; nothing was traded", {"price": moved["priceBefore"]})
    return ShockResponse(target=body.pool_id, price_before=moved["priceBefore"], price_after=moved["priceAfter"],
                         details={"trade": moved.get("trade")})  # fmt: skip
