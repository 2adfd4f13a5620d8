"""Quote throughput of the pool math, single-threaded, no Ray.

    python -m loadtest.bench_sim_pools [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from sim.pools import CpmmPool, DlmmFeeParams, DlmmPool, SwapQuote
from sim.tokens import SOL, USDC


def rate(quote: Callable[[], SwapQuote], seconds: float) -> float:
    """Quotes per second, measured in batches until ``seconds`` have passed."""
    batch = 100
    done = 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            quote()
        done += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per scenario")
    args = parser.parse_args(argv)

    raydium = CpmmPool.at_price("ray", SOL, USDC, price=150.0, value_y=50_000 * USDC.one)
    meteora = DlmmPool.with_liquidity(
        "met",
        SOL,
        USDC,
        price=150.0,
        value_y=120_000 * USDC.one,
        bin_step=20,
        bins_each_side=35,
        params=DlmmFeeParams(base_factor=10_000),
    )
    # Enough SOL to empty the active bin and the 19 below it, and bite into the 20th.
    depth = {bin_id: ry for bin_id, _, _, ry in meteora.bins_summary()}
    wanted = sum(depth[meteora.active_id - k] for k in range(20)) + depth[meteora.active_id - 20] // 2
    across_20 = meteora.quote_exact_out("SOL", wanted).amount_in
    small = SOL.one // 100

    scenarios: list[tuple[str, Callable[[], SwapQuote], int]] = [
        ("cpmm", lambda: raydium.quote_exact_in("SOL", small), 0),
        ("dlmm, within one bin", lambda: meteora.quote_exact_in("SOL", small, now=1.0), 0),
        ("dlmm, crossing 20 bins", lambda: meteora.quote_exact_in("SOL", across_20, now=1.0), 20),
    ]
    for name, quote, bins in scenarios:
        crossed = quote().bins_crossed
        assert crossed == bins, f"{name}: crossed {crossed} bins, expected {bins}"
        print(f"{name:<24} {rate(quote, args.seconds):>12,.0f} quotes/s")


if __name__ == "__main__":
    main()
