"""The market configuration (configs/market.yaml): tokens, pools, market process.

Validated by pydantic when loaded, with messages that name the offending
pool or token; ``build_pools`` and ``build_market`` turn a valid config into
``sim`` objects.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.market import ArbitrageParams, Market, MarketParams, NoiseParams
from sim.pools import CpmmPool, DlmmFeeParams, DlmmPool, Pool
from sim.tokens import Token, TokenRegistry

BASE58 = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
MAX_FEE_BPS = 1_000  # 10 %, the DLMM program's cap too
CPMM_FEE_DEN = 1_000_000  # Raydium's fee denominator: a fee is a whole number of 0.01 bps
MAX_BASE_FACTOR = 65_535  # u16 on chain


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


class DlmmParamsSpec(_Strict):
    """Meteora's variable-fee parameters (defaults: the bin-step-20 preset)."""

    filter_period: int = Field(30, ge=0)
    decay_period: int = Field(600, ge=0)
    reduction_factor: int = Field(5_000, ge=0, le=10_000)
    variable_fee_control: int = Field(20_000, ge=0)
    max_volatility_accumulator: int = Field(350_000, ge=0)

    @model_validator(mode="after")
    def _periods(self) -> "DlmmParamsSpec":
        if self.filter_period > self.decay_period:
            raise ValueError("filter_period must not exceed decay_period")
        return self


