"""Orders that wait: how soon a pool's move fires one, and how many price events the book absorbs.

    python -m loadtest.bench_triggers [--probes 30] [--armed 10000] [--shock-bps 100] [--book-seconds 3]

It starts PostgreSQL, Redis and Ray: on a shared machine, run it under the suite's lock:

    flock /tmp/dexengine-suite.lock timeout 900 .venv/bin/python -m loadtest.bench_triggers --armed 10000

1. Trigger latency, in the engine (started as ``bench_engine_core`` starts it: a temporary data dir, every
   simulated latency zero, the rate limit off, the market off, no dashboard, namespace
   ``dexengine-bench-triggers``). Background orders that never fire (limit, take-profit, stop-loss and
   trailing stop, all SOL->USDC, the probed direction, 0.01..10 SOL) are written straight to PostgreSQL
   as ``open`` orders (one COPY), then the trigger book re-reads the store. A probe is a 1 SOL limit
   SOL->USDC a few bps above the best route's price, accepted as the API does; once it is ``open`` and
   armed, ``raydium:SOL-USDC`` is shocked up until the limit is paid. Latency = the ``triggered`` history
   row's ``created_at`` - the shock trade's ``created_at`` (both PostgreSQL ``clock_timestamp()``). The
   probe then runs to its end and the pool is shocked back to its price before the shock. The same run
   measures 10 armed, then 10,000 (``--armed``): the 10,000 p50 must be at most 2x the 10 one.
2. Price events per second of the book's decision alone, in process, no Ray: the market config's
   pools, a ``sim.triggers.TriggerBook`` holding the same background orders, ``on_prices`` after a small
   swap on one pool (alternately down and up; nothing fires).
3. The report: cores, commit, whether the tree is clean, every figure; also ``loadtest/results/triggers.json``.

Exit code 0 when the ratio check passes, 1 when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadtest.bench_engine_core import OrderDesk, core_settings, percentile, start_engine, stop_engine
from loadtest.bench_trigger_book import book_throughput
from loadtest.benchmark.machine import machine

if TYPE_CHECKING:
    from engine.settings import EngineSettings
    from sim.triggers import Trigger

NAMESPACE = "dexengine-bench-triggers"
TOKEN_IN, TOKEN_OUT = "SOL", "USDC"
SHOCKED_POOL = "raydium:SOL-USDC"
PROBE_AMOUNT = 10**9  # 1 SOL
LIMIT_ABOVE_BPS = 5  # the probe's limit: this far above the best route's price, so it is not paid yet
AMOUNT_RANGE = (10**7, 10**10)  # background amounts, log-uniform: 0.01 .. 10 SOL
KINDS = ("limit", "take_profit", "stop_loss", "trailing_stop")
FAR_ABOVE = Fraction(3)  # limits and take-profits ask 3x the best output per unit
FAR_BELOW = Fraction(3, 10)  # stop-losses fire at 0.3x
# A trailing stop's stored high: above every output the probes' shocks reach (so no high moves, nothing
# is saved), and with a 50 % trail it fires only at 0.55x.
HIGH_ABOVE = Fraction(11, 10)
TRAILING_BPS = 5_000
SMALL_SETTING = 10
WARM_UP_PROBES = 3
NUDGE_IN = 2 * 10**8  # the in-process events' swap: 0.2 SOL, then its output back
POLL_S = 0.02
WAIT_S = 30.0
LIFETIME = timedelta(hours=1)
MAX_RATIO = 2.0
ENDED = frozenset({"confirmed", "failed", "cancelled", "expired", "open"})  # "open" after a firing: re-armed
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "loadtest" / "results" / "triggers.json"


# --------------------------------------------------------------------------- background orders


@dataclass(frozen=True, slots=True)
class BackgroundOrder:
    """An armed order far from the price: it never fires, and the book's bounds never quote it."""

    order_id: str
    kind: str
    amount_in: int  # lamports
    threshold_out: int  # USDC base units; 0 for a trailing stop
    high_out: int | None = None  # trailing stop only

    @property
    def amount_decimal(self) -> str:
        return format(Decimal(self.amount_in).scaleb(-9).normalize(), "f")

    def stored(self) -> dict[str, Any]:
        """Its ``trigger`` column, as ``engine.waiting.stored_trigger`` makes it."""
        from engine.waiting import stored_trigger

        if self.kind == "trailing_stop":
            trigger = stored_trigger(self.kind, price=None, threshold_out=0, trailing_bps=TRAILING_BPS)
            return {**trigger, "highOut": str(self.high_out)}
        price = Decimal(self.threshold_out).scaleb(-6) / Decimal(self.amount_in).scaleb(-9)
        return stored_trigger(self.kind, price=Decimal(f"{price:.12g}"), threshold_out=self.threshold_out)

    def book_trigger(self, expires_at: float) -> Trigger:
        """The book's view of it (what ``engine.waiting.trigger_of`` makes of the stored row)."""
        from sim.triggers import Trigger, TriggerKind

        trailing = self.kind == "trailing_stop"
        return Trigger(self.order_id, TriggerKind(self.kind), TOKEN_IN, TOKEN_OUT, self.amount_in,
                       self.threshold_out, expires_at, TRAILING_BPS if trailing else 0, self.high_out)  # fmt: skip


