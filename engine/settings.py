"""Engine settings: configs/engine.yaml, overridden by DEXENGINE_* environment variables.

``DATABASE_URL`` and ``REDIS_URL`` are read without the prefix, as is usual;
when they are absent the engine starts its own PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENGINE_CONFIG = ROOT / "configs" / "engine.yaml"
DEFAULT_MARKET_CONFIG = ROOT / "configs" / "market.yaml"


class LatencySettings(BaseModel):
    """Simulated network and chain delays, in seconds (all may be zero)."""

    quote_s: float = Field(0.2, ge=0)
    quote_jitter_s: float = Field(0.02, ge=0)
    execution_min_s: float = Field(2.0, ge=0)
    execution_max_s: float = Field(3.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> "LatencySettings":
        if self.execution_max_s < self.execution_min_s:
            raise ValueError("execution_max_s must be >= execution_min_s")
        return self

    @classmethod
    def zero(cls) -> "LatencySettings":
        return cls(quote_s=0, quote_jitter_s=0, execution_min_s=0, execution_max_s=0)


class RetrySettings(BaseModel):
    max_retries: int = Field(3, ge=0, le=10)
    base_delay_s: float = Field(1.0, ge=0)
    factor: float = Field(2.0, ge=1)


class RoutingSettings(BaseModel):
    allow_split: bool = False
    allow_two_hop: bool = True
    intermediates: tuple[str, ...] = ("SOL", "USDC")
    pool_timeout_s: float = Field(1.0, gt=0)
    # Refuse routes that would move a pool's price more than this: the
    # order is larger than the liquidity there is for it.
    max_price_impact_bps: float = Field(2500.0, gt=0)
    # A submitted swap that has not landed by then is dropped by the pool,
    # like a Solana transaction whose blockhash expired.
    tx_expiry_s: float = Field(20.0, gt=0)


class FaultSettings(BaseModel):
    """Fault injection for tests and chaos runs; all off by default."""

    # Each swap first moves its pool against the order by this many bps,
    # as if a larger trade landed just before it (a sandwich).
    front_run_bps: float = Field(0.0, ge=0)
    front_run_probability: float = Field(0.0, ge=0, le=1)


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEXENGINE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

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
    namespace: str = "dexengine"
    market_config: Path = DEFAULT_MARKET_CONFIG

    executors: int = Field(10, ge=1, le=64)
    rate_limit_per_minute: int = Field(100, ge=0, description="0 turns the limit off")
    rate_limit_window_s: float = Field(60.0, gt=0, description="the window the limit counts in")
    latency: LatencySettings = LatencySettings()
    retry: RetrySettings = RetrySettings()
    routing: RoutingSettings = RoutingSettings()
    faults: FaultSettings = FaultSettings()

    market_enabled: bool = True
    market_tick_s: float = Field(0.5, gt=0)
    seed: int = 7

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # Per-client API limits (client = the X-Client-Id header, else the address).
    api_order_limit_per_minute: int = Field(
        600, ge=0, description="order submissions (HTTP and WebSocket) per client per window; 0 = off"
    )
    api_read_limit_per_minute: int = Field(0, ge=0, description="other HTTP requests per client per window; 0 = off")
    api_limit_window_s: float = Field(60.0, gt=0, description="the window the API limits count in")
    ws_max_per_client: int = Field(200, ge=0, description="open WebSockets per client on one API replica; 0 = off")
    dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(8265, ge=1, le=65535)
    num_cpus: int = Field(2, ge=1)
    object_store_mb: int = Field(384, ge=80)
    sweep_interval_s: float = Field(10.0, gt=0)

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

    def for_actors(self) -> dict[str, Any]:
        """A plain dict that crosses process boundaries safely."""
        return self.model_dump(mode="json")

    @classmethod
    def from_actor_dict(cls, data: dict[str, Any]) -> "EngineSettings":
        return cls.model_validate(data)
