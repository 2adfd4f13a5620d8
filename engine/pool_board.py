"""What the router knows of the pools: the last state each one reported, restored when first routed on.

Filled by asking the pools (``observe``, per route) or by following them (one long-polling ``watch``
call per pool, answered at each change). A followed pool whose call failed is down until it answers
again: routing skips it, as it skips a pool that did not answer a quote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.decision import Skipped
from sim.pools import Pool, restore_pool


@dataclass(slots=True)
class _Seen:
    version: str
    snapshot: dict[str, Any] | None
    pool: Pool | None = None  # restored from the snapshot when first routed on


class PoolBoard:
    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._down: dict[str, str] = {}

    def known_version(self, pool_id: str) -> str | None:
        seen = self._seen.get(pool_id)
        return seen.version if seen else None

    def saw(self, pool_id: str, version: str, snapshot: dict[str, Any] | None) -> None:
        """A pool answered: its state at ``version`` (``snapshot`` None: the version we hold already)."""
        self._down.pop(pool_id, None)
        if snapshot is not None and self.known_version(pool_id) != version:
            self._seen[pool_id] = _Seen(version, snapshot)

    def lost(self, pool_id: str, reason: str) -> None:
        """A followed pool's call failed (its actor died or restarts): skipped until it answers again."""
        self._down[pool_id] = reason

    def pool(self, pool_id: str) -> Pool | Skipped | None:
        """The pool as last seen, why it is skipped, or None: never seen (ask it)."""
        if pool_id in self._down:
            return Skipped(pool_id, "POOL_UNAVAILABLE", self._down[pool_id])
        seen = self._seen.get(pool_id)
        if seen is None:
            return None
        if seen.pool is None:
            assert seen.snapshot is not None
            seen.pool, seen.snapshot = restore_pool(seen.snapshot), None
        return seen.pool
