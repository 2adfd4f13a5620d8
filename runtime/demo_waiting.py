"""The demo's orders that wait: a limit and a stop-loss beside the market orders, tripped by moving the market.

With the market simulator on, SOL's reference price is moved (the arbitrage
flow carries the pools after it, and they stay); with it off, the SOL/USDC
pools themselves are moved by a shock trade. What has not fired within the
time given is cancelled, so every order the demo placed ends.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

LIFT_BPS, DROP_BPS = 300, -700


async def price_of(http: httpx.AsyncClient, amount: str) -> Decimal:
    quote = (await http.get("/api/quote", params={"tokenIn": "SOL", "tokenOut": "USDC", "amountIn": amount})).json()
    return Decimal(quote["route"]["amountOut"]) / Decimal(amount)


def waiting_orders(price: Decimal, amount: str) -> list[dict[str, Any]]:
    """A limit 0.5 % above what 1 SOL pays now, and a stop-loss 1 % below it."""
    q = Decimal("0.0001")
    return [
        {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": amount,
         "limitPrice": str((price * Decimal("1.005")).quantize(q))},
        {"type": "stop_loss", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": amount,
         "triggerPrice": str((price * Decimal("0.99")).quantize(q)), "slippageBps": 300},
    ]  # fmt: skip


async def move_market(http: httpx.AsyncClient, move_bps: int) -> str:
    """Move SOL by ``move_bps``: its reference price when the market runs, else its USDC pools."""
    reply = await http.post("/api/sim/shock", json={"token": "SOL", "moveBps": move_bps})
    if reply.status_code == 200:
        return f"SOL reference price {move_bps:+d} bps (the pools follow)"
    pools = (await http.get("/api/pools")).json()["pools"]
    moved = []
    for pool in pools:
        if {pool["base"], pool["quote"]} == {"SOL", "USDC"}:
            shocked = await http.post("/api/sim/shock", json={"poolId": pool["poolId"], "moveBps": move_bps})
            if shocked.status_code == 200:
                moved.append(pool["poolId"])
    return f"{', '.join(moved) or 'no pool'} {move_bps:+d} bps"


async def cancel_if_waiting(http: httpx.AsyncClient, order_id: str) -> None:
    await http.delete(f"/api/orders/{order_id}")  # 409 once it has started routing: then it ends on its own