def background_orders(count: int, rate_small: Fraction, rate_large: Fraction, seed: int = 7) -> list[BackgroundOrder]:
    """``count`` orders, the four kinds in turn; rates are best output per input unit (small and large amounts)."""
    rng = random.Random(seed)
    low, high = math.log10(AMOUNT_RANGE[0]), math.log10(AMOUNT_RANGE[1])
    orders: list[BackgroundOrder] = []
    for i in range(count):
        kind, amount = KINDS[i % len(KINDS)], int(10 ** rng.uniform(low, high))
        order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if kind in ("limit", "take_profit"):
            orders.append(BackgroundOrder(order_id, kind, amount, math.ceil(FAR_ABOVE * rate_small * amount)))
        elif kind == "stop_loss":
            orders.append(BackgroundOrder(order_id, kind, amount, max(1, math.floor(FAR_BELOW * rate_large * amount))))
        else:
            orders.append(BackgroundOrder(order_id, kind, amount, 0, math.ceil(HIGH_ABOVE * rate_small * amount)))
    return orders


_ORDER_COLUMNS = ("id", "type", "token_in", "token_out", "mint_in", "mint_out", "amount_in", "amount_in_decimal",
                  "slippage_bps", "status", "seq", "attempts", "client_id", "trigger", "expires_at")  # fmt: skip


async def insert_background(desk: OrderDesk, orders: Sequence[BackgroundOrder]) -> float:
    """The orders and their two history rows (pending, open), in one transaction of two COPYs; seconds taken."""
    mint_in, mint_out = desk.tokens[TOKEN_IN].mint, desk.tokens[TOKEN_OUT].mint
    expires_at = datetime.now(UTC) + LIFETIME
    started = time.perf_counter()
    async with desk.db.connection() as conn, conn.transaction(), conn.cursor() as cur:
        async with cur.copy(f"COPY orders ({', '.join(_ORDER_COLUMNS)}) FROM STDIN") as copy:
            for o in orders:
                slippage = 0 if o.kind == "limit" else 500
                await copy.write_row((o.order_id, o.kind, TOKEN_IN, TOKEN_OUT, mint_in, mint_out, o.amount_in,
                                      o.amount_decimal, slippage, "open", 2, 0, "bench-background",
                                      json.dumps(o.stored()), expires_at))  # fmt: skip
        async with cur.copy("COPY order_status_history (order_id, seq, status, attempt, details) FROM STDIN") as copy:
            for o in orders:
                await copy.write_row((o.order_id, 1, "pending", 1, '{"queued": true}'))
                await copy.write_row((o.order_id, 2, "open", 0, json.dumps({"waitingFor": {"type": o.kind}})))
    return time.perf_counter() - started


# --------------------------------------------------------------------------- probes in the engine


@dataclass(frozen=True, slots=True)
class ProbeResult:
    latency_ms: float  # shock trade's created_at -> triggered row's created_at (PostgreSQL's clock)
    decided_ms: float  # shock trade's created_at -> the book's seenAt (the book's clock): the decision
    end: str


