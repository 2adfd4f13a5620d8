"""The report's chart: a panel for the seed run, the ceiling and the watchers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from loadtest.benchmark.watchers import own_p99

SMOOTHING_S = 3  # the ceiling's completions per second, as a moving mean


def seed_panel(ax: Any, d: dict[str, Any]) -> None:
    cum = d["cumulative"]
    ax.step(cum["t"], cum["n"], where="post", color="tab:blue", label="orders completed (cumulative)")
    end = max(cum["t"]) if cum["t"] else 60
    ax.plot([0, end], [0, d["limitPerS"] * end], color="tab:red", ls="--",
            label=f"limit {d['limitPerS']}/s from the first start")  # fmt: skip
    if d["wholeMinutes"]:
        m0 = d["meanOrderS"]
        ax.axvspan(m0, m0 + d["windowS"], color="tab:gray", alpha=0.12, label="measured window (first)")
    ax.set_xlabel("seconds since the first order started")
    ax.set_ylabel("orders")
    ratio = "n/a (under a minute)" if d["ratio"] is None else d["ratio"]
    ax.set_title(f"1. seed defaults: {d['throughputPerS']}/s sustained, ratio {ratio}")
    ax.legend(loc="upper left", fontsize=8)


def ceiling_panel(ax: Any, d: dict[str, Any]) -> None:
    s = d["series"]
    width = SMOOTHING_S
    t = np.asarray(s["t"])
    c = np.asarray(s["completed"], dtype=float)
    if len(c):
        kernel = np.ones(width) / width
        smooth = np.convolve(c, kernel, mode="same")
        ax.plot(t, smooth, color="tab:blue", label=f"completed orders/s ({width}-s mean)")
    ax.set_title(f"2. engine ceiling (zero latency, no rate limit): {d['throughputPerS']} orders/s")
    ax.set_xlabel("seconds")
    ax.set_ylabel("orders/s")
    ax2 = ax.twinx()
    p50 = [np.nan if v is None else v for v in s["e2eP50"]]
    p99 = [np.nan if v is None else v for v in s["e2eP99"]]
    ax2.plot(t, p50, color="tab:green", alpha=0.6, lw=0.8, label="e2e p50 ms")
    ax2.plot(t, p99, color="tab:orange", alpha=0.6, lw=0.8, label="e2e p99 ms")
    ax2.set_ylabel("end-to-end latency, ms")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)


def watchers_panel(ax: Any, d: dict[str, Any]) -> None:
    steps = d["steps"]
    w = [s["watchers"] for s in steps]
    held = [(s["heldDeliveryMs"] if s["heldDeliveryMs"]["n"] else s["probeDeliveryMs"]) for s in steps]
    ax.plot(w, [own_p99(s) for s in steps], "o-", lw=2, label="every watcher's own events: p99 (the judge)")
    ax.plot(w, [h["p99"] for h in held], "o:", label="probe orders while held: p99")
    ax.plot(w, [s["burstDeliveryMs"]["p99"] for s in steps], "x--", label="holders' fan-out burst: p99")
    ax.axhline(d["budgetMs"], color="tab:red", ls="--", label=f"{d['budgetMs']:.0f} ms")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent WebSocket watchers")
    ax.set_ylabel("delivery latency, ms")
    ax.set_title(f"4. watchers: {d['maxWithinBudget']} within {d['budgetMs']:.0f} ms p99")
    ax.legend(fontsize=8)


PANELS = {"seed": seed_panel, "ceiling": ceiling_panel, "watchers": watchers_panel}


def chart(data: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [k for k in PANELS if data.get(k)]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.6 * len(panels)), squeeze=False)
    for ax, key in zip(axes[:, 0], panels, strict=True):
        PANELS[key](ax, data[key])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
