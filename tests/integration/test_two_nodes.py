"""The engine on a Ray cluster of two nodes, and the second node killed mid-flow. Real Ray, PostgreSQL and Redis.

The session's Ray is the head; a real second raylet joins it (``tests/integration/ray_node.py``).
With more than one node alive, the engine spreads its pools and executors over both and keeps its
singletons on the head (``ray.spread: auto``). The second node is then killed, process group and
all, while its executor runs orders and more orders arrive: every accepted order still ends (filled
at most once: the audit of ``assert_invariants``), the books check, and the node's actors come back
on the head.
"""

from __future__ import annotations

import os
from typing import Any

import psutil
import pytest
import ray

from loadtest.chaos.books import call_until_back
from tests.integration.engine_harness import (
    MIXED,
    assert_invariants,
    base_settings,
    failures,
    run,
    running_engine,
    submit,
    wait_final,
)
from tests.integration.ray_node import RayNode, joined_node, wait_until

pytestmark = pytest.mark.integration

# What losing a node may cost an order once its retries are spent: its venues or the router not answering.
NODE_LOSS_CODES = {"POOL_UNAVAILABLE", "POOLS_UNAVAILABLE", "ROUTER_UNAVAILABLE"}


def where(handle: Any) -> tuple[str, int]:
    """The node and the process an actor runs in (waits while Ray restarts it)."""
    return call_until_back(
        lambda: handle.__ray_call__.remote(lambda _self: (ray.get_runtime_context().get_node_id(), os.getpid())), 90
    )


def placed(actors: Any) -> dict[str, tuple[str, int]]:
    named = {f"pool {pid}": h for pid, h in actors.pools.items()}
    named |= {f"executor {i}": h for i, h in enumerate(actors.executors)}
    named |= {"router": actors.router, "dispatcher": actors.dispatcher, "trigger book": actors.triggers,
              "launchpad": actors.launchpad}  # fmt: skip
    return {name: where(handle) for name, handle in named.items()}


def dead(procs: list[psutil.Process]) -> bool:
    def gone(proc: psutil.Process) -> bool:
        try:
            return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(gone(proc) for proc in procs)


def test_pools_and_executors_spread_and_a_dead_node_loses_no_order(database_url, redis_url, ray_session):
    head = ray.get_runtime_context().get_node_id()
    with joined_node() as node:
        settings = base_settings(
            database_url, redis_url,
            # executions of 0.3-0.6 s: the kill finds orders mid-swap; retries every second, ten of them,
            # outlast the 10-15 s the GCS takes to declare a silent node dead, so most orders end confirmed
            latency={"quote_s": 0.02, "quote_jitter_s": 0.01, "execution_min_s": 0.3, "execution_max_s": 0.6},
            retry={"max_retries": 10, "base_delay_s": 1.0, "factor": 1.0},
            ray={"min_nodes": 2, "min_nodes_wait_s": 30},  # both are up already: no wait
        )  # fmt: skip
        assert settings.ray.spread == "auto"
        with running_engine(settings) as actors:
            before = placed(actors)
            _check_spread(actors, node, head, before)
            ids = run(submit(settings, MIXED * 4))
            _kill_mid_flow(actors, node, before)
            ids += run(submit(settings, MIXED * 2))  # orders still coming while the GCS declares the node dead
            wait_until(lambda: not node.alive(), "the killed node marked dead", 90)
            statuses = wait_final(settings, ids, timeout_s=180)
            failed = failures(settings, ids)
            assert {code for _, code, _ in failed.values()} <= NODE_LOSS_CODES, failed
            assert list(statuses.values()).count("confirmed") > len(ids) // 2, (statuses, failed)
            after = {name: n for name, (n, _) in placed(actors).items()}
            assert after == {name: head for name in before}, after  # the killed node's actors too
            assert_invariants(settings, actors, ids)


def _check_spread(actors: Any, node: RayNode, head: str, before: dict[str, tuple[str, int]]) -> None:
    """Pools and executors take the nodes in turn, the second node first; the singletons are on the head."""
    assert actors.placement.nodes == (node.node_id, head) and actors.placement.head == head
    on = {name: n for name, (n, _) in before.items()}
    for kind in ("pool", "executor"):
        assert {n for name, n in on.items() if name.startswith(kind)} == {node.node_id, head}, on
    assert all(n == head for name, n in on.items() if not name.startswith(("pool", "executor"))), on


def _kill_mid_flow(actors: Any, node: RayNode, before: dict[str, tuple[str, int]]) -> None:
    """Once the second node's executor runs orders, kill the node; every process it had must die,
    its actors' workers included (each leads a process group of its own)."""
    victim = next(h for i, h in enumerate(actors.executors) if before[f"executor {i}"][0] == node.node_id)
    wait_until(lambda: ray.get(victim.figures.remote(), timeout=30).running >= 2, "orders running there", 60)
    had = node.kill()
    on_node = {pid for name, (n, pid) in before.items() if n == node.node_id}
    assert on_node <= {proc.pid for proc in had}, (on_node, had)
    wait_until(lambda: dead(had), "every process of the killed node gone", 30)
