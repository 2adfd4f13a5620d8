"""``python -m loadtest.chaos``: its options, then the run: an engine of its own,
the load with the faults, the check of the books, the summary."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import loadtest.chaos
from loadtest.chaos.books import check_books
from loadtest.chaos.engine import ChaosEngine, isolate_ray, start_engine, stop_engine
from loadtest.chaos.faults import CHAIN_FAULTS, FAULTS, Injector
from loadtest.chaos.load import drive_load
from loadtest.chaos.summary import report
from loadtest.chaos.tally import Tally

# no fault in the load's last seconds: the last one has time to heal before the drain
QUIET_END_S = 5


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The options, and the fault kinds asked for."""
    description = (loadtest.chaos.__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m loadtest.chaos", description=description)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load and faults (default 120)")
    parser.add_argument("--rate", type=float, default=5.0, help="orders submitted per second (default 5)")
    parser.add_argument("--clients", type=int, default=4, help="API clients (X-Client-Ids) sharing the rate")
    parser.add_argument("--fault-every", type=float, default=9.0, help="seconds between faults, +/- 30 %%")
    parser.add_argument("--watch-every", type=int, default=4, help="follow every Nth order on its WebSocket")
    parser.add_argument("--drain", type=float, default=180.0, help="seconds to wait for accepted orders to end")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chain", action="store_true", help="orders land through the simulated chain (400 ms slots); "
                        f"adds the faults {' and '.join(CHAIN_FAULTS)}")  # fmt: skip
    parser.add_argument("--faults", help=f"which faults, comma-separated (default: all: {','.join(FAULTS)}, and with "
                        f"--chain {','.join(CHAIN_FAULTS)})")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the data dir (PostgreSQL, Redis, Ray logs)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0 or args.clients <= 0 or args.fault_every <= 0:
        parser.error("--duration, --rate, --clients and --fault-every must be positive")
    known = FAULTS + CHAIN_FAULTS if args.chain else FAULTS
    kinds = [k.strip() for k in (args.faults or ",".join(known)).split(",") if k.strip()]
    if not kinds or set(kinds) - set(known):
        parser.error(f"--faults: choose among {', '.join(known)}" + ("" if args.chain else " (the chain's need --chain)"))
    return args, kinds


async def load_under_faults(engine: ChaosEngine, tally: Tally, args: argparse.Namespace, kinds: list[str],
                            until: float) -> None:  # fmt: skip
    """The load with the faults injected beside it; then the followed orders' ends."""
    injector = Injector(engine, tally, every_s=args.fault_every, until=until - QUIET_END_S, seed=args.seed,
                        kinds=kinds)  # fmt: skip
    injector.start()
    watch_until = [until + args.drain]
    watchers = await drive_load(
        engine.base_url, tally, until=until, rate=args.rate, clients=args.clients, watch_every=args.watch_every,
        watch_until=watch_until, seed=args.seed,
    )  # fmt: skip
    injector.stop.set()
    await asyncio.to_thread(injector.join, 120)
    if watchers:
        watch_until[0] = time.monotonic() + args.drain
        await asyncio.wait(watchers, timeout=args.drain + 30)


def run(engine: ChaosEngine, args: argparse.Namespace, kinds: list[str]) -> int:
    tally = Tally()
    load_began = time.monotonic()
    asyncio.run(load_under_faults(engine, tally, args, kinds, until=load_began + args.duration))
    load_s = min(time.monotonic() - load_began, args.duration)
    print(f"chaos: load done ({len(tally.accepted)} accepted in {load_s:.0f}s); checking the books ...", flush=True)
    books = check_books(engine, tally, args.drain)
    return report(tally, books, load_s, args)


def main(argv: list[str] | None = None) -> int:
    args, kinds = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    root = Path(tempfile.mkdtemp(prefix="dexengine-chaos-"))
    ray_tmp = isolate_ray()
    engine: ChaosEngine | None = None
    started = time.monotonic()
    try:
        print(f"chaos: starting an engine of its own in {root} ...", flush=True)
        try:
            engine = start_engine(root, args.seed, chain=args.chain)
        except Exception as exc:  # noqa: BLE001
            print(f"chaos: the engine did not start: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        print(f"chaos: engine up at {engine.base_url} in {time.monotonic() - started:.0f}s; "
              f"{args.duration:g}s of load at {args.rate:g} orders/s with faults every ~{args.fault_every:g}s",
              flush=True)  # fmt: skip
        return run(engine, args, kinds)
    finally:
        if engine is not None:
            with contextlib.suppress(Exception):
                stop_engine(engine)
        if args.keep:
            print(f"chaos: data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(ray_tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
