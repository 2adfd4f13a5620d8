"""Engine settings: one tree, ``configs/engine.yaml``, overridden by ``DEXENGINE_*`` environment variables.

Each component is handed only its own section: the dispatcher ``dispatch``,
the router ``routing``, the pools ``latency`` and ``faults``, the market
``market``, the API ``api``, the local Ray ``ray``. Nested keys take ``__``
in the environment (``DEXENGINE_DISPATCH__EXECUTORS=20``). ``DATABASE_URL``,
``REDIS_URL`` and ``RAY_ADDRESS`` are read without the prefix, as is usual;
without them the engine starts its own PostgreSQL and Redis, and Ray.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from sim.decision import RoutingPolicy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENGINE_CONFIG = ROOT / "configs" / "engine.yaml"
DEFAULT_MARKET_CONFIG = ROOT / "configs" / "market.yaml"
DEFAULT_CHAIN_CONFIG = ROOT / "configs" / "chain.yaml"
_POLICY = RoutingPolicy()  # the routing defaults live in the domain


class LatencySettings(BaseModel):
    """Simulated network and chain delays, in seconds (all may be zero)."""

    quote_s: float = Field(0.2, ge=0)
    quote_jitter_s: float = Field(0.02, ge=0)
    execution_min_s: float = Field(2.0, ge=0)
    execution_max_s: float = Field(3.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> LatencySettings:
        if self.execution_max_s < self.execution_min_s:
            raise ValueError("execution_max_s must be >= execution_min_s")
        return self

    @classmethod
    def zero(cls) -> LatencySettings:
        return cls(quote_s=0, quote_jitter_s=0, execution_min_s=0, execution_max_s=0)


class RetrySettings(BaseModel):
    max_retries: int = Field(3, ge=0, le=10)
    base_delay_s: float = Field(1.0, ge=0)
    factor: float = Field(2.0, ge=1)


class RoutingSettings(BaseModel):
    allow_split: bool = _POLICY.allow_split
    allow_two_hop: bool = _POLICY.allow_two_hop
    intermediates: tuple[str, ...] = _POLICY.intermediates
    # Refuse routes that would move a pool's price more than this: the
    # order is larger than the liquidity there is for it.
    max_price_impact_bps: float = Field(_POLICY.max_price_impact_bps, gt=0)
    pool_timeout_s: float = Field(1.0, gt=0)
    # A submitted swap that has not landed by then is dropped by the pool,
    # like a Solana transaction whose blockhash expired.
    tx_expiry_s: float = Field(20.0, gt=0)
    # Follow the pools (each reports its state as it changes) instead of asking them per order;
    # auto: when quotes take no simulated time (a simulated quote latency is the time of asking).
    follow_pools: Literal["auto", "on", "off"] = "auto"

    def follows(self, latency: LatencySettings) -> bool:
        if self.follow_pools == "auto":
            return latency.quote_s == 0 and latency.quote_jitter_s == 0
        return self.follow_pools == "on"

    def policy(self) -> RoutingPolicy:
        return RoutingPolicy(self.allow_split, self.allow_two_hop, tuple(self.intermediates), self.max_price_impact_bps)


class FaultSettings(BaseModel):
    """Fault injection for tests and chaos runs; all off by default."""

    # Each swap first moves its pool against the order by this many bps,
    # as if a larger trade landed just before it (a sandwich).
    front_run_bps: float = Field(0.0, ge=0)
    front_run_probability: float = Field(0.0, ge=0, le=1)


class DispatchSettings(BaseModel):
    """The queue consumer: how many orders run at once, how fast they may start."""

    executors: int = Field(10, ge=1, le=64, description="order slots = orders running at once")
    # The slots are spread over this many executor actors (processes): an async
    # actor runs several orders at once, and each process costs ~70 MB and its
    # own wake-ups, so fewer processes than slots is the cheaper way to the same
    # concurrency. More processes spread the slots over more cores (or nodes).
    executor_processes: int = Field(2, ge=1, le=64, description="executor actors the slots are spread over")

    def slots_per_executor(self) -> list[int]:
        """How many slots each executor actor runs (as even as it goes; never an empty one)."""
        actors = min(self.executor_processes, self.executors)
        return [self.executors // actors + (i < self.executors % actors) for i in range(actors)]
    rate_limit_per_minute: int = Field(100, ge=0, description="orders started per window, shared; 0 = off")
    rate_limit_window_s: float = Field(60.0, gt=0, description="the window the limit counts in")
    sweep_interval_s: float = Field(10.0, gt=0, description="how often lost deliveries are looked for")
    # An executor that has not answered a run by then (stuck on a call that never
    # returns, or dying again and again) gives its slot back; the order is run again
    # after a short delay, which is safe: runs resume from the store, transitions are
    # compare-and-set and fills happen once. The longest healthy run is the router's
    # deadline plus a submitted swap's expiry (~26 s by default): twice that.
    run_timeout_s: float = Field(60.0, gt=0, description="the longest one run may hold an executor slot")


class ChainSettings(BaseModel):
    """The simulated chain (slots, blockhashes, fees, MEV: ``config``, the chain file)."""

    # "auto": on, unless the simulated latencies are zero (benchmarks and fast tests: a swap lands at once).
    enabled: Literal["auto", "on", "off"] = "auto"
    config: Path = DEFAULT_CHAIN_CONFIG
    # Laid over the chain file section by section, e.g. {"chain": {"slot_s": 0.05}} for fast tests.
    overrides: dict[str, Any] = Field(default_factory=dict)


class MarketSettings(BaseModel):
    """The market process that moves the pools (what it is: ``config``, the market file)."""

    enabled: bool = True
    tick_s: float = Field(0.5, gt=0)
    config: Path = DEFAULT_MARKET_CONFIG


class ApiSettings(BaseModel):
    """The HTTP and WebSocket API."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Per client (the X-Client-Id header, else the address); 0 turns a limit off.
    order_limit_per_minute: int = Field(600, ge=0, description="order submissions per client per window")
    read_limit_per_minute: int = Field(0, ge=0, description="other requests per client per window")
    limit_window_s: float = Field(60.0, gt=0)
    ws_max_per_client: int = Field(200, ge=0, description="open WebSockets per client on one replica")
    default_slippage_bps: int = Field(50, ge=0, le=10_000)
    max_slippage_bps: int = Field(5_000, ge=0, le=10_000)
    default_page: int = Field(50, ge=1)
    max_page: int = Field(200, ge=1)
    # A WebSocket re-reads the store when no live event came for this long (doubling
    # up to the max while nothing happens), so an event whose publish was lost still arrives.
    ws_poll_s: float = Field(2.0, gt=0)
    ws_max_poll_s: float = Field(15.0, gt=0)
    ws_resubscribe_s: float = Field(10.0, gt=0)  # without a subscription (Redis down), try again this often
    ws_first_message_timeout_s: float = Field(30.0, gt=0)  # the upgrade on /api/orders/execute
    probe_timeout_s: float = Field(2.0, gt=0)
    # POST /api/sim/shock and /api/sim/launch: for tests, demos and load scenarios. "auto": on
    # while the API listens on loopback only (a local engine), off on any other address.
    sim_controls: Literal["auto", "on", "off"] = "auto"
    # API keys. "auto": required as soon as an active key exists or the API listens on any
    # address but loopback (where the engine refuses to start without a key); "on": always;
    # "off": never (every caller is the same anonymous owner).
    auth: Literal["auto", "on", "off"] = "auto"
    auth_cache_s: float = Field(2.0, ge=0)  # how long a replica trusts what it read of the keys
    # The web console at "/" (static files, no build step, nothing from the internet).
    console: bool = True

    @property
    def on_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")

    @property
    def sim_controls_on(self) -> bool:
        if self.sim_controls == "auto":
            return self.on_loopback
        return self.sim_controls == "on"
    # Publishing the first event and queueing a stored order wait at most this
    # long; past it the order is still accepted (clients replay, the sweep queues).
    redis_timeout_s: float = Field(2.0, gt=0)


