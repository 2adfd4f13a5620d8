"""The interface every simulated pool implements, and what a pool kind provides.

Modelled on Jupiter's AMM interface: quotes never mutate state, swaps do.
Amounts are integers in base units; prices are floats in human units of
token_out per token_in (informational, never used to move value).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sim.pools.curves import OutputCurve, SampledCurve
from sim.pools.errors import (
    AmountTooSmall,
    InsufficientLiquidity,
    InvalidSwapAmount,
    SimError,
    SlippageExceeded,
    UnsupportedToken,
)
from sim.tokens import Token


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def check_amount(amount: int, what: str) -> None:
    """A swap amount is a positive integer of base units."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidSwapAmount(f"{what} must be an integer number of base units, got {amount!r}")
    if amount <= 0:
        raise InvalidSwapAmount(f"{what} must be positive, got {amount}")


def check_min_out(min_out: int) -> None:
    if isinstance(min_out, bool) or not isinstance(min_out, int) or min_out < 0:
        raise InvalidSwapAmount(f"min_out must be a non-negative integer, got {min_out!r}")


def token_to_dict(token: Token) -> dict[str, Any]:
    return {"symbol": token.symbol, "mint": token.mint, "decimals": token.decimals}


@dataclass(frozen=True, slots=True)
class SwapQuote:
    pool_id: str
    dex: str
    token_in: str  # symbol
    token_out: str  # symbol
    amount_in: int  # base units of token_in, fee included
    amount_out: int  # base units of token_out
    fee: int  # base units of token_in paid as fee
    spot_price_before: float  # token_out per token_in, human units, fees excluded
    spot_price_after: float
    execution_price: float  # amount_out / amount_in in human units, fees included
    price_impact_bps: float  # move of the spot price caused by the swap, fees excluded
    slippage_bps: float  # execution price vs spot before, fees included
    bins_crossed: int = 0  # pools with price bins only

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class Pool(ABC):
    """A liquidity pool for one pair of tokens (x, y)."""

    kind: ClassVar[str]  # the pool kind's registry name, also the snapshot's "type"
    dex: str
    pool_id: str
    token_x: Token
    token_y: Token

    @property
    def tokens(self) -> tuple[Token, Token]:
        return (self.token_x, self.token_y)

    def other(self, token_in: str) -> Token:
        if token_in == self.token_x.symbol:
            return self.token_y
        if token_in == self.token_y.symbol:
            return self.token_x
        raise UnsupportedToken(f"pool {self.pool_id} does not trade {token_in}")

    def serves(self, token_in: str, token_out: str) -> bool:
        pair = {self.token_x.symbol, self.token_y.symbol}
        return token_in != token_out and {token_in, token_out} == pair

    @property
    @abstractmethod
    def fee_bps(self) -> float:
        """The fee a swap pays now, in basis points (a variable fee included)."""

    def fee_bps_at(self, now: float) -> float:
        """The fee a swap starting at ``now`` would pay (differs where fees decay in time)."""
        return self.fee_bps

    @abstractmethod
    def quote_exact_in(self, token_in: str, amount_in: int, now: float = 0.0) -> SwapQuote:
        """Exact result of selling ``amount_in`` now, without mutating state."""

    @abstractmethod
    def quote_exact_out(self, token_in: str, amount_out: int, now: float = 0.0) -> SwapQuote:
        """Smallest input that buys at least ``amount_out``, without mutating state."""

    @abstractmethod
    def swap_exact_in(
        self, token_in: str, amount_in: int, min_out: int = 0, now: float = 0.0
    ) -> SwapQuote:
        """Execute; raise SlippageExceeded (state untouched) when out < min_out."""

    @abstractmethod
    def spot_price(self, token_in: str) -> float:
        """Marginal price of token_in in token_out, human units, fees excluded."""

    @abstractmethod
    def reserves(self) -> dict[str, int]:
        """Every base unit the pool holds, by symbol, fees included."""

    def output_curve(self, token_in: str, total: int, now: float) -> OutputCurve:
        """The pool's output as a function of its share of an order of ``total``.

        The split solver equalises the curves' marginal rates. By default the
        curve is sampled with exact quotes; a kind whose output has a closed
        form returns that instead.
        """
        return SampledCurve(self, token_in, total, now)

    def extra_summary(self) -> dict[str, Any]:
        """Kind-specific fields of the pool view clients see (camelCase, JSON-ready)."""
        return {}

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state, ``"type": kind`` included; ``restore`` rebuilds an equal pool."""

    @classmethod
    @abstractmethod
    def restore(cls, snapshot: dict[str, Any]) -> "Pool":
        ...

    @classmethod
    def check_snapshot(cls, snapshot: Mapping[str, Any]) -> None:
        if snapshot.get("type") != cls.kind:
            raise ValueError(f"not a {cls.kind} snapshot: type={snapshot.get('type')!r}")


# --------------------------------------------------------------------------- pool kinds


@dataclass(frozen=True, slots=True)
class PoolSetup:
    """A new pool as a market config describes it, at the reference price."""

    pool_id: str
    dex: str
    token_x: Token
    token_y: Token
    price: float  # human units of y per x: the reference cross price
    tvl_y: float  # the pool's whole value in base units of y, not yet rounded
    fee_bps: float  # the trade fee (where the fee varies: the base fee)


FieldsT = TypeVar("FieldsT")


def no_fields(fee_bps: float, fields: Mapping[str, Any]) -> None:
    """``parse_fields`` of a kind that the common config fields describe fully."""
    return None


@dataclass(frozen=True)
class PoolKind(Generic[FieldsT]):
    """One kind of pool: its class, its own config fields and how it is built.

    ``parse_fields(fee_bps, fields)`` validates the config fields of this kind
    beyond the common ones (raising ValueError with a message for people) and
    returns what ``build(setup, parsed)`` needs.
    """

    pool_type: type[Pool]
    build: Callable[[PoolSetup, FieldsT], Pool]
    parse_fields: Callable[[float, Mapping[str, Any]], FieldsT]
    fields: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.pool_type.kind

    def configure(self, fee_bps: float, fields: Mapping[str, Any]) -> FieldsT:
        """This kind's own config fields, validated; a field of another kind is refused."""
        unknown = [name for name in fields if name not in self.fields]
        if unknown:
            own = f" (their own fields: {', '.join(self.fields)})" if self.fields else ""
            raise ValueError(f"{self.name} pools take no {', '.join(unknown)}{own}")
        return self.parse_fields(fee_bps, fields)

    def build_from(self, setup: PoolSetup, fields: Mapping[str, Any]) -> Pool:
        """A new pool of this kind, as a market config describes it."""
        return self.build(setup, self.configure(setup.fee_bps, fields))

    def restore(self, snapshot: dict[str, Any]) -> Pool:
        return self.pool_type.restore(snapshot)


__all__ = [
    "AmountTooSmall",
    "InsufficientLiquidity",
    "InvalidSwapAmount",
    "Pool",
    "PoolKind",
    "PoolSetup",
    "SimError",
    "SlippageExceeded",
    "SwapQuote",
    "UnsupportedToken",
    "ceil_div",
    "check_amount",
    "check_min_out",
    "no_fields",
    "token_to_dict",
]
