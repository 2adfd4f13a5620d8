"""The market configuration (configs/market.yaml): tokens, pools, market process.

Validated by pydantic when loaded, with messages that name the offending
pool or token; ``build_pools`` and ``build_market`` turn a valid config into
``sim`` objects.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.launches import LaunchProcess, LaunchRange, launches_from
from sim.market import ArbitrageParams, Market, MarketParams, NoiseParams
from sim.pools import Pool, PoolSetup, pool_kind
from sim.tokens import Token, TokenRegistry

ModelT = TypeVar("ModelT", bound=BaseModel)

BASE58 = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
MAX_FEE_BPS = 1_000  # 10 %, the DLMM program's cap too


class ConfigError(ValueError):
    """A market config that cannot be read or is invalid; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenSpec(_Strict):
    symbol: str = Field(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9]+$")
    mint: str = Field(min_length=32, max_length=44)
    decimals: int = Field(ge=0, le=18)

    @field_validator("mint")
    @classmethod
    def _base58(cls, mint: str) -> str:
        bad = sorted(set(mint) - BASE58)
        if bad:
            raise ValueError(f"a mint is a base58 address; {''.join(bad)!r} cannot appear in one")
        return mint

    def to_token(self) -> Token:
        return Token(self.symbol, self.mint, self.decimals)


class PoolSpec(_Strict):
    """One pool. Beyond the common fields, a pool takes its kind's own fields
    (a dlmm pool: bin_step, bins_each_side, liquidity_shape, dlmm; a cpmm pool:
    protocol_fee_share, fund_fee_share), which the kind validates: see
    ``sim.pools.registry``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    dex: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
    kind: str
    base: str  # token_x
    quote: str  # token_y
    fee_bps: float = Field(description="the trade fee; where the fee varies (dlmm), the base fee")
    tvl_usd: float = Field(gt=0)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        pool_kind(kind)  # raises, naming the known kinds
        return kind

    @field_validator("fee_bps")
    @classmethod
    def _fee_range(cls, fee: float) -> float:
        if not (math.isfinite(fee) and 0 <= fee <= MAX_FEE_BPS):
            raise ValueError(f"fee_bps must be between 0 and {MAX_FEE_BPS}, got {fee}")
        if Decimal(str(fee)) * 100 % 1 != 0:
            raise ValueError(f"fee_bps is counted in hundredths of a basis point, got {fee}")
        return fee

    @model_validator(mode="after")
    def _shape(self) -> "PoolSpec":
        if self.base == self.quote:
            raise ValueError(f"pool {self.id}: base and quote are both {self.base}")
        try:
            pool_kind(self.kind).configure(self.fee_bps, self.kind_fields)
        except ValueError as exc:
            raise ValueError(f"pool {self.id}: {exc}") from exc
        return self

    @property
    def kind_fields(self) -> dict[str, Any]:
        """The fields of this pool's kind, as written (null counts as not given)."""
        return {name: value for name, value in (self.model_extra or {}).items() if value is not None}


class ArbitrageSpec(_Strict):
    enabled: bool = True
    fraction: float = Field(0.6, gt=0, le=1)
    min_profit_usd: float = Field(0.05, ge=0)


