"""Where the actors that scale out (pools, executors) go on a cluster of several nodes.

Measured on Ray 2.60: an actor that asks for no resources is placed on a random node whatever
strategy it names, ``"SPREAD"`` and a soft node affinity alike (only a hard affinity is kept, and
a hard affinity keeps the actor from restarting anywhere else once its node is dead). So a spread
actor asks for a sliver of a CPU and a soft affinity for the next node in turn: it stays there
while that node lives, and Ray restarts it on a surviving node when it dies (``max_restarts=-1``).
Actors are placed when they are created: a node that joins later gets none until one restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from engine.settings import RaySettings

log = logging.getLogger(__name__)
# Enough to be scheduled as a request (not at random); 1,000 of them fit in one CPU.
SPREAD_CPUS = 0.001
HEAD_RESOURCE = "node:__internal_head__"  # what Ray gives the head node, and no other


@dataclass(frozen=True)
class Placement:
    """The nodes spread actors take in turn, and the head, where the singletons go when spreading.

    No nodes: every actor goes wherever Ray puts it (one node: all on it)."""

    nodes: tuple[str, ...] = ()
    head: str | None = None

    @property
    def spread(self) -> bool:
        return bool(self.nodes)

    def options(self, index: int) -> dict[str, Any]:
        """``.options()`` for the ``index``-th actor of its kind (pool ``i``, executor ``i``)."""
        return _on(self.nodes[index % len(self.nodes)]) if self.nodes else {}

    def on_head(self) -> dict[str, Any]:
        """``.options()`` for a singleton: on the head when spreading (the node the cluster cannot lose
        anyway), so that losing another node costs only pools and executors."""
        return _on(self.head) if self.nodes and self.head is not None else {}


def _on(node_id: str) -> dict[str, Any]:
    return {"num_cpus": SPREAD_CPUS, "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=True)}


def placement_for(settings: RaySettings) -> Placement:
    """``spread``: ``auto``, when more than one node can take an actor; ``on``: always; ``off``: never.
    The nodes are those alive once ``min_nodes`` are (or ``min_nodes_wait_s`` is over)."""
    if settings.spread == "off":
        return Placement()
    nodes = wait_for_nodes(settings.min_nodes, settings.min_nodes_wait_s)
    if settings.spread == "auto" and len(nodes) < 2:
        return Placement()
    heads = [node for node in nodes if node[1]]
    return Placement(tuple(node_id for node_id, _ in nodes), heads[0][0] if heads else None)


def wait_for_nodes(
    count: int, wait_s: float, listing: Callable[[], list[tuple[str, bool]]] | None = None,
    *, poll_s: float = 1.0, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> list[tuple[str, bool]]:
    """The schedulable nodes once there are ``count`` of them, or as many as there are after ``wait_s``."""
    listing = listing or schedulable_nodes
    end = clock() + wait_s
    while len(nodes := listing()) < count and clock() < end:
        sleep(poll_s)
    if len(nodes) < count:
        log.warning("%d of the %d nodes asked for are alive after %g s: spreading over those", len(nodes), count,
                    wait_s)  # fmt: skip
    return nodes


def schedulable_nodes() -> list[tuple[str, bool]]:
    """``(node id, is the head)`` of every alive node with a CPU (a spread actor asks for a sliver of
    one), the head last: it already carries the GCS, Serve and the singletons."""
    alive = [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0]
    found = [(node["NodeID"], HEAD_RESOURCE in node["Resources"]) for node in alive]
    return sorted(found, key=lambda node: (node[1], node[0]))
