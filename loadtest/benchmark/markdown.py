"""The benchmark's Markdown report: the figures, then a section per phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.benchmark.at_rest_report import idle_section, pools49_section
from loadtest.benchmark.formatting import MS_HEAD, cpu_line, fmt, ms_row
from loadtest.benchmark.machine import tree_text
from loadtest.benchmark.scorecard import scorecard_lines
from loadtest.benchmark.watchers import own_p99


def header(data: dict[str, Any], chart: Path | None) -> list[str]:
    m = data["machine"]
    lines = [
        f"# Benchmark — {data['started']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB; Python {m['python']}, Ray {m['ray']}; "
        f"{m['os']}. Load average at start: {m['load1']}. Code: commit "
        f"{tree_text(data['tree']) if data.get('tree') else m['commit']}.",
        f"Command: `{data['command']}` (total {data['elapsedS']:.0f} s).",
        "Client: one asyncio process (httpx + websockets) on the same machine, sharing its cores with the "
        "engine; timestamps: the engine's event `timestamp` (PostgreSQL `clock_timestamp()` at the history "
        "insert, just before commit) against the client's `time.time()` on arrival — one clock.",
        "",
    ]
    lines += scorecard_lines(data)
    if chart is not None:
        lines += [f"![throughput and latency over time]({chart.name})", ""]
    lines += ["## Figures", "", "| # | figure | value | limit / goal | ratio | limited by |", "|---|---|---|---|---|---|"]
    lines += [f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {row[4]} | {row[5]} |" for row in data["summary"]]  # fmt: skip
    lines.append("")
    return lines


def simulated_text(seed: dict[str, Any]) -> str:
    if seed.get("simulatedMeanS") is None:
        return "the chain on: a swap lands when its slots say, so the settings tell no simulated time to take off"
    return (f"simulated delays {seed['simulatedMeanS']:.2f} s on average: engine overhead ≈ "
            f"{fmt(seed['overheadMeanMs'])} ms per order")  # fmt: skip


def seed_section(seed: dict[str, Any]) -> list[str]:
    st = seed["settings"]
    return [
        "## 1. Seed defaults: sustained throughput",
        "",
        f"Engine: {st['executors']} executors, {st['ratePerMinute']} orders per {st['rateWindowS']:g} s, "
        f"quotes {st['quoteS']} s, execution {st['executionS'][0]}–{st['executionS'][1]} s, market "
        f"{'on' if st['market'] else 'off'}, chain {'on' if st.get('chain') else 'off'}. A backlog of {seed['backlog']} orders in flight for "
        f"{seed['durationS']:.0f} s ({seed['submitted']} submitted, {seed['finished']} finished: "
        f"{seed['outcomes']}; {seed['retried']} retried).",
        "",
        f"- Mean order time (dispatcher start → final commit): **{seed['meanOrderS']} s** ({simulated_text(seed)}; "
        f"p50 {fmt(seed['orderTimeMs']['p50'], 0)} ms, p99 {fmt(seed['orderTimeMs']['p99'], 0)} ms).",
        f"- Theoretical limit = min(rate limit {seed['rateLimitPerS']}/s, executors / mean order time "
        f"{seed['executorBoundPerS']}/s) = **{seed['limitPerS']}/s** — {seed['limitedBy']}.",
        f"- Sustained: {seed['completedInWindow']} orders completed in {seed['windowS']:.0f} s "
        f"({seed['wholeMinutes']} whole minute(s); the mean over {seed['windowsAveraged']} windows starting "
        f"1 s apart from the first start + one order time, counts {seed['completedRange']}) = "
        f"**{seed['throughputPerS']}/s ({seed['throughputPerMin']}/min), ratio {fmt(seed['ratio'], 3)}** "
        f"(goal ≥ 0.97{'; the run was under a whole minute of the limiter: no ratio' if seed['ratio'] is None else ''}). "
        f"Starts in the window: ratio {seed['startsRatio']}.",
        f"- The limiter: at most {seed['mostStartsInAWindow']} starts in any {st['rateWindowS']:g} s "
        f"(less 50 ms of stamp jitter; limit {st['ratePerMinute']}); the tightest {st['ratePerMinute'] + 1} "
        f"consecutive starts spanned {fmt(seed['tightestSpanOfLimitPlusOneS'], 3)} s (start stamps are "
        "taken by the dispatcher after the limiter's grant, on another clock and event loop).",
        f"- Client-side end to end (mostly queueing behind the limit): p50 {fmt(seed['e2eMs']['p50'], 0)} ms, "
        f"p99 {fmt(seed['e2eMs']['p99'], 0)} ms; queue wait p50 {fmt(seed['queueWaitMs']['p50'], 0)} ms.",
        f"- {cpu_line(seed['cpu'])}",
        "",
    ]


def executor_bound_section(eb: dict[str, Any]) -> list[str]:
    return [
        "## 1b. Seed latencies without the rate limit: executor-bound",
        "",
        f"- Mean order time {eb['meanOrderS']} s; limit executors / order time = {eb['executorBoundPerS']}/s; "
        f"sustained {eb['throughputPerS']}/s over {eb['windowS']:.0f} s: **ratio {eb['ratio']}**.",
        f"- {cpu_line(eb['cpu'])}",
        "",
    ]


def ceiling_section(ceil_: dict[str, Any]) -> list[str]:
    at, un = ceil_["atCeiling"], ceil_["unloaded"]
    return [
        "## 2. Engine ceiling: no simulated delay, no rate limit, no market",
        "",
        f"A closed loop of {ceil_['concurrency']} clients for {ceil_['durationS']:.0f} s, each: POST the order, "
        "open its WebSocket, wait for the final event, repeat. Throughput counts orders whose final event "
        f"reached the client. **{ceil_['throughputPerS']} orders/s end to end** ({ceil_['orders']} orders, "
        f"{ceil_['outcomes']}; {at['errors']} client errors {at['errorSamples']}).",
        "",
        "Per order — unloaded (one at a time: the engine's own overhead, the whole time is overhead at zero "
        f"latency; {un['orders']} orders) and at the ceiling:",
        "",
        MS_HEAD,
        ms_row("unloaded: POST → final event received (overhead)", un["e2eMs"]),
        ms_row("unloaded: POST answered (202)", un["postMs"]),
        ms_row("unloaded: accept → dispatcher start (queue)", un["queueWaitMs"]),
        ms_row("unloaded: dispatcher start → final commit (executor)", un["executorMs"]),
        ms_row("unloaded: accept commit → final commit", un["acceptToFinalCommitMs"]),
        ms_row("ceiling: POST → final event received", at["e2eMs"]),
        ms_row("ceiling: POST answered (202)", at["postMs"]),
        ms_row("ceiling: accept → dispatcher start (queue)", at["queueWaitMs"]),
        ms_row("ceiling: dispatcher start → final commit (executor)", at["executorMs"]),
        ms_row("ceiling: final commit → received (live)", at["finalDeliveryMs"]),
        "",
        f"At the ceiling {at['finalViaReplay']} final events were committed before the client's socket was "
        "open (they came from the replay). Stage times at the ceiling (server timestamps):",
        "",
        MS_HEAD,
        *[ms_row(k, v) for k, v in at["stagesMs"].items()],
        "",
        f"- {cpu_line(ceil_['cpu'])}",
        f"- Unloaded: {cpu_line(un['cpu'])}",
        "",
        f"Engine CPU per order at the ceiling: **{fmt(ceil_['engineCpuMsPerOrder'])} ms**, net of the engine's "
        f"idle CPU measured in this phase before any order ({fmt(ceil_.get('idleEngineCores'), 3)} cores; "
        f"{fmt(ceil_.get('engineCpuMsPerOrderGross'))} ms with it); the client: "
        f"{fmt(ceil_['clientCpuMsPerOrder'])} ms — by process role (net of its idle CPU):",
        "",
        "| role | CPU ms per order |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in ceil_["cpuMsPerOrder"].items() if v >= 0.5],
        "",
        *ingress_section(ceil_),
        *profiles_section(ceil_["profiles"]),
    ]


def ingress_section(ceil_: dict[str, Any]) -> list[str]:
    ing = ceil_.get("ingress")
    if not ing:
        return []
    per = ceil_.get("perIngress") or {}
    lines = [f"The ingress's own ceiling on this engine (the same Serve proxy and API replica), {ing['concurrency']} "
             f"clients in a closed loop, {ing['durationS']:.0f} s each:", "",
             "| what | per s | p50 ms | p99 ms | errors | engine cores | client cores |",
             "|---|---:|---:|---:|---|---:|---:|"]  # fmt: skip
    for key in ("http", "ws"):
        r = ing[key]
        lines.append(f"| {r['what']} | {fmt(r['perS'])} | {fmt(r['latencyMs']['p50'])} | {fmt(r['latencyMs']['p99'])} | "
                     f"{r['errors'] or 0} | {r['cpu']['engineCores']:.2f} | {r['cpu']['clientCores']:.2f} |")  # fmt: skip
    lines += ["", f"Orders/s ÷ trivial HTTP req/s = **{fmt(per.get('perHttp'), 3)}**; orders/s ÷ the rate of one trivial "
              f"request plus one trivial WebSocket session ({fmt(per.get('pairPerS'))}/s: what an order needs of the "
              f"ingress at least) = **{fmt(per.get('perPair'), 3)}**.", ""]  # fmt: skip
    return lines


def profiles_section(profiles: list[dict[str, Any]]) -> list[str]:
    if not profiles:
        return []
    lines = ["py-spy (12 s, 50 Hz, at the ceiling) on the busiest Python processes: the share of samples "
             "in which the process was busy, then where that time goes (own time: the innermost Python "
             "frame; `Thread.run` / `Worker.main_loop` / `_run_user_code_event_loop` as innermost frame "
             "mean native code under them — Ray's C++ core worker, gRPC, the event loop's C parts):",
             ""]  # fmt: skip
    for p in profiles:
        if "error" in p:
            lines.append(f"- {p['role']} (pid {p['pid']}): py-spy failed: {p['error']}")
            continue
        own = "; ".join(f"{f} {s:.0%}" for f, s in p["topOwn"][:6])
        inc = "; ".join(f"{f} {s:.0%}" for f, s in p["topInclusive"][:8])
        lines.append(f"- **{p['role']}** (pid {p['pid']}, busy {p['busyShare']:.0%} of samples). "
                     f"Own time: {own}. Inclusive: {inc}.")  # fmt: skip
    lines.append("")
    return lines


def delivery_section(ws: dict[str, Any]) -> list[str]:
    return [
        "## 3. WebSocket delivery latency (engine idle-ish)",
        "",
        f"One new order every {ws['intervalS']} s on the seed's latencies (market off, starts paced at 3/s), "
        f"each followed on its own socket; only events committed after the socket opened count "
        f"({ws['orders']} orders, {ws['errors']} errors).",
        "",
        MS_HEAD,
        ms_row("all live events", ws["deliveryMs"]),
        *[ms_row(k, v) for k, v in ws["byStatusMs"].items()],
        ms_row("WebSocket handshake (after the 202)", ws["connectMs"]),
        "",
        f"- {cpu_line(ws['cpu'])}",
        "",
    ]


def watchers_section(wt: dict[str, Any]) -> list[str]:
    lines = [
        "## 4. Concurrent WebSocket watchers on one node",
        "",
        "Each step holds N sockets at once: the engine starts 3 orders a second; fillers first (unwatched, "
        "time for the sockets to connect), then probe orders (2 watchers each), then 4 holder orders carrying "
        "the other watchers (held for the whole step; their events at the end fan out to N/4 sockets at once). "
        "**A step is judged by every watcher's own events** (each socket's order's events committed after it "
        "opened: the probes' and the holders' alike); the probes' events while every holder was held and the "
        f"holders' burst are shown apart. Budget: p99 ≤ {wt['budgetMs']:.0f} ms. "
        f"**Most watchers within budget: {wt['maxWithinBudget']}** "
        f"{'(stopped at the first step over budget)' if wt['stoppedEarly'] else '(the largest step tried)'}.",
        "",
        "| watchers | peak open | connect/s | connect p99 ms | own events: n | p50 ms | **p99 ms** | probes while held: n | p99 ms | burst fan-out | burst p99 ms | errors | engine cores | client cores |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for s in wt["steps"]:
        h = s["heldDeliveryMs"] if s["heldDeliveryMs"]["n"] else s["probeDeliveryMs"]
        own = s.get("ownDeliveryMs") or {"n": "–", "p50": None}
        lines.append(
            f"| {s['watchers']} | {s['peakOpen']} | {fmt(s['connectRatePerS'])} | {fmt(s['connectMs']['p99'], 0)} | "
            f"{own['n']} | {fmt(own['p50'])} | **{fmt(own_p99(s))}** | {h['n']} | {fmt(h['p99'])} | "
            f"{s['burstFanout']} | {fmt(s['burstDeliveryMs']['p99'])} | "
            f"{s['errors'] or 0} | {s['cpu']['engineCores']:.2f} | {s['cpu']['clientCores']:.2f} |"
        )
    lines.append("")
    return lines


def memory_section(mem: dict[str, Any]) -> list[str]:
    lines = ["## 5. Memory of the whole stack", "",
             "Sum over the engine's process tree (the `dexengine up` process, Ray's GCS, raylet and agents, "
             "Serve's controller, proxy and replica, every actor, PostgreSQL and its backends, Redis); "
             "PSS counts shared pages once. Peak of the samples taken in each state.", "",
             "| engine | state | PSS MB | RSS MB (sum) | processes | largest parts (PSS MB) |",
             "|---|---|---:|---:|---:|---|"]  # fmt: skip
    for phase, states in mem.items():
        for state, m in states.items():
            parts = ", ".join(f"{k} {v['MB']:.0f} ({v['processes']})" for k, v in list(m["byRole"].items())[:7])
            lines.append(f"| {phase} | {state} | {m['totalMB']:.0f} | {m['rssTotalMB']:.0f} | {m['processes']} | {parts} |")
    lines.append("")
    return lines


def notes_section(notes: list[str]) -> list[str]:
    return ["## Notes", "",
            "- Every engine runs with the API's per-client limits off (order submissions per client and "
            "minute, WebSockets per client): the benchmark's one process stands for many clients.",
            *[f"- {n}" for n in notes], ""]  # fmt: skip


# the phases' sections, in the report's order: (key in the run's data, writer)
SECTIONS = (
    ("idle", idle_section),
    ("pools49", pools49_section),
    ("seed", seed_section),
    ("executorBound", executor_bound_section),
    ("ceiling", ceiling_section),
    ("ws", delivery_section),
    ("watchers", watchers_section),
    ("memory", memory_section),
)


def write_report(data: dict[str, Any], path: Path, chart: Path | None) -> str:
    lines = header(data, chart)
    for key, section in SECTIONS:
        if data.get(key):
            lines += section(data[key])
    lines += notes_section(data.get("notes", []))
    text = "\n".join(lines)
    path.write_text(text)
    return text
