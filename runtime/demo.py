"""The seed's demo client: submit orders at once, follow each on its WebSocket.

Beside the market orders it places a limit and a stop-loss, then moves the
market so that each fires (``runtime.demo_waiting``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import httpx
import websockets

from runtime.demo_waiting import DROP_BPS, LIFT_BPS, cancel_if_waiting, move_market, price_of, waiting_orders

FINAL = ("confirmed", "failed", "cancelled", "expired")

DEMO_ORDERS: list[dict[str, Any]] = [
    {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    {"type": "market", "tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "250", "slippageBps": 50},
    {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "20", "slippageBps": 100, "priorityFee": "high"},
    {"type": "market", "tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
    {"type": "market", "tokenIn": "JUP", "tokenOut": "USDC", "amountIn": "300", "slippageBps": 100,
     "jitoTipLamports": 10_000},
]


def _landing(details: dict[str, Any]) -> str:
    """Where a transaction landed, what it paid and how often it was sent (with the chain on)."""
    if "slot" not in details:
        return ""
    fees = details.get("fees") or {}
    text = f" slot {details['slot']} fees {fees.get('totalSol')} SOL re-sends {details.get('resends', 0)}"
    return text + (" SANDWICHED" if details.get("sandwiched") else "")


def _line(tag: str, event: dict[str, Any]) -> str:
    status, details = event["status"], event.get("details") or {}
    text = f"[{tag}] #{event['seq']} {status:<9} attempt {event.get('attempt', 0)}"
    if status == "routing":
        quotes = ", ".join(
            f"{q.get('dex', q.get('poolId'))}={q['amountOut']}" if "amountOut" in q
            else f"{q.get('poolId')}: {q.get('error')}"
            for q in details.get("quotes", [])
        )
        chosen = details.get("chosen", {})
        text += f" quotes[{quotes}] -> {chosen.get('dex')} ({details.get('reason')})"
    elif status == "building":
        text += f" expected {details.get('expectedOut')} min {details.get('minOut')}"
        if tx := details.get("transaction"):
            text += f" fee {tx['priorityFee']} = {tx['computeUnitPrice']} µlamports/CU" + (
                f", tip {tx['jitoTipLamports']}" if tx.get("protected") else "")
    elif status == "submitted":
        text += f" tx {str(details.get('txSignature'))[:16]}..."
        if "lastValidBlockHeight" in details:
            text += f" valid to height {details['lastValidBlockHeight']}"
    elif status == "open":
        text += f" waiting for {details.get('waitingFor')}"
    elif status == "triggered":
        text += f" at {details.get('priceSeen')} on {details.get('poolId')}"
    elif status == "confirmed":
        text += (
            f" out {details.get('amountOut')} @ {details.get('executedPrice')}"
            f" on {details.get('dex')} impact {details.get('priceImpactBps')} bps"
        ) + _landing(details)
    elif status in ("failed", "pending") and details.get("error"):
        err = details["error"]
        text += f" {err.get('code')}: {err.get('message')}"
        if details.get("retry"):
            text += f" (retry in {details.get('retryInS')}s)"
        text += _landing(details)
    return text


def key_headers() -> dict[str, str]:
    """The API key to send (``DEXENGINE_API_KEY``), when the engine requires one."""
    key = os.environ.get("DEXENGINE_API_KEY", "").strip()
    return {"X-API-Key": key} if key else {}


async def _follow(base: str, order: dict[str, Any], tag: str,
                  opened: asyncio.Queue[str] | None = None) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=key_headers()) as http:
        reply = await http.post("/api/orders/execute", json=order)
    if reply.status_code >= 400:
        print(f"[{tag}] rejected {reply.status_code}: {reply.text}")
        return {"tag": tag, "status": "rejected", "seconds": 0.0, "order": order}
    order_id = reply.json()["orderId"]
    kind = order.get("type", "market")
    print(f"[{tag}] accepted {kind} {order['amountIn']} {order['tokenIn']} -> {order['tokenOut']}: {order_id}")
    ws_url = base.replace("http", "ws", 1) + f"/api/orders/{order_id}/ws"
    last: dict[str, Any] = {}
    async with websockets.connect(ws_url, additional_headers=key_headers()) as socket:
        async for raw in socket:
            event = json.loads(raw)
            if "status" not in event:
                continue
            print(_line(tag, event), flush=True)
            last = event
            if event["status"] == "open" and opened is not None:
                opened.put_nowait(order_id)
            if event["status"] in FINAL:
                break
    return {
        "tag": tag,
        "orderId": order_id,
        "status": last.get("status"),
        "seconds": time.perf_counter() - started,
        "details": last.get("details") or {},
        "order": order,
    }


async def _waiting(base: str, first_tag: int, wait_s: float) -> list[dict[str, Any]]:
    """A limit and a stop-loss, armed, then the market moved up (the limit fires) and down (the stop)."""
    async with httpx.AsyncClient(base_url=base, timeout=10, headers=key_headers()) as http:
        price = await price_of(http, "1")
        opened: asyncio.Queue[str] = asyncio.Queue()
        tags = [f"order {first_tag + i}" for i in range(2)]
        follows = [asyncio.ensure_future(_follow(base, o, t, opened)) for o, t in zip(waiting_orders(price, "1"), tags)]
        ids: list[str] = []
        try:
            while len(ids) < len(follows):
                ids.append(await asyncio.wait_for(opened.get(), wait_s))
        except TimeoutError:
            pass  # one was refused or never armed: its follow says why
        for move in (LIFT_BPS, DROP_BPS):
            print(f"[market] moving {await move_market(http, move)}", flush=True)
            await asyncio.sleep(wait_s / 4)
        await asyncio.wait(follows, timeout=wait_s)
        for order_id in ids:  # what did not fire in time is cancelled: every order ends
            await cancel_if_waiting(http, order_id)
        return [await f for f in follows]


async def run_demo_client(base: str, count: int = 5, *, waiting: bool = True, wait_s: float = 20.0) -> int:
    orders = [DEMO_ORDERS[i % len(DEMO_ORDERS)] for i in range(count)]
    print(f"submitting {count} market orders at once to {base}" + (", then a limit and a stop-loss" if waiting else "") + "\n")
    market = asyncio.gather(*(_follow(base, o, f"order {i + 1}") for i, o in enumerate(orders)))
    waits = _waiting(base, count + 1, wait_s) if waiting else asyncio.sleep(0, result=[])
    results, waited = await asyncio.gather(market, waits)
    results = [*results, *waited]
    print("\nsummary")
    for r in results:
        o, d = r["order"], r.get("details") or {}
        outcome = r["status"]
        if outcome == "confirmed":
            outcome += f": {d.get('amountOut')} {o['tokenOut']} via {d.get('dex')}" + _landing(d)
        elif d.get("error"):
            outcome += f": {d['error'].get('code')}"
        kind = o.get("type", "market")
        print(f"  {r['tag']}: {kind} {o['amountIn']} {o['tokenIn']} -> {o['tokenOut']}  {outcome}  ({r['seconds']:.1f}s)")
    ok = sum(r["status"] == "confirmed" for r in results)
    counts = ", ".join(f"{sum(r['status'] == s for r in results)} {s}" for s in ("failed", "cancelled", "expired"))
    print(f"\n{ok} confirmed, {counts}, of {len(results)}")
    return 0 if all(r["status"] in FINAL for r in results) else 1
