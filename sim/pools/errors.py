"""The domain's typed errors. ``code`` is stable, for APIs."""

from __future__ import annotations


class SimError(Exception):
    """Base of the domain's typed errors."""

    code = "SIM_ERROR"
    transient = False


class InsufficientLiquidity(SimError):
    code = "INSUFFICIENT_LIQUIDITY"


class AmountTooSmall(InsufficientLiquidity):
    """The input is so small that, after fees and rounding, it buys nothing."""

    code = "AMOUNT_TOO_SMALL"


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
