"""The seed's demo client: submit orders at once, follow each on its WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import websockets

DEMO_ORDERS: list[dict[str, Any]] = [
    {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "1.5", "slippageBps": 100},
    {"type": "market", "tokenIn": "USDC", "tokenOut": "SOL", "amountIn": "250", "slippageBps": 50},
    {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amountIn": "20", "slippageBps": 100},
    {"type": "market", "tokenIn": "BONK", "tokenOut": "USDC", "amountIn": "5000000", "slippageBps": 150},
    {"type": "market", "tokenIn": "JUP", "tokenOut": "USDC", "amountIn": "300", "slippageBps": 100},
]


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
    elif status == "submitted":
        text += f" tx {str(details.get('txSignature'))[:16]}..."
    elif status == "confirmed":
        text += (
            f" out {details.get('amountOut')} @ {details.get('executedPrice')}"
            f" on {details.get('dex')} impact {details.get('priceImpactBps')} bps"
        )
    elif status in ("failed", "pending") and details.get("error"):
        err = details["error"]
        text += f" {err.get('code')}: {err.get('message')}"
        if details.get("retry"):
            text += f" (retry in {details.get('retryInS')}s)"
    return text


async def _follow(base: str, order: dict[str, Any], tag: str) -> dict[str, Any]:
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        reply = await http.post("/api/orders/execute", json=order)
    if reply.status_code >= 400:
        print(f"[{tag}] rejected {reply.status_code}: {reply.text}")
        return {"tag": tag, "status": "rejected", "seconds": 0.0, "order": order}
    order_id = reply.json()["orderId"]
    print(f"[{tag}] accepted {order['amountIn']} {order['tokenIn']} -> {order['tokenOut']}: {order_id}")
    ws_url = base.replace("http", "ws", 1) + f"/api/orders/{order_id}/ws"
    last: dict[str, Any] = {}
    async with websockets.connect(ws_url) as socket:
        async for raw in socket:
            event = json.loads(raw)
            if "status" not in event:
                continue
            print(_line(tag, event), flush=True)
            last = event
            if event["status"] in ("confirmed", "failed"):
                break
    return {
        "tag": tag,
        "orderId": order_id,
        "status": last.get("status"),
        "seconds": time.perf_counter() - started,
        "details": last.get("details") or {},
        "order": order,
    }


async def run_demo_client(base: str, count: int = 5) -> int:
    orders = [DEMO_ORDERS[i % len(DEMO_ORDERS)] for i in range(count)]
    print(f"submitting {count} orders at once to {base}\n")
    results = await asyncio.gather(*(_follow(base, o, f"order {i + 1}") for i, o in enumerate(orders)))
    print("\nsummary")
    for r in results:
        o, d = r["order"], r["details"]
        outcome = r["status"]
        if outcome == "confirmed":
            outcome += f": {d.get('amountOut')} {o['tokenOut']} via {d.get('dex')}"
        elif d.get("error"):
            outcome += f": {d['error'].get('code')}"
        print(f"  {r['tag']}: {o['amountIn']} {o['tokenIn']} -> {o['tokenOut']}  {outcome}  ({r['seconds']:.1f}s)")
    ok = sum(r["status"] == "confirmed" for r in results)
    print(f"\n{ok} confirmed, {sum(r['status'] == 'failed' for r in results)} failed, of {count}")
    return 0 if all(r["status"] in ("confirmed", "failed") for r in results) else 1
