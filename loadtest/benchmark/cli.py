"""``python -m loadtest.benchmark``: its options, their defaults (``--quick`` or not), and the run."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import loadtest.benchmark
from loadtest.benchmark.machine import tree_state, tree_text
from loadtest.benchmark.runner import rewrite, run

RESULTS = Path(__file__).resolve().parents[1] / "results"
PHASES = ("idle", "pools49", "seed", "ceiling", "ws", "watchers")
# --quick leaves pools49 out unless it is asked for: its engine alone takes ~2 minutes to start and stop
QUICK_PHASES = "idle,seed,ceiling,ws,watchers"
# the API replica takes 2000 requests at once (max_ongoing_requests)
MAX_WATCHERS = 1900


def parse_steps(text: str) -> list[int]:
    steps = sorted({int(x) for x in text.split(",") if x.strip()})
    if not steps or steps[0] <= 0:
        raise argparse.ArgumentTypeError("watcher steps: positive integers, e.g. 100,400,800")
    return steps


def build_parser() -> argparse.ArgumentParser:
    description = (loadtest.benchmark.__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m loadtest.benchmark", description=description)
    parser.add_argument("--quick", action="store_true", help="shorter phases (a 75 s seed run: one whole minute)")
    parser.add_argument("--phases", help=f"which of {','.join(PHASES)} (default: all; --quick: {QUICK_PHASES})")
    parser.add_argument("--require-clean", action="store_true",
                        help="refuse to start unless `git status --porcelain` is empty (figures for the README)")
    parser.add_argument("--idle-settle", type=float, help="seconds an engine at rest settles (default 20; quick 10)")
    parser.add_argument("--idle-measure", type=float, help="seconds its CPU is measured (default 30; quick 15)")
    parser.add_argument("--seed-duration", type=float, help="seconds of the seed run (default 200; quick 75)")
    parser.add_argument("--backlog", type=int, default=30, help="orders kept in flight in the seed run")
    parser.add_argument("--executor-bound", type=float, default=0, metavar="SECONDS",
                        help="also run the seed latencies without a rate limit for this long (default: skip)")
    parser.add_argument("--ceiling-duration", type=float, help="seconds at the ceiling (default 45; quick 20)")
    parser.add_argument("--concurrency", type=int, default=24, help="closed-loop clients at the ceiling")
    parser.add_argument("--ingress-duration", type=float,
                        help="seconds of each of the ingress's own ceilings, HTTP and WebSocket (default 10; quick 5)")
    parser.add_argument("--ws-duration", type=float, help="seconds of the delivery-latency phase (default 30)")
    parser.add_argument("--ws-interval", type=float, default=0.5, help="seconds between its orders")
    parser.add_argument("--watchers", type=parse_steps, help="watcher steps, stopped at the first over budget (default 100,200,400,800,1200,1600)")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rewrite", type=Path, metavar="JSON", help="only rewrite the report of an earlier run")
    return parser  # fmt: skip


def settle_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The phases asked for, and every duration not given: the full run's, or ``--quick``'s."""
    chosen = args.phases or (QUICK_PHASES if args.quick else ",".join(PHASES))
    args.phases = {p.strip() for p in chosen.split(",") if p.strip()}
    unknown = args.phases - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {sorted(unknown)}")
    q = args.quick
    args.seed_duration = args.seed_duration or (75.0 if q else 200.0)
    args.ceiling_duration = args.ceiling_duration or (20.0 if q else 45.0)
    args.ws_duration = args.ws_duration or (15.0 if q else 30.0)
    args.ingress_duration = args.ingress_duration or (5.0 if q else 10.0)
    args.idle_settle = args.idle_settle or (10.0 if q else 20.0)
    args.idle_measure = args.idle_measure or (15.0 if q else 30.0)
    args.watchers = args.watchers or ([100, 200, 400, 800] if q else [100, 200, 400, 800, 1200, 1600])
    if max(args.watchers) > MAX_WATCHERS:
        parser.error("at most 1900 watchers: the API replica takes 2000 requests at once (max_ongoing_requests)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rewrite:
        rewrite(args.rewrite)
        return 0
    settle_options(parser, args)
    args.tree = tree_state()
    if args.require_clean and not args.tree["clean"]:
        print(f"--require-clean: the tree is not clean ({tree_text(args.tree)}); commit or stash first",
              file=sys.stderr)  # fmt: skip
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