class NoiseSpec(_Strict):
    enabled: bool = True
    rate_per_s: float = Field(0.5, ge=0)
    median_usd: float = Field(50.0, gt=0)
    sigma: float = Field(1.0, ge=0, le=5)
    max_usd: float | None = Field(None, gt=0)
    pool_rates: dict[str, float] = Field(default_factory=dict)

    @field_validator("pool_rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for pool_id, rate in rates.items():
            if not rate >= 0:
                raise ValueError(f"noise rate of {pool_id} must be >= 0, got {rate}")
        return rates


class ScheduledLaunchSpec(_Strict):
    """A token whose first pool opens ``after_s`` seconds after the market starts."""

    after_s: float = Field(ge=0)
    symbol: str = Field(min_length=1, max_length=16)
    mint: str | None = None  # derived from the seed when absent
    decimals: int = Field(6, ge=0, le=12)
    pair_with: str
    dex: Literal["raydium", "meteora"] = "raydium"
    liquidity: float = Field(gt=0, description="the pool's whole value, in pair_with units")
    price: float = Field(gt=0, description="pair_with per new token")


class RandomLaunchSpec(_Strict):
    """A seeded Poisson process of launches; ``per_hour`` 0 turns it off."""

    per_hour: float = Field(0.0, ge=0)
    pair_with: str = "SOL"
    dexes: list[Literal["raydium", "meteora"]] = Field(default_factory=lambda: ["raydium", "meteora"])
    liquidity: tuple[float, float] = (50.0, 500.0)
    price: tuple[float, float] = (1e-6, 1e-3)
    decimals: int = Field(6, ge=0, le=12)


class LaunchesSpec(_Strict):
    scheduled: list[ScheduledLaunchSpec] = Field(default_factory=list)
    random: RandomLaunchSpec = RandomLaunchSpec()

    def process(self, seed: int) -> LaunchProcess:
        scheduled = launches_from(
            [{**s.model_dump(exclude_none=True), "liquidity": repr(s.liquidity), "price": repr(s.price)}
             for s in self.scheduled], seed,
        )  # fmt: skip
        r = self.random
        draws = LaunchRange(r.pair_with, tuple(r.dexes), r.liquidity, r.price, r.decimals)
        return LaunchProcess(scheduled, r.per_hour, draws, seed)


class MarketSpec(_Strict):
    """How prices move. How often the market steps and from which seed are the engine's settings."""

    reference_prices_usd: dict[str, float]
    volatility: dict[str, float] = Field(default_factory=dict)
    volatility_unit: Literal["annual", "per_second"] = "annual"
    mean_reversion: dict[str, float] = Field(default_factory=dict)
    arbitrage: ArbitrageSpec = ArbitrageSpec()
    noise: NoiseSpec = NoiseSpec()

    @model_validator(mode="after")
    def _values(self) -> "MarketSpec":
        for symbol, price in self.reference_prices_usd.items():
            if not (math.isfinite(price) and price > 0):
                raise ValueError(f"reference price of {symbol} must be positive, got {price}")
        for name in ("volatility", "mean_reversion"):
            for symbol, value in getattr(self, name).items():
                if symbol not in self.reference_prices_usd:
                    raise ValueError(f"{name}: {symbol} has no reference price")
                if not (math.isfinite(value) and value >= 0):
                    raise ValueError(f"{name} of {symbol} must be >= 0, got {value}")
        return self

    def to_params(self, *, seed: int, tick_s: float) -> MarketParams:
        return MarketParams(
            reference_prices_usd=dict(self.reference_prices_usd),
            volatility=dict(self.volatility),
            volatility_unit=self.volatility_unit,
            mean_reversion=dict(self.mean_reversion),
            tick_s=tick_s,
            seed=seed,
            arbitrage=ArbitrageParams(**self.arbitrage.model_dump()),
            noise=NoiseParams(**self.noise.model_dump()),
        )


class MarketConfig(_Strict):
    tokens: list[TokenSpec] = Field(min_length=1)
    pools: list[PoolSpec] = Field(min_length=1)
    market: MarketSpec
    launches: LaunchesSpec = LaunchesSpec()

    @model_validator(mode="after")
    def _consistent(self) -> "MarketConfig":
        symbols: set[str] = set()
        mints: set[str] = set()
        for token in self.tokens:
            if token.symbol in symbols:
                raise ValueError(f"token {token.symbol} is listed twice")
            if token.mint in mints:
                raise ValueError(f"token {token.symbol}: mint {token.mint} already belongs to another token")
            symbols.add(token.symbol)
            mints.add(token.mint)
        ids: set[str] = set()
        for pool in self.pools:
            if pool.id in ids:
                raise ValueError(f"pool id {pool.id} is used twice")
            ids.add(pool.id)
            for side in (pool.base, pool.quote):
                if side not in symbols:
                    raise ValueError(
                        f"pool {pool.id} trades unknown token {side!r} "
                        f"(known: {', '.join(sorted(symbols))})"
                    )
                if side not in self.market.reference_prices_usd:
                    raise ValueError(f"pool {pool.id}: token {side} has no reference price in market")
        for symbol in self.market.reference_prices_usd:
            if symbol not in symbols:
                raise ValueError(f"market.reference_prices_usd: unknown token {symbol!r}")
        for launch in self.launches.scheduled:
            if launch.pair_with not in symbols:
                raise ValueError(f"launches: {launch.symbol} pairs with unknown token {launch.pair_with!r}")
            if launch.symbol in symbols:
                raise ValueError(f"launches: {launch.symbol} is a listed token already")
        if self.launches.random.per_hour and self.launches.random.pair_with not in symbols:
            raise ValueError(f"launches.random: unknown token {self.launches.random.pair_with!r}")
        for pool_id in self.market.noise.pool_rates:
            if pool_id not in ids:
                raise ValueError(f"market.noise.pool_rates: unknown pool {pool_id!r}")
        return self

    def registry(self) -> TokenRegistry:
        return TokenRegistry([t.to_token() for t in self.tokens])


def read_yaml_mapping(path: str | Path, what: str, holds: str) -> dict[str, Any]:
    """The mapping a YAML config file holds; :class:`ConfigError` when it cannot be read or is not one."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must be a mapping with {holds}")
    return raw


def validated(model: type[ModelT], raw: dict[str, Any], source: str) -> ModelT:
    """``raw`` as ``model``; :class:`ConfigError` naming every problem by its path."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source} is invalid: {problems}") from exc


