"""The pool kinds the simulator knows, by name: a new DEX is its module plus one entry here.

A kind's name is what a market config's ``kind`` and a snapshot's ``type``
say; the registry builds pools of that kind from a config and restores them
from snapshots, so nothing else needs to name a pool class.
"""

from __future__ import annotations

from typing import Any

from sim.pools import cpmm, dlmm
from sim.pools.base import Pool, PoolKind

_KINDS: dict[str, PoolKind[Any]] = {kind.name: kind for kind in (cpmm.KIND, dlmm.KIND)}


class UnknownPoolKind(ValueError):
    def __init__(self, name: object) -> None:
        super().__init__(f"unknown pool kind {name!r} (known: {', '.join(pool_kind_names())})")
        self.name = name


def register(kind: PoolKind[Any]) -> PoolKind[Any]:
    """Add a kind (a DEX defined outside ``sim.pools``); its name must be new."""
    if kind.name in _KINDS:
        raise ValueError(f"pool kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def pool_kind(name: object) -> PoolKind[Any]:
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise UnknownPoolKind(name)
    return kind


def pool_kind_names() -> tuple[str, ...]:
    return tuple(sorted(_KINDS))


def restore_pool(snapshot: dict[str, Any]) -> Pool:
    """Rebuild a pool of any registered kind from its ``snapshot()``."""
    return pool_kind(snapshot.get("type")).restore(snapshot)
