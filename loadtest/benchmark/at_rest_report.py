"""The report's sections for the phases at rest: ``idle`` and ``pools49``."""

from __future__ import annotations

from typing import Any

from loadtest.benchmark.formatting import fmt

ROLE_HEAD = ["| role | idle cores | PSS MB | processes |", "|---|---:|---:|---:|"]


def role_rows(figures: dict[str, Any]) -> list[str]:
    by_memory = figures["memory"]["byRole"]
    roles = sorted(set(figures["cpu"]["engineByRole"]) | set(by_memory),
                   key=lambda k: -figures["cpu"]["engineByRole"].get(k, 0.0))  # fmt: skip
    return [f"| {k} | {figures['cpu']['engineByRole'].get(k, 0.0):.3f} | {by_memory.get(k, {}).get('MB', 0):.0f} | "
            f"{by_memory.get(k, {}).get('processes', 0)} |" for k in roles]  # fmt: skip


def at_rest_line(label: str, f: dict[str, Any]) -> str:
    if "error" in f:
        return f"- **{label}**: the engine did not come up: {f['error']}"
    cpu, mem = f["cpu"], f["memory"]
    return (f"- **{label}**: start → first healthy answer **{f['startToHealthyS']:.1f} s**; idle CPU of the stack "
            f"**{cpu['engineCores']:.3f} cores** over {cpu['seconds']:.0f} s (machine {cpu['machineCores']:.2f}, "
            f"the meter {cpu['clientCores']:.3f}, other processes {cpu['otherCores']:.2f}); memory "
            f"**{mem['totalMB']:.0f} MB {mem['kind']}** in {mem['processes']} processes.")  # fmt: skip


def idle_section(idle: dict[str, Any]) -> list[str]:
    lines = ["## 0. At rest: start, idle CPU, idle memory", "",
             f"`loadtest.idle`'s measure: a fresh engine, start → first healthy `/health`, {idle['settleS']:.0f} s to "
             f"settle, then {idle['measureS']:.0f} s in which nothing is sent to it (every CPU second is background "
             "work), then the PSS of the whole stack. The defaults (configs/engine.yaml: the market moving), then "
             "the same with the market still (`MARKET__ENABLED=false`), each on an engine of its own.", ""]  # fmt: skip
    for label in ("market moving", "market still"):
        if idle.get(label):
            lines.append(at_rest_line(label, idle[label]))
    for label in ("market moving", "market still"):
        if idle.get(label) and "error" not in idle[label]:
            lines += ["", f"By role, {label}:", "", *ROLE_HEAD, *role_rows(idle[label])]
    lines.append("")
    return lines


def pools49_section(p: dict[str, Any]) -> list[str]:
    pool = p.get("poolActor")
    lines = ["## 0b. A market of 49 pools at rest", "",
             f"The default market with each of its pools {p['poolsTimes']} times (copies at the same price, so the "
             f"market's arbitrage keeps them together), measured as in §0 ({p['settleS']:.0f} s settle, "
             f"{p['measureS']:.0f} s measured).", "",
             at_rest_line(f"{pool['pools'] if pool else '49'} pools", p)]  # fmt: skip
    if pool:
        lines.append(f"- One pool actor at rest: **{fmt(pool['cpuMsPerS'])} ms of CPU a second, {fmt(pool['MB'])} MB**.")
    lines += ["", *ROLE_HEAD, *role_rows(p), ""] if "error" not in p else [""]
    return lines
