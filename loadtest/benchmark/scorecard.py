"""The issue's rows, in its order: each measured value against its must and goal, pass or
fail against the must, a ratio that holds on another machine where there is one, and
what limits the figure. Built from a run's data dict alone (a report can be rewritten)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadtest.benchmark.formatting import fmt
from loadtest.benchmark.watchers import held_within, own_p99

# the report counts MB of 2**20 bytes; the GB are 1000 of those, as its "today" figures were
MB_PER_GB = 1000
MAX_WATCHERS_TRIED = 1900


@dataclass(frozen=True)
class Score:
    measure: str
    filed: str
    must: str
    goal: str
    value: str = "not measured in this run"
    verdict: str = "–"
    ratio: str = "–"
    limited_by: str = "–"


def verdict(musts: list[bool], goals: list[bool]) -> str:
    if not all(musts):
        return "**FAIL**"
    return "pass (goal too)" if all(goals) else "pass (goal not)"


def top(by: dict[str, float], n: int = 3, unit: str = "", digits: int = 2) -> str:
    items = sorted(by.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v:.{digits}f}{unit}" for k, v in items)


def ingress_text(c: dict[str, Any]) -> str:
    ing, per = c.get("ingress"), c.get("perIngress") or {}
    if not ing or "perHttp" not in per:
        return "– (no ingress ceiling in this run)"
    http, ws = ing["http"], ing["ws"]
    text = (f"orders/s ÷ trivial HTTP req/s = **{per['perHttp']:.3f}** (HTTP {fmt(http['perS'])} req/s, client "
            f"{http['cpu']['clientCores']:.2f} cores; WS sessions {fmt(ws['perS'])}/s, client {ws['cpu']['clientCores']:.2f} cores)")  # fmt: skip
    if "perPair" in per:
        text += f"; ÷ one request + one WS session ({per['pairPerS']}/s) = {per['perPair']:.3f}"
    return text


def ceiling_score(data: dict[str, Any]) -> Score:
    s = Score("ceiling, zero latencies, no limits", "~20 orders/s", "≥ 150 orders/s", "≥ 300 orders/s")
    c = data.get("ceiling")
    if not c:
        return s
    tp = c["throughputPerS"]
    value = (f"{tp} orders/s over {c['durationS']:.0f} s, {c['concurrency']} clients (client {c['cpu']['clientCores']:.2f} "
             f"cores, {fmt(c.get('clientCpuMsPerOrder'))} ms/order)")  # fmt: skip
    return Score(s.measure, s.filed, s.must, s.goal, value, verdict([tp >= 150], [tp >= 300]), ingress_text(c),
                 data.get("ceilingLimitedBy", "–"))  # fmt: skip


def stages_text(unloaded: dict[str, Any]) -> str:
    stages = {k: v["p50"] for k, v in unloaded.get("stagesMs", {}).items() if v.get("p50") is not None}
    return f"p50 by stage (server stamps): {top(stages, 4, ' ms', 1)}" if stages else "–"


def one_client_score(data: dict[str, Any]) -> Score:
    s = Score("one client, zero latencies, p50 / p99", "77 / 163 ms", "≤ 20 / 50 ms", "≤ 8 / 20 ms")
    un = (data.get("ceiling") or {}).get("unloaded")
    if not un or un["e2eMs"]["p50"] is None:
        return s
    p50, p99 = un["e2eMs"]["p50"], un["e2eMs"]["p99"]
    value = f"{fmt(p50)} / {fmt(p99)} ms ({un['orders']} orders one at a time, POST → final event received)"
    why = f"POST answered p50 {fmt(un['postMs']['p50'])} ms; dispatch → final commit {fmt(un['executorMs']['p50'])} ms; " + stages_text(un)
    return Score(s.measure, s.filed, s.must, s.goal, value, verdict([p50 <= 20, p99 <= 50], [p50 <= 8, p99 <= 20]),
                 "–", why)  # fmt: skip


def engine_time_score(data: dict[str, Any]) -> Score:
    s = Score("engine's own time per order (dispatch → final commit), p50", "~34 ms", "≤ 8 ms", "≤ 3 ms")
    un = (data.get("ceiling") or {}).get("unloaded")
    if not un or un["executorMs"]["p50"] is None:
        return s
    p50 = un["executorMs"]["p50"]
    value = f"{fmt(p50)} ms (p99 {fmt(un['executorMs']['p99'])}; {un['executorMs']['n']} orders one at a time)"
    return Score(s.measure, s.filed, s.must, s.goal, value, verdict([p50 <= 8], [p50 <= 3]), "–",
                 "actor hops and a PostgreSQL commit per status; " + stages_text(un))  # fmt: skip


def at_rest(data: dict[str, Any], label: str) -> dict[str, Any] | None:
    return (data.get("idle") or {}).get(label)


def did_not_start(s: Score, figures: dict[str, Any]) -> Score:
    """A row whose engine never answered /health: failed, with the reason."""
    return Score(s.measure, s.filed, s.must, s.goal, "the engine did not come up", "**FAIL**", "–", figures["error"])


def moving_and_still(data: dict[str, Any], s: Score) -> tuple[dict[str, Any], dict[str, Any] | None] | Score:
    """The at-rest figures with the market moving and (None: not measured or not up) still; or the row as it
    stands when the first are missing or never came up."""
    moving, still = at_rest(data, "market moving"), at_rest(data, "market still")
    if not moving:
        return s
    if "error" in moving:
        return did_not_start(s, moving)
    return moving, (still if still and "error" not in still else None)


def idle_cpu_score(data: dict[str, Any]) -> Score:
    s = Score("idle CPU of the whole stack", "~0.37 cores", "≤ 0.08 cores", "≤ 0.03 cores")
    rest = moving_and_still(data, s)
    if isinstance(rest, Score):
        return rest
    moving, still = rest
    cores = moving["cpu"]["engineCores"]
    value = f"{cores:.3f} cores, market moving (defaults), over {moving['cpu']['seconds']:.0f} s"
    if still:
        value += f"; market still: {still['cpu']['engineCores']:.3f} cores"
    return Score(s.measure, s.filed, s.must, s.goal, value, verdict([cores <= 0.08], [cores <= 0.03]), "–",
                 "background work by role (cores): " + top(moving["cpu"]["engineByRole"], 4, "", 3))  # fmt: skip


def memory_parts(memory: dict[str, Any], n: int = 4) -> str:
    parts = []
    for k, v in list(memory["byRole"].items())[:n]:
        each = f" ({v['processes']} × {v['MB'] / v['processes']:.0f} MB)" if v["processes"] > 1 else ""
        parts.append(f"{k} {v['MB']:.0f} MB{each}")
    return ", ".join(parts)


def memory_score(data: dict[str, Any]) -> Score:
    s = Score("memory (PSS) of the whole stack, idle", "~2.1 GB", "≤ 1.5 GB", "≤ 1.2 GB")
    rest = moving_and_still(data, s)
    if isinstance(rest, Score):
        return rest
    moving, still = rest
    mem = moving["memory"]
    gb = mem["totalMB"] / MB_PER_GB
    value = f"{gb:.2f} GB ({mem['totalMB']:.0f} MB {mem['kind']}, {mem['processes']} processes), market moving"
    if still:
        value += f"; market still: {still['memory']['totalMB'] / MB_PER_GB:.2f} GB"
    return Score(s.measure, s.filed, s.must, s.goal, value, verdict([gb <= 1.5], [gb <= 1.2]), "–",
                 "a process per actor: " + memory_parts(mem))  # fmt: skip


def start_score(data: dict[str, Any]) -> Score:
    s = Score("start to first healthy answer", "22–24 s", "≤ 15 s", "≤ 10 s")
    moving = at_rest(data, "market moving")
    if not moving:
        return s
    if "error" in moving:
        return did_not_start(s, moving)
    t = moving["startToHealthyS"]
    others = {k: v for k, v in (data.get("starts") or {}).items() if v is not None}
    value = f"{t:.1f} s (defaults)" + (f"; other engines of this run: {top(others, 6, ' s', 1)}" if others else "")
    up = moving.get("engineUpS")
    why = (f"`dexengine up` says {up:.1f} s (servers → schema → Ray → actors → Serve; not timed apart here); the "
           f"other {t - up:.1f} s: the child's Python start and imports, the first /health" if up is not None else
           "the start's steps (servers → schema → Ray → actors → Serve) are not timed apart here")  # fmt: skip
    return Score(s.measure, s.filed, s.must, s.goal, value, verdict([t <= 15], [t <= 10]), "–", why)


def watchers_score(data: dict[str, Any]) -> Score:
    s = Score("WebSocket watchers held, their own events p99 ≤ 100 ms", "< 200", "≥ 2,000", "≥ 5,000")
    wt = data.get("watchers")
    if not wt or not wt["steps"]:
        return s
    # judged again from the steps: a report written before the judge was every watcher's own events
    n, over = held_within(wt["steps"], wt["budgetMs"])
    tried = [st["watchers"] for st in wt["steps"]]
    value = f"{n} (judged by every watcher's own events; steps tried {', '.join(map(str, tried))}"
    if over is not None:
        value += f"; at {over['watchers']}: p99 {fmt(own_p99(over), 0)} ms"
    value += ")"
    why = data.get("watchersLimitedBy", "–")
    if max(tried) < 2000:
        why += (f". Subset: the must (2,000) was not tried; this phase tries at most {MAX_WATCHERS_TRIED} (the API "
                "replica takes 2,000 requests at once, max_ongoing_requests)")  # fmt: skip
    return Score(s.measure, s.filed, s.must, s.goal, value, verdict([n >= 2000], [n >= 5000]), "–", why)


def seed_ratios(data: dict[str, Any]) -> str:
    """Ratios that can fail, beside the two identities."""
    seed, eb = data["seed"], data.get("executorBound")
    parts = []
    if seed.get("executorBoundPerS") and seed.get("rateLimitPerS"):
        parts.append(f"can fail: executors / mean order time ÷ the rate = {seed['executorBoundPerS'] / seed['rateLimitPerS']:.2f} "
                     "(under 1, the engine and not the limiter would bind)")  # fmt: skip
    mean, simulated = seed["meanOrderS"], seed.get("simulatedMeanS")
    if mean and simulated and simulated > mean:  # recorded before the chain was taken into account
        parts.append(f"the settings' simulated delays ({simulated:.2f} s) exceed the order time measured ({mean} s): "
                     "not what ran (the chain on), no ratio from them")  # fmt: skip
    elif mean and simulated:
        parts.append(f"can fail: simulated delays / mean order time = {simulated / mean:.3f} ({simulated:.2f} s of "
                     f"{mean} s: the rest is the engine's)")  # fmt: skip
    if eb:
        parts.append(f"no rate limit: {eb['throughputPerS']}/s ÷ executors / mean order time = {fmt(eb['ratio'], 3)} "
                     "(Little's law: an identity)")  # fmt: skip
        if eb.get("simulatedMeanS"):
            bound = eb["settings"]["executors"] / eb["simulatedMeanS"]
            parts.append(f"can fail: no rate limit ÷ executors / simulated delays = {eb['throughputPerS'] / bound:.3f}")
    return "; ".join(parts) or "–"


def seed_score(data: dict[str, Any]) -> Score:
    s = Score("seed defaults (10 slots, 100/min, 0.2 s quotes, 2–3 s execution) vs the limit", "0.997", "≥ 0.97",
              "≥ 0.99")  # fmt: skip
    seed = data.get("seed")
    if not seed or seed["ratio"] is None:
        return s
    r = seed["ratio"]
    what = ("the limit is the configured rate: this shows the limiter works, nothing more"
            if seed["limitedBy"] == "rate limit" else "the limit is executors / mean order time: Little's law")
    value = (f"{r:.3f}: {seed['throughputPerS']}/s of a {seed['limitPerS']}/s limit ({what}); client "
             f"{seed['cpu']['clientCores']:.2f} cores")  # fmt: skip
    if seed.get("simulatedMeanS") is None:
        value += f"; the chain on: execution is the chain's, mean order time {seed['meanOrderS']} s"
    why = (f"{seed['limitedBy']}: {seed['rateLimitPerS']}/s; executors / mean order time would allow "
           f"{seed['executorBoundPerS']}/s")  # fmt: skip
    return Score(s.measure, s.filed, s.must, s.goal, value, verdict([r >= 0.97], [r >= 0.99]), seed_ratios(data), why)


def pools49_score(data: dict[str, Any]) -> Score:
    s = Score("a market of 49 pools: start, idle CPU, idle PSS", "51.5 s, 0.99 cores, 4.6 GB",
              "≤ 25 s, ≤ 0.15 cores, ≤ 3 GB", "≤ 15 s, ≤ 0.05 cores, ≤ 2 GB")  # fmt: skip
    p = data.get("pools49")
    if not p:
        return s
    if "error" in p:
        return did_not_start(s, p)
    t, cores, gb = p["startToHealthyS"], p["cpu"]["engineCores"], p["memory"]["totalMB"] / MB_PER_GB
    value = (f"{t:.1f} s, {cores:.3f} cores (over {p['cpu']['seconds']:.0f} s, the market moving), {gb:.2f} GB "
             f"({p['memory']['processes']} processes)")  # fmt: skip
    pool = p.get("poolActor")
    why = (f"a pool actor: {pool['cpuMsPerS']:.1f} ms of CPU a second, {pool['MB']:.0f} MB ({pool['pools']} pools); "
           if pool else "")  # fmt: skip
    why += "CPU by role: " + top(p["cpu"]["engineByRole"], 3, "", 3) + "; memory: " + memory_parts(p["memory"], 3)
    return Score(s.measure, s.filed, s.must, s.goal, value,
                 verdict([t <= 25, cores <= 0.15, gb <= 3], [t <= 15, cores <= 0.05, gb <= 2]), "–", why)  # fmt: skip


ROWS: tuple[Callable[[dict[str, Any]], Score], ...] = (
    ceiling_score, one_client_score, engine_time_score, idle_cpu_score, memory_score, start_score,
    watchers_score, seed_score, pools49_score,
)  # fmt: skip


def scorecard(data: dict[str, Any]) -> list[Score]:
    return [row(data) for row in ROWS]


def scorecard_lines(data: dict[str, Any]) -> list[str]:
    """The rows as a Markdown table, headed by the code they ran on."""
    tree = data.get("tree")
    if tree is None:
        code = "the tree's state was not recorded (a report from before it was): no figure here may go into the README"
    else:
        code = "clean tree" if tree["clean"] else "NOT a clean tree: no figure here may go into the README"
    lines = [f"## The issue's rows (commit {tree['commit'] if tree else data['machine']['commit']}, {code}"
             f"{'; --quick: shorter windows' if data.get('quick') else ''})", "",
             "| measure | at filing | measured | must | goal | against the must | ratio | limited by |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in scorecard(data):
        lines.append(f"| {s.measure} | {s.filed} | {s.value} | {s.must} | {s.goal} | {s.verdict} | {s.ratio} | {s.limited_by} |")
    lines.append("")
    return lines
