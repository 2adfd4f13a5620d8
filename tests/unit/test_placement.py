"""Where spread actors go: the nodes in turn, soft (a dead node's actors restart elsewhere); singletons on the head."""

from __future__ import annotations

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.placement import SPREAD_CPUS, Placement, wait_for_nodes
from engine.settings import EngineSettings

WORKER, HEAD = "a" * 56, "b" * 56


def target(options: dict) -> str:
    strategy = options["scheduling_strategy"]
    assert isinstance(strategy, NodeAffinitySchedulingStrategy)
    assert strategy.soft, "a hard affinity would keep the actor from restarting on another node"
    # Ray places an actor that asks for no resources at random, whatever strategy it names
    assert options["num_cpus"] == SPREAD_CPUS > 0
    return strategy.node_id


def test_spread_actors_take_the_nodes_in_turn_and_singletons_the_head() -> None:
    placement = Placement((WORKER, HEAD), HEAD)
    assert placement.spread
    assert [target(placement.options(i)) for i in range(5)] == [WORKER, HEAD, WORKER, HEAD, WORKER]
    assert target(placement.on_head()) == HEAD


def test_not_spreading_leaves_every_actor_to_ray() -> None:
    assert Placement().options(3) == {} and Placement().on_head() == {}
    assert not Placement().spread
    # spreading over nodes none of which is the head: the singletons go wherever Ray puts them
    assert Placement((WORKER,), None).on_head() == {}


def test_spread_is_auto_unless_set(monkeypatch) -> None:
    assert EngineSettings().ray.spread == "auto"
    monkeypatch.setenv("DEXENGINE_RAY__SPREAD", "off")
    assert EngineSettings().ray.spread == "off"


class Cluster:
    """Nodes that join one per poll, on a clock that a poll moves by one second."""

    def __init__(self, joining: list[tuple[str, bool]]) -> None:
        self.joining, self.alive, self.now = list(joining), [(HEAD, True)], 0.0

    def listing(self) -> list[tuple[str, bool]]:
        return list(self.alive)

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.joining:
            self.alive.append(self.joining.pop(0))


def test_waits_for_the_nodes_asked_for_then_spreads_over_them() -> None:
    cluster = Cluster([(WORKER, False), ("c" * 56, False)])
    nodes = wait_for_nodes(3, 60, cluster.listing, clock=lambda: cluster.now, sleep=cluster.sleep)
    assert len(nodes) == 3 and cluster.now == 2.0


def test_gives_up_waiting_after_the_bound_with_the_nodes_there_are() -> None:
    cluster = Cluster([(WORKER, False)])
    nodes = wait_for_nodes(3, 5, cluster.listing, clock=lambda: cluster.now, sleep=cluster.sleep)
    assert nodes == [(HEAD, True), (WORKER, False)] and cluster.now == 5.0
