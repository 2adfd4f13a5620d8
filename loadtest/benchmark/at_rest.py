"""The phases at rest, on ``loadtest.idle``'s measure (start → first healthy answer, then
nothing sent: every CPU second is background work, and the PSS of the whole stack):

* ``idle`` — configs/engine.yaml as it is (the market moving), then, labelled apart,
  the market still (``MARKET__ENABLED=false``);
* ``pools49`` — the default market with each of its 7 pools 7 times (49 pools),
  with what one pool actor costs at rest.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any

from loadtest.benchmark.phase import log
from loadtest.engine_process import PROFILES
from loadtest.idle import measure_idle, pool_actor_cost
from loadtest.market_copies import write_copied_market

MARKET_STILL = {"MARKET__ENABLED": "false"}
POOLS_TIMES = 7
MOVING, STILL = "market moving", "market still"
UP_IN = re.compile(r"engine up in ([\d.]+)s")
# the last line of a Python traceback: "package.module.SomeError: what happened"
RAISED = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Timeout)[\w]*: .+$", re.MULTILINE)


def last_raised(log_text: str) -> str | None:
    """The last exception a log shows (what stopped an engine that did not come up)."""
    found = RAISED.findall(log_text)
    return found[-1][:300] if found else None


def engine_up_s(log_text: str) -> float | None:
    """What ``dexengine up`` says its start took (servers, schema, Ray, actors, Serve), from its log."""
    found = UP_IN.search(log_text)
    return float(found.group(1)) if found else None


async def measured(name: str, settings: dict[str, str], settle_s: float, measure_s: float, logs: Path) -> dict[str, Any]:
    log(f"{name}: starting an engine, then {settle_s:.0f} s to settle and {measure_s:.0f} s measured at rest")
    log_path = logs / f"engine-{name.replace(' ', '-').replace('(', '').replace(')', '')}.log"
    try:
        figures = await asyncio.to_thread(measure_idle, settings, settle_s=settle_s, measure_s=measure_s,
                                          log_path=log_path)  # fmt: skip
    except RuntimeError as exc:  # the engine did not come up: a figure of its own, the run goes on
        raised = last_raised(log_path.read_text(errors="replace")) if log_path.exists() else None
        error = f"{exc}" + (f" (its last error: {raised})" if raised else "")
        log(f"{name}: {error}")
        return {"error": error, "settings": settings}
    figures["settings"] = settings
    figures["engineUpS"] = engine_up_s(log_path.read_text(errors="replace")) if log_path.exists() else None
    log(f"{name}: up in {figures['startToHealthyS']} s; idle {figures['cpu']['engineCores']:.3f} cores, "
        f"{figures['memory']['totalMB']:.0f} MB {figures['memory']['kind']}")  # fmt: skip
    return figures


async def phase_idle(settle_s: float, measure_s: float, logs: Path) -> dict[str, Any]:
    return {
        "settleS": settle_s,
        "measureS": measure_s,
        MOVING: await measured("idle (market moving)", dict(PROFILES["seed"]), settle_s, measure_s, logs),
        STILL: await measured("idle (market still)", dict(MARKET_STILL), settle_s, measure_s, logs),
    }


async def phase_pools49(settle_s: float, measure_s: float, logs: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dexengine-market-") as tmp:
        market = write_copied_market(POOLS_TIMES, Path(tmp))
        figures = await measured("pools49", {"MARKET__CONFIG": str(market)}, settle_s, measure_s, logs)
    figures["settings"] = {"MARKET__CONFIG": f"the default market, each pool {POOLS_TIMES} times"}
    cost = None if "error" in figures else pool_actor_cost(figures["cpu"], figures["memory"])
    return {"settleS": settle_s, "measureS": measure_s, "poolsTimes": POOLS_TIMES, **figures, "poolActor": cost}
