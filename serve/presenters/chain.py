"""The chain as the API shows it: ``GET /api/chain``, and an order's transaction and landing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def transaction_view(options: dict[str, Any] | None, route: Any) -> dict[str, Any] | None:
    """What the order asked of its transaction, and the terms it was signed with (once built)."""
    terms = route.get("tx") if isinstance(route, dict) else None
    if not options and not terms:
        return None
    view: dict[str, Any] = {"priorityFee": "auto", **(options or {})}
    if terms:
        view.update(computeUnitLimit=terms["cu_limit"], computeUnitPrice=terms["cu_price"],
                    recentBlockhash=terms["blockhash"], lastValidBlockHeight=terms["last_valid_block_height"],
                    protected=terms.get("jito_tip_lamports", 0) > 0)  # fmt: skip
    return view


def landing_view(route: Any, now: float | None = None) -> dict[str, Any] | None:
    """Where a confirmed order's transaction landed; ``finalized`` once 32 more blocks are on top."""
    landing = route.get("landing") if isinstance(route, dict) else None
    if not landing:
        return None
    view = dict(landing)
    finalizes_at = landing.get("finalizesAt")
    for key in ("landedAt", "finalizesAt"):
        if isinstance(landing.get(key), (int, float)):
            view[key] = _iso(landing[key])
    now = time.time() if now is None else now
    if isinstance(finalizes_at, (int, float)) and now >= finalizes_at:
        view.update(commitment="finalized", finalizedAt=view.pop("finalizesAt"))
    else:
        view["commitment"] = "confirmed"
    return view


def chain_view(info: dict[str, Any] | None) -> dict[str, Any]:
    if info is None:
        return {"enabled": False, "note": "the chain is off (zero-latency mode): a transaction lands at once"}
    return {"enabled": True, **info}
