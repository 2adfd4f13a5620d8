"""An order's chain transaction options: ``priorityFee``, ``maxPriorityFeeLamports``, ``jitoTipLamports``.

``priorityFee`` is a level (``auto``, the default: a percentile of recent
landed fees; ``low`` p25, ``medium`` p50, ``high`` p75, ``veryHigh`` p95) or a
compute-unit price in micro-lamports per CU; ``maxPriorityFeeLamports`` caps
what the level may cost; ``jitoTipLamports`` > 0 sends the order as a
protected Jito bundle (at least 1,000 lamports). Problems are the order's
422s (``INVALID_PRIORITY_FEE``, ``INVALID_TIP``), named by field.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from sim.chain_fees import FEE_LEVELS, LAMPORTS_PER_SOL, MIN_JITO_TIP_LAMPORTS

MAX_CU_PRICE = 10**12  # micro-lamports per CU: 1.4 SOL for a whole 1.4M-CU transaction; far above any market
MAX_LAMPORTS = 10 * LAMPORTS_PER_SOL  # a fee cap or a tip above 10 SOL is a typo


class ProblemSink(Protocol):
    def add(self, code: str, field: str, message: str, **extra: Any) -> None: ...


def _whole(raw: Any, field: str, code: str, problems: ProblemSink, *, low: int, high: int) -> int | None:
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        problems.add(code, field, f"{raw!r} is not a number")
        return None
    if not value.is_finite() or value != value.to_integral_value():
        problems.add(code, field, "must be a whole number")
        return None
    if not low <= value <= high:
        problems.add(code, field, f"must be between {low:,} and {high:,}, got {value}", min=low, max=high)
        return None
    return int(value)


def _priority_fee(raw: Any, problems: ProblemSink) -> str | int | None:
    if isinstance(raw, str) and not raw.strip().lstrip("-").replace(".", "", 1).isdigit():
        by_lower = {level.lower(): level for level in FEE_LEVELS}
        level = by_lower.get(raw.strip().lower())
        if level is None:
            problems.add("INVALID_PRIORITY_FEE", "priorityFee", f"unknown level {raw!r}: one of {', '.join(FEE_LEVELS)}, "
                         "or micro-lamports per compute unit", levels=list(FEE_LEVELS))  # fmt: skip
        return level
    return _whole(raw, "priorityFee", "INVALID_PRIORITY_FEE", problems, low=0, high=MAX_CU_PRICE)


def tx_options(req: Any, problems: ProblemSink) -> dict[str, Any] | None:
    """The options as stored with the order (only those sent); None when none was sent."""
    options: dict[str, Any] = {}
    if req.priority_fee is not None:
        options["priorityFee"] = _priority_fee(req.priority_fee, problems)
    if req.max_priority_fee_lamports is not None:
        options["maxPriorityFeeLamports"] = _whole(req.max_priority_fee_lamports, "maxPriorityFeeLamports",
                                                   "INVALID_PRIORITY_FEE", problems, low=0, high=MAX_LAMPORTS)  # fmt: skip
    if req.jito_tip_lamports is not None:
        tip = _whole(req.jito_tip_lamports, "jitoTipLamports", "INVALID_TIP", problems, low=0, high=MAX_LAMPORTS)
        if tip is not None and 0 < tip < MIN_JITO_TIP_LAMPORTS:
            problems.add("INVALID_TIP", "jitoTipLamports", f"a Jito tip is at least {MIN_JITO_TIP_LAMPORTS:,} lamports "
                         "(0: not protected)", min=MIN_JITO_TIP_LAMPORTS)  # fmt: skip
        options["jitoTipLamports"] = tip
    return options or None
