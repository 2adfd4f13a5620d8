"""The chaos run's summary: what was injected, what became of the orders, and which
invariants broke (the exit code says whether any did)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from engine.audit import AuditReport, ViolationKind, report_lines
from loadtest.chaos.tally import Tally


def broken_invariants(tally: Tally, books: dict[str, Any]) -> dict[str, int]:
    """Every invariant with how often it broke (0: it held)."""
    audit: AuditReport = books["audit"]
    return {
        "lost (accepted, not in PostgreSQL)": len(books["lost"]),
        "unfinished (accepted, not final)": len(books["unfinished"]),
        **{f"audit: {kind}": audit.count(kind) for kind in ViolationKind},
        "pool actors off their books": len(books["pools_off"]),
        "WebSocket streams != history": len(books["ws_mismatch"]),
        "WebSocket streams never finished": len(tally.ws_incomplete),
    }


def _counts(counter: Counter, sep: str = " x") -> str:
    """``  (a x3, b x1)``, most first; nothing when there are none."""
    return f"  ({', '.join(f'{c}{sep}{n}' for c, n in counter.most_common())})" if counter else ""


def outcome_lines(tally: Tally, books: dict[str, Any], load_s: float, seed: int) -> list[str]:
    statuses = books["statuses"]
    faults = Counter(kind for _, kind, _ in tally.faults)
    return [
        "",
        f"chaos summary ({load_s:.0f}s of load, seed {seed})",
        f"  faults injected     {len(tally.faults)}: " + ", ".join(f"{k} x{n}" for k, n in sorted(faults.items())),
        f"  orders accepted     {len(tally.accepted)}",
        f"    confirmed         {statuses.get('confirmed', 0)}",
        f"    failed            {statuses.get('failed', 0)}" + _counts(books["errors"], sep=" "),
        f"    lost              {len(books['lost']) + len(books['unfinished'])}",
        f"  double fills        {books['audit'].count(ViolationKind.DOUBLE_FILL)}",
        f"  refused             {sum(tally.rejected.values())}" + _counts(tally.rejected),
        f"  no answer           {sum(tally.transport_errors.values())}" + _counts(tally.transport_errors),
        f"  stored without 2xx  {books['stored_without_2xx']}  (requests that got no answer or a 503 at commit time)",
        "  pool trades         " + ", ".join(f"{k} {n}" for k, n in sorted(books["trades"])),
        f"  WebSockets          {len(tally.watched)} orders followed, {tally.ws_reconnects} reconnects,"
        f" {tally.ws_stalls} silent sockets dropped",
    ]


def invariant_lines(tally: Tally, books: dict[str, Any], failed: dict[str, int]) -> list[str]:
    lines = []
    if tally.fault_errors:
        lines.append(f"  injections that failed: {tally.fault_errors}")
    lines.append("  invariants          " + ("all hold" if not failed else "BROKEN: " + json.dumps(failed)))
    for key in ("lost", "unfinished", "ws_mismatch"):
        if books[key]:
            lines.append(f"    {key}: {books[key][:10]}")
    if not books["audit"].clean:
        lines += ["    " + line for line in report_lines(books["audit"])]
    if books["ws_mismatch"]:
        lines.append(f"    ws_detail: {json.dumps(books['ws_detail'])[:3000]}")
    if books["failure_messages"]:
        lines.append("  failure reasons:")
        lines += [f"    {n:4d}  {m}" for m, n in books["failure_messages"].most_common(8)]
    if books["pools_off"]:
        lines.append(f"    pools_off: {json.dumps(books['pools_off'], default=str)[:2000]}")
    return lines


def summary_json(tally: Tally, books: dict[str, Any], load_s: float, seed: int,
                 broken: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    return {
        "loadS": load_s, "seed": seed, "faults": tally.faults, "accepted": len(tally.accepted),
        "statuses": dict(books["statuses"]), "errors": dict(books["errors"]), "rejected": dict(tally.rejected),
        "transportErrors": dict(tally.transport_errors), "invariants": broken,
        "storedWithout2xx": books["stored_without_2xx"], "wsFollowed": len(tally.watched),
        "wsReconnects": tally.ws_reconnects,
    }  # fmt: skip


def report(tally: Tally, books: dict[str, Any], load_s: float, args: argparse.Namespace) -> int:
    """Print the summary (and write it as JSON with ``--json``); 1 when an invariant broke."""
    broken = broken_invariants(tally, books)
    failed = {k: v for k, v in broken.items() if v}
    lines = outcome_lines(tally, books, load_s, args.seed) + invariant_lines(tally, books, failed)
    print("\n".join(lines), flush=True)
    if args.json:
        args.json.write_text(json.dumps(summary_json(tally, books, load_s, args.seed, broken), indent=2, default=str))
    return 1 if failed else 0
