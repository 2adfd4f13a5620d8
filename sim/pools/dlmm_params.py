"""A Meteora DLMM pair's static parameters and the config fields that set them.

Q64.64 bin prices and the fee parameters of an LbPair, bit-exact with the
on-chain program (``get_price_from_id``, base and variable fee rates over
1e9); how a new book's liquidity is laid out over its bins.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from sim.pools.base import ceil_div

BASIS_POINT_MAX = 10_000
FEE_PRECISION = 1_000_000_000
MAX_FEE_RATE = 100_000_000  # 10%
SCALE_OFFSET = 64
ONE = 1 << SCALE_OFFSET
U128_MAX = (1 << 128) - 1
MAX_BIN_ID = 443_636
_VARIABLE_FEE_SCALE = 100_000_000_000  # (1e4 bps)^2 * 1e4 bps / 1e9 precision
MAX_BASE_FACTOR = 65_535  # a u16 on chain

LiquidityShape = Literal["spot", "curve"]


@functools.lru_cache(maxsize=1 << 16)  # pure; every restore of a pool asks for its bins' prices again
def price_from_id(bin_id: int, bin_step: int) -> int:
    """Q64.64 price of ``bin_id``, bit-exact with the program's ``get_price_from_id``.

    Square-and-multiply on the inverted base (1 / (1 + step)), which stays
    below one so no product overflows 128 bits, then one final inversion.
    """
    if abs(bin_id) > MAX_BIN_ID:
        raise ValueError(f"bin id {bin_id} out of range")
    if bin_id == 0:
        return ONE
    squared = U128_MAX // (ONE + (bin_step << SCALE_OFFSET) // BASIS_POINT_MAX)
    exp = abs(bin_id)
    result = ONE
    for bit in range(19):
        if exp & (1 << bit):
            result = (result * squared) >> SCALE_OFFSET
        squared = (squared * squared) >> SCALE_OFFSET
    if result == 0:
        raise ValueError(f"bin id {bin_id} out of range for bin step {bin_step}")
    # The base was inverted, so a negative id is already 1/base^|id|.
    return result if bin_id < 0 else U128_MAX // result



@dataclass(frozen=True, slots=True)
class DlmmFeeParams:
    """Static fee parameters of an LbPair (defaults: Meteora's bin-step-20 preset)."""

    base_factor: int
    base_fee_power_factor: int = 0
    filter_period: int = 30
    decay_period: int = 600
    reduction_factor: int = 5_000
    variable_fee_control: int = 20_000
    max_volatility_accumulator: int = 350_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{field.name} must be a non-negative integer, got {value!r}")
        if self.filter_period > self.decay_period:
            raise ValueError("filter_period must not exceed decay_period")
        if self.reduction_factor > BASIS_POINT_MAX:
            raise ValueError("reduction_factor is in basis points, at most 10000")

    def base_fee_rate(self, bin_step: int) -> int:
        """Over FEE_PRECISION (1e9)."""
        power: int = 10**self.base_fee_power_factor
        return self.base_factor * bin_step * 10 * power

    def variable_fee_rate(self, bin_step: int, volatility_accumulator: int) -> int:
        """Over FEE_PRECISION; ``ceil(vfc * (va * bin_step)^2 / 1e11)`` as on chain."""
        if self.variable_fee_control == 0:
            return 0
        square = (volatility_accumulator * bin_step) ** 2
        return ceil_div(self.variable_fee_control * square, _VARIABLE_FEE_SCALE)

    def total_fee_rate(self, bin_step: int, volatility_accumulator: int) -> int:
        total = self.base_fee_rate(bin_step) + self.variable_fee_rate(bin_step, volatility_accumulator)
        return min(total, MAX_FEE_RATE)



def base_fee_factors(fee_bps: float, bin_step: int) -> tuple[int, int]:
    """(base_factor, base_fee_power_factor) whose base fee is exactly ``fee_bps``.

    Meteora: base fee rate = base_factor * bin_step * 10 * 10^power / 1e9,
    i.e. fee_bps = base_factor * 10^power * bin_step / 10000, and
    base_factor is a u16. Raises ValueError when no such pair exists.
    """
    exact = Fraction(str(fee_bps)) * BASIS_POINT_MAX / bin_step
    if exact.denominator != 1:
        raise ValueError(
            f"Meteora's base fee is base_factor * bin_step / 10000 bps, so "
            f"fee_bps * 10000 / bin_step must be a whole number "
            f"({fee_bps} * 10000 / {bin_step} is not)"
        )
    factor, power = int(exact), 0
    while factor > MAX_BASE_FACTOR and factor % 10 == 0:
        factor //= 10
        power += 1
    if factor > MAX_BASE_FACTOR:
        raise ValueError(
            f"fee_bps {fee_bps} with bin_step {bin_step} needs "
            f"base_factor {int(exact)}, above the on-chain maximum {MAX_BASE_FACTOR}"
        )
    return factor, power


def spread_liquidity(
    base_price: float, value_y: int, bin_step: int, bins_each_side: int, shape: str
) -> tuple[int, dict[int, tuple[int, int]]]:
    """(active bin id, bins) holding ``value_y`` around ``base_price`` (base units of y per x).

    Y sits in the bins below the active one, X above, the active bin holds
    half of each. ``spot`` spreads value evenly over the ``2n + 1`` bins,
    ``curve`` concentrates it around the price (Gaussian, sigma = n / 2).
    """
    if bins_each_side < 0:
        raise ValueError("bins_each_side must be >= 0")
    active_id = round(math.log(base_price) / math.log1p(bin_step / BASIS_POINT_MAX))
    offsets = range(-bins_each_side, bins_each_side + 1)
    if shape == "spot":
        weights = [1 for _ in offsets]
    elif shape == "curve":
        sigma = max(bins_each_side / 2, 0.5)
        weights = [max(1, round(1e9 * math.exp(-0.5 * (k / sigma) ** 2))) for k in offsets]
    else:
        raise ValueError(f"unknown liquidity shape {shape!r}")
    total_weight = sum(weights)
    bins: dict[int, tuple[int, int]] = {}
    for k, weight in zip(offsets, weights):
        bin_id = active_id + k
        value = value_y * weight // total_weight
        bin_price = price_from_id(bin_id, bin_step)
        if k < 0:
            bins[bin_id] = (0, value)
        elif k > 0:
            bins[bin_id] = ((value << SCALE_OFFSET) // bin_price, 0)
        else:
            half = value // 2
            bins[bin_id] = (((value - half) << SCALE_OFFSET) // bin_price, half)
    return active_id, bins


# --------------------------------------------------------------------------- config fields

FIELDS = ("bin_step", "bins_each_side", "liquidity_shape", "dlmm")
# A config's ``dlmm`` mapping: every fee parameter but the two that ``fee_bps`` sets.
VARIABLE_FEE_FIELDS = tuple(
    field.name
    for field in dataclasses.fields(DlmmFeeParams)
    if field.name not in ("base_factor", "base_fee_power_factor")
)


@dataclass(frozen=True, slots=True)
class DlmmBook:
    """A DLMM pool's own config fields: how its liquidity is binned, and its fees."""

    bin_step: int
    bins_each_side: int
    liquidity_shape: LiquidityShape
    fees: DlmmFeeParams


def _bounded_int(fields: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = fields.get(name)
    if value is None:
        raise ValueError(f"a dlmm pool needs {name}")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def parse_fields(fee_bps: float, fields: Mapping[str, Any]) -> DlmmBook:
    """``bin_step``, ``bins_each_side``, ``liquidity_shape`` and the variable-fee ``dlmm`` mapping."""
    bin_step = _bounded_int(fields, "bin_step", 1, 500)
    bins_each_side = _bounded_int(fields, "bins_each_side", 0, 1_000)
    shape = fields.get("liquidity_shape", "spot")
    if shape not in ("spot", "curve"):
        raise ValueError(f"liquidity_shape must be 'spot' or 'curve', got {shape!r}")
    variable = fields.get("dlmm") or {}
    if not isinstance(variable, Mapping):
        raise ValueError(f"dlmm must be a mapping of variable-fee parameters, got {variable!r}")
    unknown = [name for name in variable if name not in VARIABLE_FEE_FIELDS]
    if unknown:
        raise ValueError(f"dlmm: unknown {', '.join(unknown)} (known: {', '.join(VARIABLE_FEE_FIELDS)})")
    factor, power = base_fee_factors(fee_bps, bin_step)
    fees = DlmmFeeParams(base_factor=factor, base_fee_power_factor=power, **variable)
    return DlmmBook(bin_step, bins_each_side, shape, fees)