class Prober:
    """Probe limit orders, one at a time, fired by a shock of one pool."""

    def __init__(self, desk: OrderDesk, shock_bps: float) -> None:
        import ray

        from actors.pool_actor import pool_actor_name
        from actors.router import ROUTER_NAME
        from actors.trigger_book import TRIGGER_BOOK_NAME

        self.desk, self.shock_bps = desk, shock_bps
        self.router = ray.get_actor(ROUTER_NAME, namespace=NAMESPACE)
        self.pool = ray.get_actor(pool_actor_name(SHOCKED_POOL), namespace=NAMESPACE)
        self.book = ray.get_actor(TRIGGER_BOOK_NAME, namespace=NAMESPACE)
        self.background = 0  # background orders armed

    async def _row(self, query: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        async with self.desk.db.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def best_out(self, amount_in: int) -> int:
        decision = await self.router.route.remote(TOKEN_IN, TOKEN_OUT, amount_in)
        if decision.route is None:
            raise RuntimeError(f"no route for {amount_in} {TOKEN_IN}: {decision.failure}")
        return int(decision.route.amount_out)

    async def rates(self) -> tuple[Fraction, Fraction]:
        """Best output per input unit for the smallest and the largest background amounts."""
        low, high = AMOUNT_RANGE
        return Fraction(await self.best_out(low), low), Fraction(await self.best_out(high), high)

    async def stats(self) -> dict[str, Any]:
        return await self.book.stats.remote()

    async def wait_armed(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while (await self.stats()).get("armed", 0) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the trigger book did not arm {count} orders in {WAIT_S} s: {await self.stats()}")
            await asyncio.sleep(POLL_S)

    async def add_background(self, orders: Sequence[BackgroundOrder]) -> dict[str, float]:
        """Write them to PostgreSQL, have the book re-read the store, wait until it holds them."""
        insert_s = await insert_background(self.desk, orders)
        started = time.perf_counter()
        armed = await self.book.rebuild.remote()
        await self.wait_armed(self.background + len(orders))
        self.background += len(orders)
        return {"orders": len(orders), "insertS": insert_s, "rebuildS": time.perf_counter() - started,
                "armedByRebuild": armed}  # fmt: skip

    async def status(self, order_id: str) -> str:
        row = await self._row("SELECT status FROM orders WHERE id = %s", (order_id,))
        assert row is not None
        return str(row[0])

    async def wait_status(self, order_id: str, wanted: frozenset[str]) -> str:
        deadline = time.monotonic() + WAIT_S
        while (status := await self.status(order_id)) not in wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"probe {order_id} still {status} after {WAIT_S} s (waiting for {sorted(wanted)})")
            await asyncio.sleep(POLL_S)
        return status

    async def wait_triggered(self, order_id: str) -> tuple[datetime, dict[str, Any]]:
        """The first ``triggered`` history row: its commit time and details."""
        deadline = time.monotonic() + WAIT_S
        query = ("SELECT created_at, details FROM order_status_history WHERE order_id = %s AND status = 'triggered' "
                 "ORDER BY seq LIMIT 1")  # fmt: skip
        while (row := await self._row(query, (order_id,))) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"probe {order_id} not triggered {WAIT_S} s after the shock")
            await asyncio.sleep(POLL_S)
        return row[0], dict(row[1] or {})

    async def submit(self) -> str:
        """A 1 SOL limit a little above the best route's price, accepted as the API does."""
        from engine.intake import accept_order
        from engine.records import NewOrder
        from engine.waiting import stored_trigger
        from sim.triggers import threshold_out

        t_in, t_out = self.desk.tokens[TOKEN_IN], self.desk.tokens[TOKEN_OUT]
        out = await self.best_out(PROBE_AMOUNT)
        price = (Decimal(out) * (1 + Decimal(LIMIT_ABOVE_BPS) / 10_000) / t_out.one / (Decimal(PROBE_AMOUNT) / t_in.one))
        price = price.quantize(Decimal("0.000001"))
        threshold = threshold_out(price, PROBE_AMOUNT, t_in.decimals, t_out.decimals, round_up=True)
        order = NewOrder(
            token_in=t_in.symbol, token_out=t_out.symbol, mint_in=t_in.mint, mint_out=t_out.mint,
            amount_in=PROBE_AMOUNT, amount_in_decimal=format(Decimal(PROBE_AMOUNT) / t_in.one, "f"), slippage_bps=0,
            type="limit", trigger=stored_trigger("limit", price=price, threshold_out=threshold),
            expires_at=datetime.now(UTC) + LIFETIME,
        )  # fmt: skip
        record, _ = await accept_order(self.desk.store, self.desk.bus, self.desk.queue, order, client_id="bench-probe")
        return record.id

    async def shock_trade_at(self) -> datetime:
        row = await self._row("SELECT created_at FROM pool_trades WHERE pool_id = %s AND kind = 'shock' "
                              "ORDER BY seq DESC LIMIT 1", (SHOCKED_POOL,))  # fmt: skip
        assert row is not None
        return row[0]

    async def restore(self, price: float) -> None:
        """Shock the pool back to ``price`` (the probe's own sale moved it too)."""
        now = (await self.pool.summary.remote()).spot_price
        move_bps = (price / now - 1) * 10_000
        if abs(move_bps) >= 0.5:
            await self.pool.shock.remote(move_bps)

    async def cancel(self, order_id: str) -> None:
        """A probe re-armed (the market moved back before it ran): out of the way of the next one."""
        from engine.errors import StaleTransition
        from sim.orders import OrderStatus

        try:
            await self.desk.store.transition(order_id, OrderStatus.CANCELLED, attempt=0,
                                             details={"cancelledFrom": "open"}, expected=OrderStatus.OPEN)  # fmt: skip
        except StaleTransition:
            pass
        await self.book.disarm.remote(order_id)

    async def probe(self) -> ProbeResult:
        order_id = await self.submit()
        await self.wait_status(order_id, frozenset({"open"}))
        await self.wait_armed(self.background + 1)
        moved = await self.pool.shock.remote(self.shock_bps)
        if moved["trade"] is None:
            raise RuntimeError(f"{SHOCKED_POOL} could not move {self.shock_bps} bps: {moved}")
        shock_at = await self.shock_trade_at()
        triggered_at, details = await self.wait_triggered(order_id)
        end = await self.wait_status(order_id, ENDED)
        if end == "open":
            await self.cancel(order_id)
        await self.restore(moved["priceBefore"])
        seen = _seen_at(details) or triggered_at
        return ProbeResult(_ms(triggered_at - shock_at), _ms(seen - shock_at), end)


