"""Phase 4, concurrent WebSocket watchers held on one node while their events still arrive
within the budget (100 ms p99), stepped up until a step is over it.

A step is judged by every event each watcher received of its own order (committed
after its socket opened): the probes' sockets and the held (holder) sockets alike.
The probes' events alone, measured while the holders are held, are reported beside
it, as is the holders' fan-out burst; neither is the judge."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import websockets

from loadtest.benchmark.client import FINAL, OrderClient, OrderRun, order_body, order_ws_url, status_events, ts
from loadtest.benchmark.phase import PACED_RATE, Phase, log
from loadtest.benchmark.processes import started_meter
from loadtest.benchmark.stats import rounded, stats_ms

BUDGET_MS = 100.0
PROBES_N = int(PACED_RATE * 8)  # probe orders, 2 watchers each
PER_PROBE = 2
HOLDERS_N = 4  # holder orders, carrying every other watcher
CONNECTS_AT_ONCE = 64
# a step fails when more than this share of its sockets did not end well
ERROR_SHARE = 0.01

# (order id, status, committed, received, sockets open at arrival)
Delivery = tuple[str, str, float, float, int]


@dataclass
class Sockets:
    """The watchers of one step, counted as they connect and close."""

    open: int = 0
    peak: int = 0
    settled: int = 0  # connect attempts ended, in success or not
    connect: list[float] = field(default_factory=list)  # handshake times, s


@dataclass
class StepOrders:
    """The orders of a step, by kind, queued in this order: filler, probe, holder."""

    by_kind: dict[str, list[OrderRun]]
    holder_watchers: int

    def kind_of(self) -> dict[str | None, str]:
        return {r.order_id: k for k, runs in self.by_kind.items() for r in runs}

    def watcher_urls(self, ws_base: str) -> list[str]:
        urls: list[str] = []
        for r in self.by_kind["probe"]:
            urls += [order_ws_url(ws_base, r.order_id)] * PER_PROBE
        for j in range(self.holder_watchers):
            r = self.by_kind["holder"][j % HOLDERS_N]
            urls.append(order_ws_url(ws_base, r.order_id))
        return urls

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_kind.values())


async def one_watcher(url: str, gate: asyncio.Semaphore, sink: list[Delivery], sockets: Sockets,
                      timeout_s: float) -> str | None:  # fmt: skip
    started = time.time()
    try:
        async with asyncio.timeout(timeout_s):
            async with gate:
                try:
                    ws = await websockets.connect(url, ping_interval=None, open_timeout=60, close_timeout=2)
                finally:
                    sockets.settled += 1
            t_open = time.time()
            sockets.connect.append(t_open - started)
            sockets.open += 1
            sockets.peak = max(sockets.peak, sockets.open)
            try:
                async for received, data in status_events(ws):
                    committed = ts(data["timestamp"])
                    if committed >= t_open:
                        sink.append((data["orderId"], data["status"], committed, received, sockets.open))
                    if data["status"] in FINAL:
                        return None
                return "closed before the final event"
            finally:
                sockets.open -= 1
                await ws.close()
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


async def queue_step_orders(client: OrderClient, watchers: int, connect_rate: float,
                            rng: random.Random) -> StepOrders:  # fmt: skip
    holder_watchers = max(0, watchers - PROBES_N * PER_PROBE)
    connect_s = watchers / max(connect_rate, 10.0) + 3.0
    fillers_n = min(400, math.ceil(PACED_RATE * connect_s))
    by_kind: dict[str, list[OrderRun]] = {"filler": [], "probe": [], "holder": []}
    i = 0
    for kind, n in (("filler", fillers_n), ("probe", PROBES_N), ("holder", HOLDERS_N)):
        for _ in range(n):
            run = await client.submit(order_body(rng, i))
            i += 1
            if run.order_id is None:
                raise RuntimeError(f"order refused: {run.error}")
            by_kind[kind].append(run)
    return StepOrders(by_kind, holder_watchers)


async def watcher_step(client: OrderClient, watchers: int, connect_rate: float, rng: random.Random) -> dict[str, Any]:
    """``watchers`` sockets held at once; latency of the events they receive.

    Queue order (the engine starts 3 orders a second): fillers (unwatched; they
    give the watchers time to connect), probes (2 watchers each: the events
    measured while everything is held), then 4 holder orders carrying the rest
    of the watchers (held for the whole step; their events at the end are a
    fan-out burst, reported apart).
    """
    orders = await queue_step_orders(client, watchers, connect_rate, rng)
    kind_of = orders.kind_of()
    urls = orders.watcher_urls(client.ws_base)
    sink: list[Delivery] = []
    sockets = Sockets()
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    horizon = orders.total / PACED_RATE + 60
    began = time.time()
    tasks = [asyncio.ensure_future(one_watcher(u, gate, sink, sockets, horizon)) for u in urls]
    while sockets.settled < len(urls) and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    all_open_s = time.time() - began
    results = await asyncio.gather(*tasks)
    errors = dict(Counter(e for e in results if e is not None))
    probe = [(c, rcv, n_open) for oid, _, c, rcv, n_open in sink if kind_of.get(oid) == "probe"]
    # measured while every holder socket was still open
    held = [(c, rcv) for c, rcv, n_open in probe if n_open >= orders.holder_watchers]
    burst = [(c, rcv) for oid, _, c, rcv, _ in sink if kind_of.get(oid) == "holder"]
    return {
        "watchers": watchers,
        "peakOpen": sockets.peak,
        "connectAllS": round(all_open_s, 1),
        "connectRatePerS": round(len(sockets.connect) / all_open_s, 1) if all_open_s else None,
        "connectMs": stats_ms(sockets.connect),
        "orders": {k: len(v) for k, v in orders.by_kind.items()},
        "errors": errors,
        "ownDeliveryMs": stats_ms([rcv - c for _, _, c, rcv, _ in sink]),
        "probeDeliveryMs": stats_ms([rcv - c for c, rcv, _ in probe]),
        "heldDeliveryMs": stats_ms([rcv - c for c, rcv in held]),
        "burstDeliveryMs": stats_ms([rcv - c for c, rcv in burst]),
        "burstFanout": orders.holder_watchers // HOLDERS_N if HOLDERS_N else 0,
    }


def own_p99(step: dict[str, Any]) -> float | None:
    """p99 of every watcher's own events: the judge of a step. A report written before it was
    kept (no ``ownDeliveryMs``) gets the larger of the probes' and the burst's p99, a bound
    from above (at most 1% of each part lies over its own p99)."""
    own = step.get("ownDeliveryMs")
    if own is not None:
        return own["p99"]
    parts = [p for p in (step["probeDeliveryMs"]["p99"], step["burstDeliveryMs"]["p99"]) if p is not None]
    return max(parts) if parts else None


def within_budget(step: dict[str, Any], budget_ms: float) -> bool:
    return (own_p99(step) or 1e9) <= budget_ms and sum(step["errors"].values()) <= ERROR_SHARE * step["watchers"]


def held_within(steps: list[dict[str, Any]], budget_ms: float) -> tuple[int, dict[str, Any] | None]:
    """The most watchers of the steps within budget up to the first that is not (0 if none), and that step."""
    most = 0
    for step in steps:
        if not within_budget(step, budget_ms):
            return most, step
        most = step["watchers"]
    return most, None


async def phase_watchers(ph: Phase, steps: list[int], budget_ms: float = BUDGET_MS) -> dict[str, Any]:
    client = OrderClient(ph.engine.url)
    rng = random.Random(7)
    results = []
    connect_rate = 80.0
    cpu = started_meter(ph.engine)
    try:
        for w in steps:
            log(f"watchers: {w} ...")
            cpu_step = started_meter(ph.engine)
            async with ph.sampling_memory(f"watchers {w}", 5):
                step = await watcher_step(client, w, connect_rate, rng)
            step["cpu"] = cpu_step.stop()
            results.append(step)
            failed = sum(step["errors"].values())
            log(f"watchers: {w}: every watcher's own events p99 {rounded(own_p99(step))} ms (probes while held "
                f"{rounded(step['heldDeliveryMs']['p99'])}, holders' burst {rounded(step['burstDeliveryMs']['p99'])} ms), "
                f"{failed} errors, connect {step['connectRatePerS']}/s")  # fmt: skip
            if step["connectRatePerS"]:
                connect_rate = step["connectRatePerS"]
            if not within_budget(step, budget_ms):
                break
            await asyncio.sleep(2)
    finally:
        await client.aclose()
    return {"budgetMs": budget_ms, "steps": results, "maxWithinBudget": held_within(results, budget_ms)[0],
            "cpu": cpu.stop(), "stoppedEarly": len(results) < len(steps)}  # fmt: skip