def load_market_config(path: str | Path) -> MarketConfig:
    """Read and validate a market YAML file. Raises :class:`ConfigError`."""
    return parse_market_config(read_yaml_mapping(path, "market config", "tokens, pools and market"), str(path))


def parse_market_config(raw: dict[str, Any], source: str = "market config") -> MarketConfig:
    return validated(MarketConfig, raw, source)


def build_pool(spec: PoolSpec, registry: TokenRegistry, prices_usd: dict[str, float]) -> Pool:
    """One pool at the reference cross price, holding ``tvl_usd`` (its kind lays it out)."""
    base, quote = registry[spec.base], registry[spec.quote]
    setup = PoolSetup(
        pool_id=spec.id,
        dex=spec.dex,
        token_x=base,
        token_y=quote,
        price=prices_usd[spec.base] / prices_usd[spec.quote],  # human quote per base
        tvl_y=spec.tvl_usd / prices_usd[spec.quote] * quote.one,
        fee_bps=spec.fee_bps,
    )
    return pool_kind(spec.kind).build_from(setup, spec.kind_fields)


def build_pools(config: MarketConfig) -> list[Pool]:
    """Every pool of the config, in file order, at the reference prices."""
    registry = config.registry()
    prices = config.market.reference_prices_usd
    return [build_pool(spec, registry, prices) for spec in config.pools]


def build_market(config: MarketConfig, pools: list[Pool], *, seed: int, tick_s: float) -> Market:
    """The market process over ``pools``, stepping every ``tick_s`` from ``seed``."""
    return Market(pools, config.market.to_params(seed=seed, tick_s=tick_s))


__all__ = [
    "ArbitrageSpec",
    "ConfigError",
    "MarketConfig",
    "MarketSpec",
    "NoiseSpec",
    "PoolSpec",
    "TokenSpec",
    "build_market",
    "build_pool",
    "build_pools",
    "load_market_config",
    "parse_market_config",
]
