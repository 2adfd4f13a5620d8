"""Meteora DLMM pool: liquidity in discrete price bins, base + volatility fee.

Follows the on-chain program (LbPair / Bin / u64x64_math):

* bin price ``(1 + bin_step / 10_000) ** id`` as a Q64.64 integer, computed
  bit-for-bit like ``get_price_from_id`` (price of one base unit of X in base
  units of Y);
* inside a bin the price is constant: X in -> ``floor(in * P >> 64)`` Y out,
  Y in -> ``floor((in << 64) / P)`` X out;
* a swap walks bins from the active one (down when selling X, up when
  selling Y) until the input is used up, computing the fee per bin with the
  volatility accumulator of that bin, so the fee rises with bins crossed;
* fees (rate over 1e9, capped at 10%) are taken from the input, rounded up,
  and kept aside from bin liquidity, as the program does (they are owed to
  LPs, not swappable); ``reserves()`` counts them since the pool holds them;
* time is the program's ``Clock::unix_timestamp``: whole seconds. The ``now``
  a swap is given is floored, so the filter and decay periods count whole
  seconds as on chain (29.3 s after a swap at t = 100.7 is 30 s: 130 - 100).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
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
from sim.pools.dlmm_params import (
    BASIS_POINT_MAX,
    FEE_PRECISION,
    FIELDS,
    MAX_BIN_ID,
    ONE,
    SCALE_OFFSET,
    DlmmBook,
    DlmmFeeParams,
    LiquidityShape,
    parse_fields,
    price_from_id,
    spread_liquidity,
)
from sim.tokens import Token


def block_seconds(now: float) -> int:
    """``now`` as the program's clock gives it: whole unix seconds (``Clock::unix_timestamp``)."""
    return math.floor(now)


def _fill_bin(x_in: bool, left: int, available: int, price: int, rate: int) -> tuple[int, int, int]:
    """(input used, output, fee) of ``left`` input in a bin holding ``available`` of the output.

    As the program's ``swap_exact_in_quote_at_bin`` (fee on the input): the fee is taken from
    all of ``left`` first. When what remains buys the whole bin and more, the bin is bought out
    with its input ``full`` (rounded up) plus the fee on ``full`` only, and the rest goes on to
    the next bin; when it buys the bin out exactly, all of ``left`` stays in this bin.
    """
    fee = ceil_div(left * rate, FEE_PRECISION)
    net = left - fee
    full = ceil_div(available << SCALE_OFFSET, price) if x_in else ceil_div(available * price, ONE)
    if net < full:
        return left, (net * price) >> SCALE_OFFSET if x_in else (net << SCALE_OFFSET) // price, fee
    if net == full:
        return left, available, fee
    fee = ceil_div(full * rate, FEE_PRECISION - rate)
    return full + fee, available, fee


@dataclass(slots=True)
class _Walk:
    """Result of walking the bins for one swap, ready to be applied."""

    amount_in: int
    amount_out: int
    fee: int
    end_id: int
    changes: list[tuple[int, int, int]]  # (bin id, new reserve_x, new reserve_y)
    volatility_accumulator: int
    volatility_reference: int
    index_reference: int


