"""Percentiles and latency summaries, the numbers every phase reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def pct(values: Iterable[float], q: float) -> float | None:
    data = [v for v in values if v is not None]
    return float(np.percentile(data, q)) if data else None


def stats_ms(values_s: Iterable[float]) -> dict[str, Any]:
    data = [v * 1000 for v in values_s if v is not None]
    if not data:
        return {"n": 0, "p50": None, "p99": None, "mean": None, "max": None}
    arr = np.asarray(data)
    return {
        "n": len(data),
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
