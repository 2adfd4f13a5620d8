"""Creates (or finds) the engine's named actors on a running Ray.

Names are what the Ray dashboard shows: ``pool:raydium:SOL-USDC``,
``router``, ``trigger-book``, ``launchpad``, ``executor:0``, ``executor:1`` (each running several order slots), ``dispatcher``,
``market``, and ``chain`` when the chain is on (``EngineSettings.chain_on``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.chain import CHAIN_NAME, ChainActor
from actors.dispatcher import DISPATCHER_NAME, Dispatcher
from actors.executor import OrderExecutor, executor_name, lifecycle_config
from actors.market_maker import MARKET_NAME, MarketMaker
from actors.placement import Placement, placement_for
from actors.pool_actor import PoolActor, pool_actor_name
from actors.router import ROUTER_NAME, OrderRouter
from actors.launched import LAUNCHPAD_NAME
from actors.launchpad import Launchpad
from actors.trigger_book import TRIGGER_BOOK_NAME, TriggerBookActor
from engine.chain_config import chain_config_with
from engine.config import build_pools, load_market_config
from engine.ports import Connector
from engine.settings import DispatchSettings, EngineSettings
from sim.tokens import TokenRegistry


@dataclass
class EngineActors:
    pools: dict[str, Any]
    router: Any
    executors: list[Any]
    dispatcher: Any
    market: Any | None
    pool_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)
    triggers: Any = None
    launchpad: Any = None
    chain: Any = None
    placement: Placement = field(default_factory=Placement)  # where the pools and executors were sent

    def all(self, launched: list[Any] | None = None) -> list[Any]:
        """Every actor; ``launched``: the launched pools' handles, when already asked for."""
        handles = [*self.pools.values(), self.router, *self.executors, self.dispatcher]
        handles += [h for h in (self.triggers, self.launchpad, self.chain) if h is not None]
        handles += launched_pool_handles(self.launchpad) if launched is None else launched
        return handles + ([self.market] if self.market is not None else [])


def start_actors(
    settings: EngineSettings,
    connector: Connector,
    tokens: TokenRegistry,
    *,
    start_dispatcher: bool = True,
    detached: bool = False,
) -> EngineActors:
    """Create every actor (or reuse the live ones) and wait until they are ready.

    ``detached`` actors outlive the process that created them (the Serve
    config's app builder returns at once); they end with the Ray cluster.
    """
    ns, seed = settings.ray.namespace, settings.seed
    latency, dispatch = settings.latency, settings.dispatch
    if settings.chain_on:  # the chain's slots are the landing time now, and a run may wait out a blockhash
        latency = latency.model_copy(update={"execution_min_s": 0.0, "execution_max_s": 0.0})
    market_config = load_market_config(settings.market.config)
    genesis_pools = build_pools(market_config)
    placement = placement_for(settings.ray)  # pools and executors over the nodes, when there are several

    def named(cls: Any, name: str, **options: Any) -> Any:
        lifetime = "detached" if detached else None
        options = {**placement.on_head(), **options}  # a singleton unless told where (pools, executors)
        return cls.options(name=name, namespace=ns, get_if_exists=True, lifetime=lifetime, **options)

    # Every process of the engine starts at once (each costs an interpreter and Ray's import); what
    # must come in order — launched pools restored before anything trades — comes after.
    pools = {
        p.pool_id: named(PoolActor, pool_actor_name(p.pool_id), **placement.options(i)).remote(
            p.pool_id, p.snapshot(), connector, latency, settings.faults, seed, (TRIGGER_BOOK_NAME, ns)
        )
        for i, p in enumerate(genesis_pools)
    }
    pool_tokens = {p.pool_id: (p.token_x.symbol, p.token_y.symbol) for p in genesis_pools}
    pad = (LAUNCHPAD_NAME, ns)  # whom a restarted actor asks for the pools launched meanwhile
    triggers = named(TriggerBookActor, TRIGGER_BOOK_NAME).remote(
        pools, pool_tokens, connector, tokens, settings.routing, launchpad=pad
    )
    router = named(OrderRouter, ROUTER_NAME).remote(
        {pid: {"tokens": list(pool_tokens[pid]), "handle": h} for pid, h in pools.items()}, settings.routing, pad,
        follow=settings.routing.follows(latency),
    )
    chain, dispatch = _chain_actor(settings, named, pools) if settings.chain_on else (None, dispatch)
    lifecycle = lifecycle_config(settings.retry, latency, settings.routing)
    slots = dispatch.slots_per_executor()
    executors = [
        # a few calls beyond the slots: ready(), and the dispatcher's next run while one ends
        named(OrderExecutor, executor_name(i), max_concurrency=n + 4, **placement.options(i)).remote(
            i, router, pools, tokens, connector, lifecycle, seed, n, triggers, ns, chain
        )
        for i, n in enumerate(slots)
    ]
    launchpad = named(Launchpad, LAUNCHPAD_NAME).remote(
        connector, tokens, router, executors, latency, settings.faults, seed, ns, detached,
        placement=placement, first_pool=len(genesis_pools),
    )
    chain_ready = [chain.ready.remote()] if chain is not None else []
    ray.get([*(h.ready.remote() for h in pools.values()), triggers.ready.remote(),
             *(e.ready.remote() for e in executors), *chain_ready])  # fmt: skip
    ray.get(launchpad.restore.remote())  # the pools launched in earlier runs, before anything trades
    # Created only now: both start their loops in their constructors (so a restarted one starts by itself).
    runners = [handle for handle, n in zip(executors, slots) for _ in range(n)]  # one per slot
    dispatcher = named(Dispatcher, DISPATCHER_NAME).remote(
        runners, connector, dispatch, autostart=start_dispatcher
    )
    if start_dispatcher:
        ray.get(dispatcher.start.remote())  # returns once the loop runs (reused actors: starts it)
    market = None
    if settings.market.enabled:
        market = named(MarketMaker, MARKET_NAME).remote(pools, settings.market, seed, autostart=True, launchpad=pad)
        ray.get(market.start.remote())
    return EngineActors(pools, router, executors, dispatcher, market, pool_tokens, triggers, launchpad, chain, placement)