class DlmmPool(Pool):
    """A Meteora DLMM pair. ``bins`` maps bin id -> (reserve_x, reserve_y) in base units."""

    kind = "dlmm"

    def __init__(
        self,
        pool_id: str,
        token_x: Token,
        token_y: Token,
        *,
        bin_step: int,
        active_id: int,
        bins: dict[int, tuple[int, int]],
        params: DlmmFeeParams,
        dex: str = "meteora",
    ) -> None:
        if token_x.symbol == token_y.symbol:
            raise ValueError("a pool needs two different tokens")
        if isinstance(bin_step, bool) or not isinstance(bin_step, int) or not 1 <= bin_step <= 10_000:
            raise ValueError(f"bin_step must be an integer in [1, 10000], got {bin_step!r}")
        if not isinstance(active_id, int) or abs(active_id) > MAX_BIN_ID:
            raise ValueError(f"active_id out of range: {active_id!r}")
        if not bins:
            raise ValueError("a DLMM pool needs at least one bin")
        self.pool_id = pool_id
        self.dex = dex
        self.token_x = token_x
        self.token_y = token_y
        self.bin_step = bin_step
        self.params = params
        self._active_id = active_id
        self._bins: dict[int, list[int]] = {}
        self._prices: dict[int, int] = {}
        for bin_id, (rx, ry) in bins.items():
            for value in (rx, ry):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"bin {bin_id}: reserves must be non-negative integers")
            self._bins[bin_id] = [rx, ry]
            self._prices[bin_id] = price_from_id(bin_id, bin_step)
        self._min_id = min(self._bins)
        self._max_id = max(self._bins)
        self._fee_x = 0
        self._fee_y = 0
        self._volatility_accumulator = 0
        self._volatility_reference = 0
        self._index_reference = active_id
        self._last_update: int | None = None  # whole seconds; no swap yet: the first one starts fresh

    @classmethod
    def with_liquidity(
        cls,
        pool_id: str,
        token_x: Token,
        token_y: Token,
        *,
        price: float,
        value_y: int,
        bin_step: int,
        bins_each_side: int,
        params: DlmmFeeParams,
        dex: str = "meteora",
        shape: LiquidityShape = "spot",
    ) -> "DlmmPool":
        """Liquidity worth ``value_y`` base units of y around ``price`` (human y per x),
        laid out in bins by :func:`~sim.pools.dlmm_params.spread_liquidity`."""
        if not math.isfinite(price) or price <= 0:
            raise ValueError(f"price must be positive and finite, got {price!r}")
        if isinstance(value_y, bool) or not isinstance(value_y, int) or value_y <= 0:
            raise ValueError(f"value_y must be a positive integer, got {value_y!r}")
        base_price = price * 10 ** (token_y.decimals - token_x.decimals)
        active_id, bins = spread_liquidity(base_price, value_y, bin_step, bins_each_side, shape)
        return cls(
            pool_id,
            token_x,
            token_y,
            bin_step=bin_step,
            active_id=active_id,
            bins=bins,
            params=params,
            dex=dex,
        )

    # -- state, read only -------------------------------------------------

    @property
    def active_id(self) -> int:
        return self._active_id

    @property
    def fee_bps(self) -> float:
        rate = self.params.total_fee_rate(self.bin_step, self._volatility_accumulator)
        return rate / FEE_PRECISION * 1e4

    def fee_bps_at(self, now: float) -> float:
        """Fee rate the active bin would charge a swap starting at ``now``."""
        reference, index_ref = self._references(now)
        accumulator = self._accumulate(reference, index_ref, self._active_id)
        return self.params.total_fee_rate(self.bin_step, accumulator) / FEE_PRECISION * 1e4

    def bin_price(self, bin_id: int) -> float:
        """Human price of x in y at ``bin_id``."""
        q64 = self._prices.get(bin_id) or price_from_id(bin_id, self.bin_step)
        scale: float = 10.0 ** (self.token_x.decimals - self.token_y.decimals)
        return q64 / ONE * scale

    def bins_summary(self) -> list[tuple[int, float, int, int]]:
        """(id, human price of x in y, reserve_x, reserve_y) of every non-empty bin."""
        return [
            (bin_id, self.bin_price(bin_id), rx, ry)
            for bin_id, (rx, ry) in sorted(self._bins.items())
            if rx or ry
        ]

    def extra_summary(self) -> dict[str, Any]:
        return {"active_bin": self._active_id, "bins": len(self.bins_summary())}

    def spot_price(self, token_in: str) -> float:
        """The active bin's price, as Meteora reports it (even if that bin is one-sided)."""
        self.other(token_in)
        price = self.bin_price(self._active_id)
        return price if token_in == self.token_x.symbol else 1.0 / price

    def reserves(self) -> dict[str, int]:
        total_x = self._fee_x
        total_y = self._fee_y
        for rx, ry in self._bins.values():
            total_x += rx
            total_y += ry
        return {self.token_x.symbol: total_x, self.token_y.symbol: total_y}

    # -- volatility ---------------------------------------------------------

    def _references(self, now: float) -> tuple[int, int]:
        """(volatility_reference, index_reference) at the start of a swap at ``now``.

        As the program's ``update_references``: elapsed whole seconds; a clock that went
        back (elapsed < 0) is inside the filter period, so the references stay.
        """
        if self._last_update is None:
            return 0, self._active_id
        elapsed = block_seconds(now) - self._last_update
        if elapsed < self.params.filter_period:
            return self._volatility_reference, self._index_reference
        if elapsed < self.params.decay_period:
            decayed = self._volatility_accumulator * self.params.reduction_factor // BASIS_POINT_MAX
            return decayed, self._active_id
        return 0, self._active_id

    def _accumulate(self, reference: int, index_ref: int, bin_id: int) -> int:
        return min(
            reference + abs(index_ref - bin_id) * BASIS_POINT_MAX,
            self.params.max_volatility_accumulator,
        )

    # -- the bin walk ---------------------------------------------------------

    def _beyond_liquidity(self, x_in: bool, bin_id: int) -> bool:
        # Selling X walks down towards the lowest bin, selling Y walks up.
        return bin_id < self._min_id if x_in else bin_id > self._max_id

    def _exhausted(self, token_out: Token) -> InsufficientLiquidity:
        return InsufficientLiquidity(
            f"pool {self.pool_id} ran out of {token_out.symbol} liquidity"
        )

    def _walk_exact_in(self, x_in: bool, amount_in: int, now: float) -> _Walk:
        reference, index_ref = self._references(now)
        bins = self._bins
        prices = self._prices
        params = self.params
        bin_step = self.bin_step
        out_side = 1 if x_in else 0
        step = -1 if x_in else 1
        active = self._active_id
        left = amount_in
        amount_out = 0
        fee_total = 0
        changes: list[tuple[int, int, int]] = []
        accumulator = self._volatility_accumulator
        while True:
            if self._beyond_liquidity(x_in, active):
                raise self._exhausted(self.token_y if x_in else self.token_x)
            accumulator = self._accumulate(reference, index_ref, active)
            reserve = bins.get(active)
            if reserve is not None and reserve[out_side] > 0:
                rate = params.total_fee_rate(bin_step, accumulator)
                price = prices[active]
                available = reserve[out_side]
                used, got, fee = _fill_bin(x_in, left, available, price, rate)
                if x_in:
                    changes.append((active, reserve[0] + used - fee, reserve[1] - got))
                else:
                    changes.append((active, reserve[0] - got, reserve[1] + used - fee))
                left -= used
                amount_out += got
                fee_total += fee
            if left == 0:
                break
            active += step
        return _Walk(
            amount_in=amount_in,
            amount_out=amount_out,
            fee=fee_total,
            end_id=active,
            changes=changes,
            volatility_accumulator=accumulator,
            volatility_reference=reference,
            index_reference=index_ref,
        )

    def _min_amount_in(self, x_in: bool, amount_out: int, now: float) -> int:
        """Smallest input whose exact-in walk pays at least ``amount_out``.

        Per bin: the net input that buys ``target`` is ``n = ceil(target / P)``
        and the smallest gross ``a`` with ``a - ceil(a*r/1e9) >= n`` is
        ``ceil(n * 1e9 / (1e9 - r))`` - which is also what the program's
        exact-out quote charges (``n + compute_fee(n)``).
        """
        reference, index_ref = self._references(now)
        out_side = 1 if x_in else 0
        step = -1 if x_in else 1
        active = self._active_id
        need = amount_out
        total = 0
        while True:
            if self._beyond_liquidity(x_in, active):
                raise self._exhausted(self.token_y if x_in else self.token_x)
            reserve = self._bins.get(active)
            if reserve is not None and reserve[out_side] > 0:
                accumulator = self._accumulate(reference, index_ref, active)
                rate = self.params.total_fee_rate(self.bin_step, accumulator)
                price = self._prices[active]
                target = min(need, reserve[out_side])
                if x_in:
                    net = ceil_div(target << SCALE_OFFSET, price)
                else:
                    net = ceil_div(target * price, ONE)
                total += ceil_div(net * FEE_PRECISION, FEE_PRECISION - rate)
                need -= target
            if need == 0:
                return total
            active += step

    def _quote(self, token_in: str, amount_in: int, now: float) -> tuple[SwapQuote, _Walk]:
        token_out = self.other(token_in)
        check_amount(amount_in, "amount_in")
        x_in = token_in == self.token_x.symbol
        token_in_obj = self.token_x if x_in else self.token_y
        walk = self._walk_exact_in(x_in, amount_in, now)
        if walk.amount_out == 0:
            raise AmountTooSmall(
                f"pool {self.pool_id}: {amount_in} {token_in} base units buy nothing"
            )
        before = self.bin_price(self._active_id)
        after = self.bin_price(walk.end_id)
        if not x_in:
            before, after = 1.0 / before, 1.0 / after
        executed = (walk.amount_out / token_out.one) / (amount_in / token_in_obj.one)
        quote = SwapQuote(
            pool_id=self.pool_id,
            dex=self.dex,
            token_in=token_in,
            token_out=token_out.symbol,
            amount_in=amount_in,
            amount_out=walk.amount_out,
            fee=walk.fee,
            spot_price_before=before,
            spot_price_after=after,
            execution_price=executed,
            price_impact_bps=(before - after) / before * 1e4,
            slippage_bps=(before - executed) / before * 1e4,
            bins_crossed=abs(walk.end_id - self._active_id),
        )
        return quote, walk

    # -- the Pool interface -------------------------------------------------

    def quote_exact_in(self, token_in: str, amount_in: int, now: float = 0.0) -> SwapQuote:
        return self._quote(token_in, amount_in, now)[0]

    def quote_exact_out(self, token_in: str, amount_out: int, now: float = 0.0) -> SwapQuote:
        self.other(token_in)
        check_amount(amount_out, "amount_out")
        amount_in = self._min_amount_in(token_in == self.token_x.symbol, amount_out, now)
        return self._quote(token_in, amount_in, now)[0]

    def swap_exact_in(
        self, token_in: str, amount_in: int, min_out: int = 0, now: float = 0.0
    ) -> SwapQuote:
        check_min_out(min_out)
        quote, walk = self._quote(token_in, amount_in, now)
        if quote.amount_out < min_out:
            raise SlippageExceeded(min_out, quote.amount_out)
        for bin_id, rx, ry in walk.changes:
            reserve = self._bins[bin_id]
            reserve[0] = rx
            reserve[1] = ry
        if token_in == self.token_x.symbol:
            self._fee_x += walk.fee
        else:
            self._fee_y += walk.fee
        self._active_id = walk.end_id
        self._volatility_accumulator = walk.volatility_accumulator
        self._volatility_reference = walk.volatility_reference
        self._index_reference = walk.index_reference
        self._last_update = block_seconds(now)
        return quote

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "pool_id": self.pool_id,
            "dex": self.dex,
            "token_x": token_to_dict(self.token_x),
            "token_y": token_to_dict(self.token_y),
            "bin_step": self.bin_step,
            "active_id": self._active_id,
            "bins": [[bin_id, rx, ry] for bin_id, (rx, ry) in sorted(self._bins.items())],
            "params": asdict(self.params),
            "fee_x": self._fee_x,
            "fee_y": self._fee_y,
            "volatility_accumulator": self._volatility_accumulator,
            "volatility_reference": self._volatility_reference,
            "index_reference": self._index_reference,
            "last_update": self._last_update,
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> "DlmmPool":
        cls.check_snapshot(snapshot)
        pool = cls(
            snapshot["pool_id"],
            Token(**snapshot["token_x"]),
            Token(**snapshot["token_y"]),
            bin_step=snapshot["bin_step"],
            active_id=snapshot["active_id"],
            bins={bin_id: (rx, ry) for bin_id, rx, ry in snapshot["bins"]},
            params=DlmmFeeParams(**snapshot["params"]),
            dex=snapshot["dex"],
        )
        pool._fee_x = snapshot["fee_x"]
        pool._fee_y = snapshot["fee_y"]
        pool._volatility_accumulator = snapshot["volatility_accumulator"]
        pool._volatility_reference = snapshot["volatility_reference"]
        pool._index_reference = snapshot["index_reference"]
        last = snapshot["last_update"]  # a float in snapshots taken before whole seconds
        pool._last_update = None if last is None else block_seconds(last)
        return pool

    def __repr__(self) -> str:
        return (
            f"DlmmPool({self.pool_id!r}, {self.token_x.symbol}/{self.token_y.symbol}, "
            f"bin_step={self.bin_step}, active_id={self._active_id})"
        )


# --------------------------------------------------------------------------- the pool kind


def build(setup: PoolSetup, book: DlmmBook) -> DlmmPool:
    return DlmmPool.with_liquidity(
        setup.pool_id,
        setup.token_x,
        setup.token_y,
        price=setup.price,
        value_y=int(setup.tvl_y),  # the whole book, valued in y
        bin_step=book.bin_step,
        bins_each_side=book.bins_each_side,
        params=book.fees,
        dex=setup.dex,
        shape=book.liquidity_shape,
    )


KIND: PoolKind[DlmmBook] = PoolKind(DlmmPool, build, parse_fields, FIELDS)