class RaySettings(BaseModel):
    """The Ray the engine runs on: its namespace, where its actors go, and the local cluster's size when we
    start one."""

    namespace: str = "dexengine"
    # Pools and executors over the cluster's nodes: "auto" = on when more than one node is alive as the
    # engine starts; "on"; "off": wherever Ray puts them. The singletons go wherever Ray puts them.
    spread: Literal["auto", "on", "off"] = "auto"
    # Actors stay where they are created: on a cluster whose nodes come up after the engine starts (a
    # KubeRay head before its workers), wait until this many nodes are alive (at most min_nodes_wait_s).
    min_nodes: int = Field(0, ge=0)
    min_nodes_wait_s: float = Field(300.0, ge=0)
    num_cpus: int = Field(2, ge=1)
    object_store_mb: int = Field(384, ge=80)
    dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(8265, ge=1, le=65535)
    # Ray's own Prometheus endpoint (the ray_* metrics of every actor and replica); 0: Ray picks one.
    metrics_export_port: int = Field(8266, ge=0, le=65535)
    # Serve's controller wakes every 0.1 s by default (0.03 cores at rest, measured);
    # one application with a fixed replica count needs no such reflexes.
    serve_control_loop_s: float = Field(0.5, gt=0, le=10)


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEXENGINE_", env_nested_delimiter="__", extra="ignore")

    database_url: str | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "DEXENGINE_DATABASE_URL", "database_url")
    )
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "DEXENGINE_REDIS_URL", "redis_url")
    )
    ray_address: str | None = Field(
        None, validation_alias=AliasChoices("RAY_ADDRESS", "DEXENGINE_RAY_ADDRESS", "ray_address")
    )
    data_dir: Path = ROOT / ".data"
    seed: int = 7  # the one seed: the market's path, latency jitter, fault draws

    dispatch: DispatchSettings = DispatchSettings()
    latency: LatencySettings = LatencySettings()
    retry: RetrySettings = RetrySettings()
    routing: RoutingSettings = RoutingSettings()
    faults: FaultSettings = FaultSettings()
    market: MarketSettings = MarketSettings()
    chain: ChainSettings = ChainSettings()
    api: ApiSettings = ApiSettings()
    ray: RaySettings = RaySettings()

    @property
    def chain_on(self) -> bool:
        """Whether orders land through the simulated chain (else at once, after the execution latency)."""
        if self.chain.enabled == "auto":
            return self.latency.execution_max_s > 0
        return self.chain.enabled == "on"

    def with_profile(self, profile: str) -> EngineSettings:
        """``default``: as configured. ``benchmark``: the way the ceiling is measured: every simulated
        latency 0 and the chain off, the engine's rate limit and the per-client API limits off, everything else as is."""
        if profile == "default":
            return self
        if profile != "benchmark":
            raise ValueError(f"unknown profile {profile!r}: default or benchmark")
        return self.model_copy(update={
            "latency": LatencySettings.zero(),
            "chain": self.chain.model_copy(update={"enabled": "off"}),
            "dispatch": self.dispatch.model_copy(update={"rate_limit_per_minute": 0}),
            "api": self.api.model_copy(update={"order_limit_per_minute": 0, "read_limit_per_minute": 0,
                                               "ws_max_per_client": 0}),
        })  # fmt: skip

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get("DEXENGINE_CONFIG", DEFAULT_ENGINE_CONFIG))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path.exists():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)