def _chain_actor(settings: EngineSettings, named: Any, pools: dict[str, Any]) -> tuple[Any, DispatchSettings]:
    """The chain actor, and the dispatch settings with a run timeout that outlasts a blockhash's window."""
    config = chain_config_with(settings.chain.config, settings.chain.overrides)
    # The genesis is an argument: a restarted chain actor is the same chain (slots, blockhashes).
    # A minute before now, so that the first orders find recent fees to bid from.
    genesis = float(int(time.time()) - 60)
    chain = named(ChainActor, CHAIN_NAME).remote(config, settings.seed, genesis, pools, settings.ray.namespace)
    window_s = config.chain.blockhash_valid_blocks * config.chain.slot_s / (1 - config.chain.skip_rate)
    dispatch = settings.dispatch
    return chain, dispatch.model_copy(update={"run_timeout_s": max(dispatch.run_timeout_s, 2 * window_s + 30)})


def launched_pool_handles(launchpad: Any) -> list[Any]:
    """The actors of the pools launched during the run (they end with the engine too)."""
    if launchpad is None:
        return []
    try:
        return [pool["handle"] for pool in ray.get(launchpad.launched.remote(), timeout=10)]
    except Exception:  # noqa: BLE001 — the launchpad is gone: its pools are found by the namespace's end
        return []


def stop_actors(actors: EngineActors, *, grace_s: float = 5.0) -> None:
    """Stop the dispatcher first (no new work), then let every actor exit cleanly."""
    try:
        ray.get(actors.dispatcher.stop.remote(), timeout=grace_s)
    except Exception:  # noqa: BLE001 — it is being killed anyway
        pass
    launched = launched_pool_handles(actors.launchpad)  # once: found through the launchpad, which ends too
    handles = actors.all(launched)
    # A pool first answers the router's open watch call: an actor exits only once its calls have returned.
    stops = [h.stop_watching.remote() for h in [*actors.pools.values(), *launched]]
    ray.wait(stops, num_returns=len(stops), timeout=grace_s)
    exits = [h.__ray_terminate__.remote() for h in handles]
    ray.wait(exits, num_returns=len(exits), timeout=grace_s)
    for handle in handles:
        try:
            ray.kill(handle, no_restart=True)
        except Exception:  # noqa: BLE001 — already gone
            pass
