"""The interface every simulated pool implements, and its typed errors.

Modelled on Jupiter's AMM interface: quotes never mutate state, swaps do.
Amounts are integers in base units; prices are floats in human units of
token_out per token_in (informational, never used to move value).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from sim.tokens import Token


class SimError(Exception):
    """Base of the domain's typed errors. ``code`` is stable, for APIs."""

    code = "SIM_ERROR"
    transient = False


class InsufficientLiquidity(SimError):
    code = "INSUFFICIENT_LIQUIDITY"


class SlippageExceeded(SimError):
    code = "SLIPPAGE_EXCEEDED"
    transient = True

    def __init__(self, min_out: int, amount_out: int) -> None:
        super().__init__(f"slippage exceeded: would receive {amount_out}, minimum was {min_out}")
        self.min_out = min_out
        self.amount_out = amount_out


class UnsupportedToken(SimError):
    code = "UNSUPPORTED_TOKEN"


class InvalidSwapAmount(SimError):
    code = "INVALID_AMOUNT"


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
    bins_crossed: int = 0  # DLMM only

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class Pool(ABC):
    """A liquidity pool for one pair of tokens (x, y)."""

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
        """The fee a swap pays now, in basis points (DLMM: base + variable)."""

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

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state; ``restore(snapshot)`` rebuilds an equal pool."""

    @classmethod
    @abstractmethod
    def restore(cls, snapshot: dict[str, Any]) -> "Pool":
        ...
