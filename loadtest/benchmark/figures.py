"""The report's table of figures, what limited each, and the notes on a run."""

from __future__ import annotations

from typing import Any

from loadtest.benchmark.formatting import cpu_text, fmt
from loadtest.benchmark.profiling import py_spy_available
from loadtest.benchmark.watchers import held_within, own_p99

Row = tuple[str, ...]  # #, figure, value, limit / goal, ratio, limited by
# other processes busier than this on the machine: the figures are marked lower
OTHER_CORES_NOTE = 0.3


def seed_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    seed = data.get("seed")
    if seed:
        rows.append(("1", "seed defaults: sustained throughput", f"{seed['throughputPerS']}/s ({seed['throughputPerMin']}/min; client {seed['cpu']['clientCores']:.2f} cores)",
                     f"{seed['limitPerS']}/s = min(rate {seed['rateLimitPerS']}/s, executors/order time {seed['executorBoundPerS']}/s); goal ≥ 0.97",
                     fmt(seed["ratio"], 3), seed["limitedBy"]))  # fmt: skip
    eb = data.get("executorBound")
    if eb:
        rows.append(("1b", "seed latencies, no rate limit", f"{eb['throughputPerS']}/s (client {eb['cpu']['clientCores']:.2f} cores)",
                     f"{eb['executorBoundPerS']}/s = executors / {eb['meanOrderS']} s", fmt(eb["ratio"], 3),
                     "executors × order time"))  # fmt: skip
    return rows


def ceiling_rows(data: dict[str, Any]) -> list[Row]:
    c = data.get("ceiling")
    if not c:
        return []
    un = c["unloaded"]
    at = c["atCeiling"]
    return [
        ("2", "engine ceiling: orders/s end to end", f"{c['throughputPerS']}/s (client {c['cpu']['clientCores']:.2f} cores)", "–",
         fmt((c.get("perIngress") or {}).get("perHttp"), 3) + " (÷ trivial HTTP req/s)",
         data.get("ceilingLimitedBy", "CPU (see §2)")),
        ("2", "engine overhead per order (unloaded) p50 / p99",
         f"{fmt(un['e2eMs']['p50'])} / {fmt(un['e2eMs']['p99'])} ms", "–", "–",
         "actor hops + PostgreSQL commits per status (see §2)"),
        ("2", "at the ceiling: executor time per order p50 / p99",
         f"{fmt(at['executorMs']['p50'])} / {fmt(at['executorMs']['p99'])} ms", "–", "–", "CPU contention"),
    ]  # fmt: skip


def websocket_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    ws = data.get("ws")
    if ws:
        d = ws["deliveryMs"]
        rows.append(("3", "WebSocket delivery p50 / p99", f"{fmt(d['p50'])} / {fmt(d['p99'])} ms", "seed claims < 10 ms",
                     fmt(d["p99"] / 10 if d["p99"] else None, 2) + " (p99/10 ms)",
                     "hops, not CPU: commit → Redis publish → the socket's own subscription in the API replica → "
                     "Serve proxy (a Ray streaming call per message) → client"))  # fmt: skip
    wt = data.get("watchers")
    if wt:
        rows.append(("4", "watchers held, their own events ≤ 100 ms p99", str(held_within(wt["steps"], wt["budgetMs"])[0]),
                     f"tried {', '.join(str(s['watchers']) for s in wt['steps'])}", "–", data.get("watchersLimitedBy", "see §4")))  # fmt: skip
    return rows


def memory_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    for phase, states in (data.get("memory") or {}).items():
        idle = states.get("idle")
        loads = [v for k, v in states.items() if k != "idle"]
        peak = max(loads, key=lambda m: m["totalMB"]) if loads else None
        if idle or peak:
            ref = idle or peak
            parts = ", ".join(
                f"{k} {v['processes']} × {v['MB'] / v['processes']:.0f} MB" if v["processes"] > 1 else f"{k} {v['MB']:.0f} MB"
                for k, v in list(ref["byRole"].items())[:3]
            )
            rows.append(("5", f"memory, {phase} engine: idle / under load",
                         f"{fmt(idle and idle['totalMB'], 0)} / {fmt(peak and peak['totalMB'], 0)} MB {ref['kind']}",
                         "–", "–", f"a Python process per actor: {parts}"))  # fmt: skip
    return rows


def summary_rows(data: dict[str, Any]) -> list[Row]:
    return [*seed_rows(data), *ceiling_rows(data), *websocket_rows(data), *memory_rows(data)]


def watchers_limited_by(wt: dict[str, Any]) -> str:
    _, over = held_within(wt["steps"], wt["budgetMs"])
    if over is not None:
        why = (f"over budget at {over['watchers']} (every watcher's own events p99 {fmt(own_p99(over), 0)} ms): "
               + cpu_text(over["cpu"]))  # fmt: skip
        if over["errors"]:
            why += f"; errors {over['errors']}"
    else:
        why = f"not reached (largest step tried; {cpu_text(wt['steps'][-1]['cpu'])})"
    fan = [st for st in wt["steps"] if (st["burstDeliveryMs"]["p99"] or 0) > wt["budgetMs"]]
    if fan:
        why += (f". The fan-out of one order's events to many sockets is what fails: from {fan[0]['burstFanout']} "
                f"sockets on one order, burst p99 {fmt(fan[0]['burstDeliveryMs']['p99'], 0)} ms")  # fmt: skip
    return why


def limits(data: dict[str, Any]) -> dict[str, str]:
    out = {}
    if data.get("ceiling"):
        c = data["ceiling"]
        net = "net of its idle CPU" if c.get("idleCpu") else "its idle CPU not measured: gross"
        out["ceilingLimitedBy"] = (f"CPU: {fmt(c['engineCpuMsPerOrder'])} ms of engine CPU per order ({net}) on "
                                   f"{c['cpu']['cores']} shared cores; " + cpu_text(c["cpu"]))  # fmt: skip
    wt = data.get("watchers")
    if wt and wt["steps"]:
        out["watchersLimitedBy"] = watchers_limited_by(wt)
    return out


def notes(data: dict[str, Any]) -> list[str]:
    out = []
    phases = [(key, (data.get(key) or {}).get("cpu")) for key in ("seed", "ceiling", "ws", "pools49")]
    phases += [(f"idle ({label})", f.get("cpu")) for label, f in (data.get("idle") or {}).items() if isinstance(f, dict)]
    for label, c in phases:
        if c and c["otherCores"] > OTHER_CORES_NOTE:
            out.append(f"During the {label} phase other processes used {c['otherCores']:.2f} cores of the machine: "
                       "the figures are lower than on an idle machine.")  # fmt: skip
    if not py_spy_available():
        out.append("py-spy is not installed: no profiles (pip install py-spy).")
    return out