def _ms(delta: timedelta) -> float:
    return delta.total_seconds() * 1000


def _seen_at(details: dict[str, Any]) -> datetime | None:
    """When the book saw the price that fired the order (its ``seenAt``, an ISO time ending in Z)."""
    seen = details.get("seenAt")
    return datetime.fromisoformat(str(seen).replace("Z", "+00:00")) if seen else None


async def probe_setting(prober: Prober, probes: int) -> dict[str, Any]:
    """Warm-up probes, then ``probes`` measured ones, with the book holding what it holds now."""
    for _ in range(WARM_UP_PROBES):
        await prober.probe()
    before = await prober.stats()
    results = [await prober.probe() for _ in range(probes)]
    after = await prober.stats()
    latencies = [r.latency_ms for r in results]
    return {
        "armed": prober.background + 1,  # the background, and the probe
        "probes": probes,
        "p50Ms": percentile(latencies, 0.50),
        "p99Ms": percentile(latencies, 0.99),
        "meanMs": statistics.fmean(latencies),
        "minMs": min(latencies),
        "maxMs": max(latencies),
        "decidedP50Ms": percentile([r.decided_ms for r in results], 0.50),
        "ends": dict(Counter(r.end for r in results)),
        "bookPriceEvents": after.get("priceEvents", 0) - before.get("priceEvents", 0),
        "samplesMs": [round(x, 3) for x in latencies],
    }


async def engine_figures(settings: EngineSettings, args: argparse.Namespace) -> tuple[dict[str, Any], list[BackgroundOrder]]:
    """Both settings in one engine: 10 armed, then ``args.armed``. Returns the figures and the background orders."""
    desk = OrderDesk(settings)
    await desk.open()
    try:
        prober = Prober(desk, args.shock_bps)
        rate_small, rate_large = await prober.rates()
        orders = background_orders(max(args.armed, SMALL_SETTING), rate_small, rate_large)
        loads: list[dict[str, float]] = []
        measured: list[dict[str, Any]] = []
        for batch in (orders[:SMALL_SETTING], orders[SMALL_SETTING:]):
            if batch:
                loads.append(await prober.add_background(batch))
            measured.append(await probe_setting(prober, args.probes))
        async with desk.db.connection() as conn:
            cur = await conn.execute("SELECT status, count(*) FROM orders WHERE client_id = 'bench-background' "
                                     "GROUP BY status")  # fmt: skip
            background_status = {status: int(n) for status, n in await cur.fetchall()}
        figures = {"settings": measured, "loads": loads, "backgroundStatus": background_status,
                   "book": await prober.stats()}  # fmt: skip
        return figures, orders
    finally:
        await desk.close()


# --------------------------------------------------------------------------- the report


def machine_figures() -> dict[str, Any]:
    figures = machine()
    return {**figures, "clean": "uncommitted" not in figures["commit"]}


