"""Simulation controls: move the market on purpose (to trip stops and limits in tests, demos and load runs).

``POST /api/sim/shock``, ``POST /api/sim/launch`` and ``POST /api/sim/congestion``. ``api.sim_controls``: ``auto`` (on while
the API listens on loopback only, off on any other address), ``on`` or ``off``; off, they answer 404.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, model_validator

from serve.camel import CamelModel
from serve.auth import FORBIDDEN_EXAMPLE, UNAUTHORIZED_EXAMPLE, require_admin
from serve.dependencies import ServicesDep, limit_orders
from engine.errors import ChainOff, LaunchRefused, MarketOff
from serve.errors import ApiError, error_example
from sim.tokens import Token, UnknownToken

router = APIRouter(
    tags=["simulation"],
    dependencies=[Depends(require_admin), Depends(limit_orders)],
    responses={401: UNAUTHORIZED_EXAMPLE, 403: FORBIDDEN_EXAMPLE},
)


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


class LaunchRequest(CamelModel):
    """A new token and its first pool, opened now."""

    symbol: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$", examples=["MEOW"])
    mint: str | None = Field(None, min_length=32, max_length=44, pattern=r"^[1-9A-HJ-NP-Za-km-z]+$",
                             description="Generated from the seed when absent.")
    decimals: int = Field(6, ge=0, le=12)
    pair_with: str = Field(max_length=64, description="The token it trades against (symbol or mint).",
                           examples=["SOL"])
    dex: Literal["raydium", "meteora"] = "raydium"
    liquidity: Annotated[Decimal, Field(gt=0, le=Decimal("1e12"))] = Field(
        description="The pool's whole value, in pairWith units.", examples=["200"])
    price: Annotated[Decimal, Field(gt=0, le=Decimal("1e12"))] = Field(
        description="pairWith per one new token.", examples=["0.0001"])


class CongestionRequest(CamelModel):
    preset: Literal["calm", "busy", "congested"] = Field(
        description="calm: most orders land in 1-2 slots; busy: blocks often full; congested: like April 2024, "
        "half the sends lost and hot pools bid up.", examples=["congested"])


class LaunchResponse(CamelModel):
    token: dict[str, Any]
    pool_id: str
    dex: str


_EVERY_CONTROL: dict[int | str, dict[str, Any]] = {
    400: error_example(400, "MALFORMED_JSON", "the request body is not valid JSON"),
    503: error_example(503, "ENGINE_UNAVAILABLE", "the engine did not answer"),
}


def _controls_on(services: Any) -> None:
    if not services.options.sim_controls_on:
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
        **_EVERY_CONTROL,
        404: error_example(404, "UNKNOWN_POOL", "no pool raydium:DOGE-USDC"),
        409: error_example(409, "MARKET_OFF", "the market simulator is off: move a pool (poolId) instead",
                           summary="The market is off, or the pool cannot move that far (POOL_CANNOT_MOVE)"),
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


@router.post(
    "/api/sim/launch",
    response_model=LaunchResponse,
    status_code=201,
    summary="Launch a token",
    description="Creates the token and its first pool now (Raydium: constant product; Meteora: a DLMM book) at "
    "`price` with `liquidity`; the market trades it from then on, and the snipers waiting for it fire. Answers "
    "with the token and the pool id.",
    responses={
        **_EVERY_CONTROL,
        404: error_example(404, "NOT_FOUND", "simulation controls are off on this engine (api.sim_controls)"),
        409: error_example(409, "TOKEN_EXISTS", "token MEOW or its mint exists already",
                           summary="The token exists, or the API runs without an engine (NO_ENGINE)"),
    },
)
async def launch(body: LaunchRequest, services: ServicesDep) -> LaunchResponse:
    _controls_on(services)
    request = {**body.model_dump(by_alias=True, mode="json"), "liquidity": str(body.liquidity), "price": str(body.price)}
    try:
        opened = await services.engine.launch(request)
    except LaunchRefused as exc:
        status = 409 if exc.code in ("TOKEN_EXISTS", "NO_ENGINE") else 422
        raise ApiError(status, exc.code, exc.message) from None
    token = opened["token"]
    services.tokens.add(Token(token["symbol"], token["mint"], token["decimals"]))
    return LaunchResponse(token=token, pool_id=opened["poolId"], dex=opened["dex"])


@router.post(
    "/api/sim/congestion",
    summary="Switch the chain's congestion",
    description="Switches the other traffic bidding for block space to a preset now (`calm`, `busy`, `congested`; "
    "configs/chain.yaml). Answers with the chain as `GET /api/chain` shows it.",
    responses={
        **_EVERY_CONTROL,
        404: error_example(404, "NOT_FOUND", "simulation controls are off on this engine (api.sim_controls)"),
        409: error_example(409, "CHAIN_OFF", "the engine runs without the chain (zero-latency mode)"),
    },
)
async def congestion(body: CongestionRequest, services: ServicesDep) -> dict[str, Any]:
    _controls_on(services)
    try:
        info = await services.engine.set_congestion(body.preset)
    except ChainOff as exc:
        raise ApiError(409, "CHAIN_OFF", str(exc)) from None
    return {"enabled": True, **info}
