"""The faults: a seeded, shuffled cycle of them injected into the running engine."""

from __future__ import annotations

import random
import threading
import time

from loadtest.chaos.engine import ChaosEngine
from loadtest.chaos.tally import Tally

FAULTS = [
    "executors", "pool", "router", "dispatcher", "market", "redis_restart", "redis_down",
    "postgres_down", "serve_replica", "engine_restart",
]  # fmt: skip
CHAIN_FAULTS = ["chain", "congestion"]  # only with the chain on (``--chain``)
CONGESTION_PRESETS = ("calm", "busy", "congested")
ACTOR_NAMES_RELEASED_WITHIN_S = 60


class Injector(threading.Thread):
    """Injects the next fault of a seeded, shuffled cycle every ``every_s`` seconds."""

    def __init__(
        self, engine: ChaosEngine, tally: Tally, *, every_s: float, until: float, seed: int, kinds: list[str]
    ) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.engine = engine
        self.tally = tally
        self.every_s = every_s
        self.until = until
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.stop = threading.Event()
        self.began = time.monotonic()

    def run(self) -> None:
        kinds: list[str] = []
        while not self.stop.wait(self.every_s * self.rng.uniform(0.7, 1.3)):
            if time.monotonic() >= self.until:
                return
            if not kinds:
                kinds = list(self.kinds)
                self.rng.shuffle(kinds)
            self.inject(kinds.pop())

    def inject(self, kind: str) -> None:
        began = time.monotonic()
        try:
            note = getattr(self, f"_{kind}")()
        except Exception as exc:  # noqa: BLE001 — report it, keep the run going
            note = f"injection failed: {type(exc).__name__}: {exc}"[:200]
            self.tally.fault_errors.append(f"{kind}: {note}")
        t = began - self.began
        self.tally.faults.append((t, kind, note))
        print(f"  [{t:6.1f}s] fault {kind:<14} {note} ({time.monotonic() - began:.1f}s)", flush=True)

    # each returns a short note
    def _executors(self) -> str:
        victims = self.rng.sample(range(len(self.engine.actors.executors)), 2)
        for index in victims:
            _kill_for_restart(self.engine.actors.executors[index])
        return f"killed executor:{victims[0]} and executor:{victims[1]}"

    def _pool(self) -> str:
        pool_id = self.rng.choice(sorted(self.engine.actors.pools))
        _kill_for_restart(self.engine.actors.pools[pool_id])
        return f"killed pool:{pool_id}"

    def _router(self) -> str:
        _kill_for_restart(self.engine.actors.router)
        return "killed the router"

    def _dispatcher(self) -> str:
        _kill_for_restart(self.engine.actors.dispatcher)
        return "killed the dispatcher"

    def _market(self) -> str:
        _kill_for_restart(self.engine.actors.market)
        return "killed the market maker"

    def _chain(self) -> str:
        _kill_for_restart(self.engine.actors.chain)
        return "killed the chain (its pending transactions are gone, as from a restarted RPC node)"

    def _congestion(self) -> str:
        import ray

        preset = self.rng.choice(CONGESTION_PRESETS)
        info = ray.get(self.engine.actors.chain.set_congestion.remote(preset), timeout=30)
        return f"the chain switched to {info['congestion']} at slot {info['slot']}"

    def _redis_restart(self) -> str:
        self.engine.servers.redis.restart()
        return "restarted Redis"

    def _redis_down(self) -> str:
        down = self.rng.uniform(3.0, 5.0)
        self.engine.servers.redis.restart(downtime_s=down)
        return f"Redis down for {down:.1f}s"

    def _postgres_down(self) -> str:
        down = self.rng.uniform(3.0, 5.0)
        self.engine.servers.postgres.restart(downtime_s=down)
        return f"PostgreSQL down for {down:.1f}s"

    def _serve_replica(self) -> str:
        import ray

        names = [
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == "serve" and a["name"].startswith("SERVE_REPLICA::")
        ]
        for name in names:
            ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
        return f"killed {len(names)} Serve replica(s)"

    def _engine_restart(self) -> str:
        import ray

        from runtime.root import start_engine_actors

        ns = self.engine.settings.ray.namespace
        with self.engine.lock:
            for handle in self.engine.actors.all():
                ray.kill(handle, no_restart=True)
            end = time.monotonic() + ACTOR_NAMES_RELEASED_WITHIN_S
            while any(a["namespace"] == ns for a in ray.util.list_named_actors(all_namespaces=True)):
                if time.monotonic() > end:
                    raise RuntimeError("the killed actors' names were not released")
                time.sleep(0.2)
            time.sleep(1.0)  # no engine at all for a moment: the API keeps accepting
            # the actors alone are started again: PostgreSQL, Redis, Ray and Serve stay up
            self.engine.running.actors = start_engine_actors(self.engine.settings)
        return "killed every engine actor and started the engine again"


def _kill_for_restart(handle: object) -> None:
    """Kill an actor the way a crash would: Ray restarts it."""
    import ray

    ray.kill(handle, no_restart=False)