class PoolSpec(_Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    dex: Literal["raydium", "meteora"]
    kind: Literal["cpmm", "dlmm"]
    base: str  # token_x
    quote: str  # token_y
    fee_bps: float = Field(description="CPMM: the trade fee; DLMM: the base fee")
    tvl_usd: float = Field(gt=0)
    bin_step: int | None = Field(None, ge=1, le=500)
    bins_each_side: int | None = Field(None, ge=0, le=1_000)
    liquidity_shape: Literal["spot", "curve"] = "spot"
    dlmm: DlmmParamsSpec | None = None

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
        if self.kind == "dlmm":
            if self.bin_step is None:
                raise ValueError(f"pool {self.id}: a dlmm pool needs bin_step")
            if self.bins_each_side is None:
                raise ValueError(f"pool {self.id}: a dlmm pool needs bins_each_side")
            self._base_factor()  # raises when the fee cannot be expressed
        else:
            extra = [
                name
                for name in ("bin_step", "bins_each_side", "dlmm")
                if getattr(self, name) is not None
            ]
            if extra:
                raise ValueError(f"pool {self.id}: {', '.join(extra)} only apply to dlmm pools")
        return self

    def _base_factor(self) -> tuple[int, int]:
        """(base_factor, base_fee_power_factor) with base fee = fee_bps.

        Meteora: base fee rate = base_factor * bin_step * 10 * 10^power / 1e9,
        i.e. fee_bps = base_factor * 10^power * bin_step / 10000, and
        base_factor is a u16.
        """
        assert self.bin_step is not None
        exact = Fraction(str(self.fee_bps)) * 10_000 / self.bin_step
        if exact.denominator != 1:
            raise ValueError(
                f"pool {self.id}: Meteora's base fee is base_factor * bin_step / 10000 bps, so "
                f"fee_bps * 10000 / bin_step must be a whole number "
                f"({self.fee_bps} * 10000 / {self.bin_step} is not)"
            )
        factor, power = int(exact), 0
        while factor > MAX_BASE_FACTOR and factor % 10 == 0:
            factor //= 10
            power += 1
        if factor > MAX_BASE_FACTOR:
            raise ValueError(
                f"pool {self.id}: fee_bps {self.fee_bps} with bin_step {self.bin_step} needs "
                f"base_factor {int(exact)}, above the on-chain maximum {MAX_BASE_FACTOR}"
            )
        return factor, power

    def dlmm_fee_params(self) -> DlmmFeeParams:
        """The DLMM fee parameters, with a base fee equal to ``fee_bps``."""
        factor, power = self._base_factor()
        extra = self.dlmm or DlmmParamsSpec()
        return DlmmFeeParams(
            base_factor=factor,
            base_fee_power_factor=power,
            **extra.model_dump(),
        )


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


class MarketSpec(_Strict):
    seed: int = 7
    tick_s: float = Field(1.0, gt=0)
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

    def to_params(self, seed: int | None = None) -> MarketParams:
        return MarketParams(
            reference_prices_usd=dict(self.reference_prices_usd),
            volatility=dict(self.volatility),
            volatility_unit=self.volatility_unit,
            mean_reversion=dict(self.mean_reversion),
            tick_s=self.tick_s,
            seed=self.seed if seed is None else seed,
            arbitrage=ArbitrageParams(**self.arbitrage.model_dump()),
            noise=NoiseParams(**self.noise.model_dump()),
        )


class MarketConfig(_Strict):
    tokens: list[TokenSpec] = Field(min_length=1)
    pools: list[PoolSpec] = Field(min_length=1)
    market: MarketSpec

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
        for pool_id in self.market.noise.pool_rates:
            if pool_id not in ids:
                raise ValueError(f"market.noise.pool_rates: unknown pool {pool_id!r}")
        return self

    def registry(self) -> TokenRegistry:
        return TokenRegistry([t.to_token() for t in self.tokens])

    def pool(self, pool_id: str) -> PoolSpec:
        for spec in self.pools:
            if spec.id == pool_id:
                return spec
        raise KeyError(pool_id)


def load_market_config(path: str | Path) -> MarketConfig:
    """Read and validate a market YAML file. Raises :class:`ConfigError`."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read market config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"market config {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"market config {path} must be a mapping with tokens, pools and market")
    return parse_market_config(raw, source=str(path))


def parse_market_config(raw: dict[str, Any], source: str = "market config") -> MarketConfig:
    try:
        return MarketConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{source} is invalid: {problems}") from exc


def build_pool(spec: PoolSpec, registry: TokenRegistry, prices_usd: dict[str, float]) -> Pool:
    """One pool at the reference cross price, holding ``tvl_usd``: half on each side."""
    base, quote = registry[spec.base], registry[spec.quote]
    price = prices_usd[spec.base] / prices_usd[spec.quote]  # human quote per base
    tvl_in_quote = spec.tvl_usd / prices_usd[spec.quote] * quote.one
    if spec.kind == "cpmm":
        fee_num = round(Decimal(str(spec.fee_bps)) * CPMM_FEE_DEN / 10_000)
        return CpmmPool.at_price(
            spec.id,
            base,
            quote,
            price=price,
            value_y=int(tvl_in_quote / 2),
            fee_num=int(fee_num),
            fee_den=CPMM_FEE_DEN,
            dex=spec.dex,
        )
    assert spec.bin_step is not None and spec.bins_each_side is not None
    return DlmmPool.with_liquidity(
        spec.id,
        base,
        quote,
        price=price,
        value_y=int(tvl_in_quote),  # the whole book, valued in quote units
        bin_step=spec.bin_step,
        bins_each_side=spec.bins_each_side,
        params=spec.dlmm_fee_params(),
        dex=spec.dex,
        shape=spec.liquidity_shape,
    )


def build_pools(config: MarketConfig) -> list[Pool]:
    """Every pool of the config, in file order, at the reference prices."""
    registry = config.registry()
    prices = config.market.reference_prices_usd
    return [build_pool(spec, registry, prices) for spec in config.pools]


def build_market(config: MarketConfig, pools: list[Pool], seed: int | None = None) -> Market:
    """The market process over ``pools`` (seed: the config's unless given)."""
    return Market(pools, config.market.to_params(seed))


__all__ = [
    "ArbitrageSpec",
    "ConfigError",
    "DlmmParamsSpec",
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
