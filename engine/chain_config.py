"""The chain configuration (configs/chain.yaml): the chain, its congestion presets, swap transactions, MEV.

Validated by pydantic when loaded, with messages that name the offending
key; ``ChainConfig.params`` and ``ChainConfig.congestion`` turn it into the
``sim.chain`` values. The seed and the start time are the engine's settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.config import read_yaml_mapping, validated
from sim.chain import ChainParams
from sim.chain_fees import FEE_LEVELS, MAX_CU_PER_TX, Congestion
from sim.mev import MevParams

DEFAULT_CHAIN_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "chain.yaml"
PRESETS = ("calm", "busy", "congested")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChainSpec(_Strict):
    slot_s: float = Field(0.4, gt=0, le=10)
    skip_rate: float = Field(0.05, ge=0, lt=1)
    blockhash_valid_blocks: int = Field(150, ge=1)
    block_cu_limit: int = Field(48_000_000, ge=MAX_CU_PER_TX)
    account_cu_limit: int = Field(12_000_000, ge=MAX_CU_PER_TX)
    bundle_cu_limit: int = Field(12_000_000, ge=0)
    rebroadcast_s: float = Field(2.0, gt=0)
    leader_slots: int = Field(4, ge=1)
    forward_leaders: int = Field(2, ge=1)
    jito_share: float = Field(0.95, ge=0, le=1)
    confirm_depth: int = Field(1, ge=0)
    finalize_depth: int = Field(32, ge=0)
    fee_window_blocks: int = Field(150, ge=1)
    max_pending: int = Field(10_000, ge=1)
    cu_median: int = Field(100_000, ge=1, le=MAX_CU_PER_TX)
    cu_sigma: float = Field(0.8, ge=0, le=3)

    @model_validator(mode="after")
    def _consistent(self) -> ChainSpec:
        if self.account_cu_limit > self.block_cu_limit or self.bundle_cu_limit > self.block_cu_limit:
            raise ValueError("account_cu_limit and bundle_cu_limit must not exceed block_cu_limit")
        if self.finalize_depth < self.confirm_depth:
            raise ValueError("finalize_depth must be >= confirm_depth")
        return self


class CongestionSpec(_Strict):
    load: float = Field(ge=0, le=20)
    wave_sigma: float = Field(0.2, ge=0, le=3)
    wave_s: float = Field(20.0, gt=0)
    fee_scale: float = Field(1.0, ge=0)
    ingress_loss: float = Field(0.0, ge=0, lt=1)
    bundles_per_slot: float = Field(5.0, ge=0)
    tip_scale: float = Field(1.0, ge=0)
    hot_load: float = Field(0.1, ge=0, le=50)
    hot_fee_scale: float = Field(1.0, ge=0)

    def to_congestion(self, name: str) -> Congestion:
        return Congestion(name=name, **self.model_dump())


class TransactionSpec(_Strict):
    """How the executor builds a swap transaction."""

    cu_limit: dict[str, int] = Field(default_factory=lambda: {"cpmm": 140_000, "dlmm": 170_000})
    default_cu_limit: int = Field(200_000, ge=1, le=MAX_CU_PER_TX)
    priority_fee: str | int = "auto"
    max_priority_fee_lamports: int | None = Field(5_000_000, ge=0)
    fee_estimate: Literal["chain", "account"] = "chain"

    @field_validator("cu_limit")
    @classmethod
    def _limits(cls, limits: dict[str, int]) -> dict[str, int]:
        for kind, limit in limits.items():
            if not 1 <= limit <= MAX_CU_PER_TX:
                raise ValueError(f"cu_limit of {kind} must be within 1..{MAX_CU_PER_TX}, got {limit}")
        return limits

    @field_validator("priority_fee")
    @classmethod
    def _fee(cls, fee: str | int) -> str | int:
        if isinstance(fee, int) and fee < 0:
            raise ValueError(f"a priority fee in micro-lamports per CU must be >= 0, got {fee}")
        if isinstance(fee, str) and fee not in FEE_LEVELS:
            raise ValueError(f"priority_fee {fee!r}: one of {', '.join(FEE_LEVELS)}, or micro-lamports per CU")
        return fee

    def cu_limit_for(self, pool_kind: str) -> int:
        return self.cu_limit.get(pool_kind, self.default_cu_limit)


class MevSpec(_Strict):
    rate: float = Field(0.0, ge=0, le=1)
    min_profit_lamports: int = Field(10_000, ge=0)
    tip_share: float = Field(0.5, ge=0, le=1)
    cu_limit: int = Field(150_000, ge=1, le=MAX_CU_PER_TX)
    cu_price: int = Field(0, ge=0)

    def to_params(self) -> MevParams:
        return MevParams(**self.model_dump())


class ChainConfig(_Strict):
    chain: ChainSpec = ChainSpec()
    preset: str = "calm"
    presets: dict[str, CongestionSpec]
    transactions: TransactionSpec = TransactionSpec()
    mev: MevSpec = MevSpec()

    @model_validator(mode="after")
    def _presets(self) -> ChainConfig:
        missing = [name for name in PRESETS if name not in self.presets]
        if missing:
            raise ValueError(f"presets: {', '.join(missing)} missing (every config has {', '.join(PRESETS)})")
        if self.preset not in self.presets:
            raise ValueError(f"preset {self.preset!r} is not one of the presets: {', '.join(self.presets)}")
        return self

    def congestion(self, name: str | None = None) -> Congestion:
        """A preset by name (default: the one the chain starts in). KeyError names the known ones."""
        name = self.preset if name is None else name
        if name not in self.presets:
            raise KeyError(f"unknown congestion preset {name!r}: one of {', '.join(self.presets)}")
        return self.presets[name].to_congestion(name)

    def params(self, *, seed: int, genesis_time: float, preset: str | None = None) -> ChainParams:
        return ChainParams(
            **self.chain.model_dump(), genesis_time=genesis_time, seed=seed, congestion=self.congestion(preset)
        )


def load_chain_config(path: str | Path = DEFAULT_CHAIN_CONFIG) -> ChainConfig:
    """Read and validate a chain YAML file. Raises :class:`engine.config.ConfigError`."""
    raw = read_yaml_mapping(path, "chain config", "chain, presets, transactions and mev")
    return parse_chain_config(raw, source=str(path))


def parse_chain_config(raw: dict[str, Any], source: str = "chain config") -> ChainConfig:
    return validated(ChainConfig, raw, source)


def _laid_over(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = _laid_over(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def chain_config_with(path: str | Path, overrides: dict[str, Any]) -> ChainConfig:
    """The chain file with ``overrides`` laid over it, section by section (engine setting ``chain.overrides``)."""
    raw = read_yaml_mapping(path, "chain config", "chain, presets, transactions and mev")
    return parse_chain_config(_laid_over(raw, overrides), source=f"{path} with chain.overrides")


__all__ = [
    "DEFAULT_CHAIN_CONFIG",
    "PRESETS",
    "ChainConfig",
    "ChainSpec",
    "CongestionSpec",
    "MevSpec",
    "TransactionSpec",
    "chain_config_with",
    "load_chain_config",
    "parse_chain_config",
]
