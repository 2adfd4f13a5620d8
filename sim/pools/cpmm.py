"""Raydium-style constant-product pool (x * y = k, fee taken from the input).

Integer math as on chain, every rounding against the trader:

* exact in:  ``fee = ceil(dx * fee_num / fee_den)``,
  ``dy = floor(y * (dx - fee) / (x + dx - fee))``;
* exact out: ``dx = ceil(ceil(x * dy / (y - dy)) * fee_den / (fee_den - fee_num))``,
  which is the smallest ``dx`` whose exact-in output is at least ``dy``.

The whole input, fee included, is paid into the input vault. By default the
whole fee stays in the pool (k grows with every swap). A pool with Raydium's
protocol and fund shares (``sim.pools.cpmm_fees``) owes those parts of each fee
and prices without them: ``reserve_x``/``reserve_y`` are what it prices with
(the vault minus what it owes), ``reserves()`` what its vaults hold.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sim.pools.base import (
    AmountTooSmall,
    InsufficientLiquidity,
    Pool,
    PoolKind,
    PoolSetup,
    SlippageExceeded,
    SwapQuote,
    ceil_div,
    check_amount,
    check_min_out,
    token_to_dict,
)
from sim.pools.cpmm_fees import FIELDS, NO_SHARES, FeeShares, parse_fields
from sim.pools.curves import ConstantProductCurve, OutputCurve
from sim.tokens import Token

FEE_DEN = 1_000_000  # Raydium's fee denominator: a fee is a whole number of 0.01 bps


class CpmmPool(Pool):
    """A constant-product pool between ``token_x`` and ``token_y``."""

    kind = "cpmm"

    def __init__(
        self,
        pool_id: str,
        token_x: Token,
        token_y: Token,
        reserve_x: int,
        reserve_y: int,
        fee_num: int = 25,
        fee_den: int = 10_000,
        dex: str = "raydium",
        shares: FeeShares = NO_SHARES,
    ) -> None:
        """``reserve_x``/``reserve_y``: the reserves it prices with (what its vaults hold, less what it owes)."""
        if token_x.symbol == token_y.symbol:
            raise ValueError("a pool needs two different tokens")
        for name, value in (("reserve_x", reserve_x), ("reserve_y", reserve_y)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(fee_num, int) and isinstance(fee_den, int)) or not 0 <= fee_num < fee_den:
            raise ValueError(f"fee must satisfy 0 <= fee_num < fee_den, got {fee_num}/{fee_den}")
        self.pool_id = pool_id
        self.dex = dex
        self.token_x = token_x
        self.token_y = token_y
        self.reserve_x = reserve_x
        self.reserve_y = reserve_y
        self.fee_num = fee_num
        self.fee_den = fee_den
        self.shares = shares
        # Owed out of the vaults, as the program's protocol_fees_token_* and fund_fees_token_*.
        self.protocol_fees_x = self.protocol_fees_y = 0
        self.fund_fees_x = self.fund_fees_y = 0

    @classmethod
    def at_price(
        cls,
        pool_id: str,
        token_x: Token,
        token_y: Token,
        *,
        price: float,
        value_y: int,
        fee_num: int = 25,
        fee_den: int = 10_000,
        dex: str = "raydium",
        shares: FeeShares = NO_SHARES,
    ) -> "CpmmPool":
        """A pool holding ``value_y`` base units of y, with x sized so spot = ``price``.

        ``price`` is in human units of y per x.
        """
        if not math.isfinite(price) or price <= 0:
            raise ValueError(f"price must be positive and finite, got {price!r}")
        # repr() keeps the decimal the caller wrote (150.0 -> 150, not a binary expansion).
        base_price = Fraction(repr(price)) * 10**token_y.decimals / 10**token_x.decimals
        reserve_x = round(Fraction(value_y) / base_price)
        return cls(pool_id, token_x, token_y, reserve_x, value_y, fee_num, fee_den, dex, shares)

    @property
    def fee_bps(self) -> float:
        return self.fee_num / self.fee_den * 1e4

    def _sides(self, token_in: str) -> tuple[Token, Token, int, int]:
        token_out = self.other(token_in)
        if token_in == self.token_x.symbol:
            return self.token_x, token_out, self.reserve_x, self.reserve_y
        return self.token_y, token_out, self.reserve_y, self.reserve_x

    @staticmethod
    def _human_price(out_units: int, out_token: Token, in_units: int, in_token: Token) -> float:
        return (out_units / out_token.one) / (in_units / in_token.one)

    def quote_exact_in(self, token_in: str, amount_in: int, now: float = 0.0) -> SwapQuote:
        t_in, t_out, r_in, r_out = self._sides(token_in)
        check_amount(amount_in, "amount_in")
        fee = ceil_div(amount_in * self.fee_num, self.fee_den)
        net = amount_in - fee
        amount_out = r_out * net // (r_in + net)
        if amount_out <= 0:
            raise AmountTooSmall(
                f"pool {self.pool_id}: {amount_in} {t_in.symbol} base units buy nothing"
            )
        kept = amount_in - sum(self.shares.split(fee))  # what the input reserve grows by
        before = self._human_price(r_out, t_out, r_in, t_in)
        after = self._human_price(r_out - amount_out, t_out, r_in + kept, t_in)
        executed = self._human_price(amount_out, t_out, amount_in, t_in)
        return SwapQuote(
            pool_id=self.pool_id,
            dex=self.dex,
            token_in=t_in.symbol,
            token_out=t_out.symbol,
            amount_in=amount_in,
            amount_out=amount_out,
            fee=fee,
            spot_price_before=before,
            spot_price_after=after,
            execution_price=executed,
            price_impact_bps=(before - after) / before * 1e4,
            slippage_bps=(before - executed) / before * 1e4,
        )

    def quote_exact_out(self, token_in: str, amount_out: int, now: float = 0.0) -> SwapQuote:
        t_in, t_out, r_in, r_out = self._sides(token_in)
        check_amount(amount_out, "amount_out")
        if amount_out >= r_out:
            raise InsufficientLiquidity(
                f"pool {self.pool_id} holds {r_out} {t_out.symbol} base units, "
                f"cannot pay out {amount_out}"
            )
        net = ceil_div(r_in * amount_out, r_out - amount_out)
        amount_in = ceil_div(net * self.fee_den, self.fee_den - self.fee_num)
        # The exact-in quote of that input pays at least amount_out (see module doc).
        return self.quote_exact_in(token_in, amount_in, now)

    def swap_exact_in(
        self, token_in: str, amount_in: int, min_out: int = 0, now: float = 0.0
    ) -> SwapQuote:
        check_min_out(min_out)
        quote = self.quote_exact_in(token_in, amount_in, now)
        if quote.amount_out < min_out:
            raise SlippageExceeded(min_out, quote.amount_out)
        protocol, fund = self.shares.split(quote.fee)
        kept = quote.amount_in - protocol - fund
        if token_in == self.token_x.symbol:
            self.reserve_x += kept
            self.reserve_y -= quote.amount_out
            self.protocol_fees_x += protocol
            self.fund_fees_x += fund
        else:
            self.reserve_y += kept
            self.reserve_x -= quote.amount_out
            self.protocol_fees_y += protocol
            self.fund_fees_y += fund
        return quote

    def spot_price(self, token_in: str) -> float:
        t_in, t_out, r_in, r_out = self._sides(token_in)
        return self._human_price(r_out, t_out, r_in, t_in)

    def reserves(self) -> dict[str, int]:
        """What the vaults hold: the reserves it prices with plus the protocol's and fund's fees it owes.

        Every swap changes them by exactly what it paid in and took out, which is what the
        books check. The price comes from ``reserve_x``/``reserve_y`` alone, as the program
        prices with ``vault_amount_without_fee``.
        """
        owed = self.owed_fees()
        return {self.token_x.symbol: self.reserve_x + owed[self.token_x.symbol],
                self.token_y.symbol: self.reserve_y + owed[self.token_y.symbol]}  # fmt: skip

    def owed_fees(self) -> dict[str, int]:
        """The protocol's and the fund's fees accrued, by token: in the vaults, not priced with."""
        return {self.token_x.symbol: self.protocol_fees_x + self.fund_fees_x,
                self.token_y.symbol: self.protocol_fees_y + self.fund_fees_y}  # fmt: skip

    def output_curve(self, token_in: str, total: int, now: float) -> OutputCurve:
        _, _, r_in, r_out = self._sides(token_in)
        gamma = 1.0 - self.fee_num / self.fee_den
        return ConstantProductCurve(
            self, token_in, total, now, reserve_in=r_in, reserve_out=r_out, gamma=gamma
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "pool_id": self.pool_id,
            "dex": self.dex,
            "token_x": token_to_dict(self.token_x),
            "token_y": token_to_dict(self.token_y),
            "reserve_x": self.reserve_x,
            "reserve_y": self.reserve_y,
            "fee_num": self.fee_num,
            "fee_den": self.fee_den,
            "protocol_fee_share": self.shares.protocol,
            "fund_fee_share": self.shares.fund,
            "protocol_fees_x": self.protocol_fees_x,
            "protocol_fees_y": self.protocol_fees_y,
            "fund_fees_x": self.fund_fees_x,
            "fund_fees_y": self.fund_fees_y,
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> "CpmmPool":
        """A snapshot from before the fee shares (no such fields) restores with none owed."""
        cls.check_snapshot(snapshot)
        pool = cls(
            snapshot["pool_id"],
            Token(**snapshot["token_x"]),
            Token(**snapshot["token_y"]),
            snapshot["reserve_x"],
            snapshot["reserve_y"],
            snapshot["fee_num"],
            snapshot["fee_den"],
            snapshot["dex"],
            FeeShares(snapshot.get("protocol_fee_share", 0), snapshot.get("fund_fee_share", 0)),
        )
        pool.protocol_fees_x = snapshot.get("protocol_fees_x", 0)
        pool.protocol_fees_y = snapshot.get("protocol_fees_y", 0)
        pool.fund_fees_x = snapshot.get("fund_fees_x", 0)
        pool.fund_fees_y = snapshot.get("fund_fees_y", 0)
        return pool

    def __repr__(self) -> str:
        return (
            f"CpmmPool({self.pool_id!r}, {self.token_x.symbol}={self.reserve_x}, "
            f"{self.token_y.symbol}={self.reserve_y}, fee={self.fee_num}/{self.fee_den})"
        )


def build(setup: PoolSetup, shares: FeeShares) -> CpmmPool:
    """Half the value on each side, the fee counted in millionths as Raydium does."""
    fee_num = round(Decimal(str(setup.fee_bps)) * FEE_DEN / 10_000)
    return CpmmPool.at_price(
        setup.pool_id,
        setup.token_x,
        setup.token_y,
        price=setup.price,
        value_y=int(setup.tvl_y / 2),
        fee_num=int(fee_num),
        fee_den=FEE_DEN,
        dex=setup.dex,
        shares=shares,
    )


KIND: PoolKind[FeeShares] = PoolKind(CpmmPool, build, parse_fields, FIELDS)
