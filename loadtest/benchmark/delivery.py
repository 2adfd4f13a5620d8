"""Phase 3, WebSocket delivery latency: status committed in PostgreSQL -> client
received, a few orders at a time (the engine idle-ish)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from loadtest.benchmark.client import OrderClient, order_body
from loadtest.benchmark.phase import Phase
from loadtest.benchmark.processes import started_meter
from loadtest.benchmark.stats import stats_ms


async def phase_ws(ph: Phase, duration_s: float, interval_s: float) -> dict[str, Any]:
    await ph.settle()
    client = OrderClient(ph.engine.url)
    rng = random.Random(6)
    tasks = []
    cpu = started_meter(ph.engine)
    began = time.time()
    i = 0
    try:
        while time.time() < began + duration_s:
            tasks.append(asyncio.ensure_future(client.order(order_body(rng, i), timeout_s=60)))
            i += 1
            await asyncio.sleep(interval_s)
        runs = await asyncio.gather(*tasks)
    finally:
        await client.aclose()
    cpu_report = cpu.stop()
    deliveries = [(e.status, e.received - e.committed) for r in runs for e in r.live()]
    by_status: dict[str, list[float]] = {}
    for status, d in deliveries:
        by_status.setdefault(status, []).append(d)
    return {
        "orders": len(runs),
        "intervalS": interval_s,
        "errors": sum(1 for r in runs if r.error),
        "deliveryMs": stats_ms([d for _, d in deliveries]),
        "byStatusMs": {k: stats_ms(v) for k, v in by_status.items()},
        "connectMs": stats_ms([r.opened - r.accepted for r in runs if r.opened]),
        "cpu": cpu_report,
    }