def ratio_check(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    p50 = large["p50Ms"] / small["p50Ms"]
    p99 = large["p99Ms"] / small["p99Ms"]
    return {"p50": p50, "p99": p99, "limit": MAX_RATIO, "pass": p50 <= MAX_RATIO, "p99Pass": p99 <= MAX_RATIO}


def print_report(report: dict[str, Any]) -> None:
    m, latency, book, ratio = report["machine"], report["latency"], report["book"], report["ratio"]
    print(f"trigger benchmark: {m['cores']} cores (the client shares them), commit {m['commit']}, "
          f"tree {'clean' if m['clean'] else 'NOT clean'}, load1 {m['load1']}")  # fmt: skip
    print(f"  engine: latencies zero, rate limit off, market off; probe: 1 SOL limit {TOKEN_IN}->{TOKEN_OUT}, "
          f"{SHOCKED_POOL} shocked +{report['args']['shockBps']} bps")  # fmt: skip
    for load in latency["loads"]:
        print(f"  {load['orders']} background orders: COPY {load['insertS'] * 1000:.0f} ms, "
              f"book rebuild {load['rebuildS'] * 1000:.0f} ms")  # fmt: skip
    print("  trigger latency (shock trade committed -> triggered committed, PostgreSQL clock):")
    for s in latency["settings"]:
        print(f"    {s['armed']:>6} armed: p50 {s['p50Ms']:.1f} ms, p99 {s['p99Ms']:.1f} ms "
              f"(mean {s['meanMs']:.1f}, min {s['minMs']:.1f}, max {s['maxMs']:.1f}; {s['probes']} probes; "
              f"book decided at p50 {s['decidedP50Ms']:.1f} ms; ends {s['ends']})")  # fmt: skip
    verdict = "PASS" if ratio["pass"] else "FAIL"
    print(f"  ratio {latency['settings'][-1]['armed']} / {latency['settings'][0]['armed']} armed: "
          f"p50 {ratio['p50']:.2f}x -> {verdict} (limit {MAX_RATIO:.1f}x); "
          f"p99 {ratio['p99']:.2f}x ({'within' if ratio['p99Pass'] else 'beyond'} {MAX_RATIO:.1f}x, not gated)")  # fmt: skip
    print(f"  background orders after the run: {latency['backgroundStatus']}")
    print("  price events per second, the book's decision alone, in process "
          "(the actor adds its push and coalescing):")  # fmt: skip
    for b in book:
        print(f"    {b['armed']:>6} armed: {b['eventsPerS']:,.0f} events/s ({b['meanEventUs']:.0f} us each), "
              f"{b['meanQuotesPerEvent']:.2f} quotes/event, fired {b['fired']}, highs moved {b['highsMoved']}")  # fmt: skip


def write_report(report: dict[str, Any]) -> Path:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return RESULTS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=30, help="measured probes per setting (after 3 warm-ups)")
    parser.add_argument("--armed", type=int, default=10_000, help="background orders of the large setting")
    parser.add_argument("--shock-bps", type=float, default=100.0, help="how far the probe's shock moves the pool")
    parser.add_argument("--book-seconds", type=float, default=3.0, help="in-process run per book size")
    parser.add_argument("--executors", type=int, default=4, help="order slots (as bench_engine_core)")
    args = parser.parse_args()
    if args.probes < 1 or args.armed <= SMALL_SETTING:
        parser.error(f"--probes must be >= 1 and --armed > {SMALL_SETTING}")
    return args


def main() -> None:
    args = parse_args()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="dexengine-bench-triggers-") as tmp:
        settings = core_settings(Path(tmp), args.executors)
        settings = settings.model_copy(update={"ray": settings.ray.model_copy(update={"namespace": NAMESPACE})})
        engine = start_engine(settings)
        try:
            latency, orders = asyncio.run(engine_figures(engine.settings, args))
        finally:
            stop_engine(engine)
    book = book_throughput(orders, (SMALL_SETTING, len(orders)), args.book_seconds,
                          pair=(TOKEN_IN, TOKEN_OUT), moved_pool=SHOCKED_POOL, nudge_in=NUDGE_IN,
                          lifetime_s=LIFETIME.total_seconds())
    report = {
        "started": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": "python -m loadtest.bench_triggers " + " ".join(sys.argv[1:]),
        "machine": machine_figures(),
        "args": {"probes": args.probes, "armed": args.armed, "shockBps": args.shock_bps,
                 "bookSeconds": args.book_seconds, "executors": args.executors},  # fmt: skip
        "latency": latency,
        "ratio": ratio_check(latency["settings"][0], latency["settings"][-1]),
        "book": book,
        "bookNote": "the book's decision alone, in process (the actor adds its push and coalescing)",
    }
    print_report(report)
    print(f"  written to {write_report(report).relative_to(REPO)}")
    sys.exit(0 if report["ratio"]["pass"] else 1)


if __name__ == "__main__":
    main()
