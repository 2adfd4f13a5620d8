"""Benchmark of the pure domain: market ticks and routes per second.

    python -m loadtest.bench_sim_market [--config configs/market.yaml] [--ticks 2000]
                                        [--seconds 1.5] [--json]

Single process, no Ray: this is the ceiling the actors add their overhead to.
Routes are computed on the default market after it has run for a while, with
order sizes drawn from a fixed list so every run measures the same work.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.config import build_market, build_pools, load_market_config
from sim.pools import Pool, restore_pool
from sim.routing import best_single, best_split, find_best_route, two_hop

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "market.yaml"


def _rate(fn: Callable[[int], Any], seconds: float) -> tuple[float, int]:
    """Calls per second of ``fn(i)`` over about ``seconds``."""
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        fn(calls)
        calls += 1
        if calls % 8 == 0 and time.perf_counter() >= deadline:
            break
    return calls / (time.perf_counter() - started), calls


def run(config_path: Path, ticks: int, seconds: float) -> dict[str, Any]:
    config = load_market_config(config_path)
    pools = build_pools(config)
    market = build_market(config, pools, seed=7, tick_s=1.0)

    trades = 0
    started = time.perf_counter()
    for _ in range(ticks):
        trades += len(market.tick())
    tick_elapsed = time.perf_counter() - started

    live: list[Pool] = list(market.pools.values())
    now = market.now
    sol = [SOL_SIZES[i] * 10**9 for i in range(len(SOL_SIZES))]
    bonk = [n * 10**5 for n in (1_000_000, 5_000_000, 20_000_000, 50_000_000)]
    snapshots = [p.snapshot() for p in live if p.serves("SOL", "USDC")]

    def single(i: int) -> Any:
        return best_single(live, "SOL", "USDC", sol[i % len(sol)], now)

    def split(i: int) -> Any:
        return best_split(live, "SOL", "USDC", sol[i % len(sol)], now)

    def hop(i: int) -> Any:
        return two_hop(live, "BONK", "USDC", bonk[i % len(bonk)], now, via=("SOL", "USDC"))

    def full(i: int) -> Any:
        return find_best_route(live, "SOL", "USDC", sol[i % len(sol)], now,
                               allow_split=True, allow_two_hop=True)

    def actor_path(i: int) -> Any:  # what the router actor does per order
        restored = [restore_pool(s) for s in snapshots]
        return find_best_route(restored, "SOL", "USDC", sol[i % len(sol)], now,
                               allow_split=False, allow_two_hop=True)

    results: dict[str, Any] = {
        "pools": len(live),
        "ticks": ticks,
        "market_trades": trades,
        "ticks_per_s": ticks / tick_elapsed,
        "routes_per_s": {},
    }
    for name, fn in (
        ("best_single", single),
        ("best_split", split),
        ("two_hop", hop),
        ("find_best_route(split+two_hop)", full),
        ("restore+find_best_route(single+two_hop)", actor_path),
    ):
        rate, calls = _rate(fn, seconds)
        results["routes_per_s"][name] = {"rate": rate, "calls": calls}
    kinds: dict[str, int] = {}
    for size in sol:
        kind = best_split(live, "SOL", "USDC", size, now).kind
        kinds[kind] = kinds.get(kind, 0) + 1
    results["split_kinds_by_size"] = kinds
    return results


SOL_SIZES = (1, 5, 20, 60, 150)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--ticks", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=1.5, help="time per route benchmark")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run(args.config, args.ticks, args.seconds)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"market: {results['pools']} pools, {results['ticks']} ticks, "
          f"{results['market_trades']} trades")
    print(f"  market ticks/s: {results['ticks_per_s']:,.0f}")
    print(f"routes/s (SOL->USDC sizes {', '.join(map(str, SOL_SIZES))} SOL; BONK->USDC via SOL):")
    for name, r in results["routes_per_s"].items():
        print(f"  {name:42s} {r['rate']:>10,.0f}/s  ({r['calls']} calls)")
    print(f"  best_split outcome by size: {results['split_kinds_by_size']}")


if __name__ == "__main__":
    main()
