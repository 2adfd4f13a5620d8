"""sim.pools.registry: a pool kind defined here, registered at test time, is built from a
market config, routed to, summarised, restored and traded by the market, touching no other file."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import pytest

from engine.config import ConfigError, build_market, build_pools, parse_market_config
from sim.decision import pool_summary
from sim.pools import (
    InsufficientLiquidity,
    Pool,
    PoolKind,
    PoolSetup,
    SlippageExceeded,
    SwapQuote,
    pool_kind,
    pool_kind_names,
    register,
    registry,
    restore_pool,
)
from sim.pools.base import ceil_div, check_amount, check_min_out, token_to_dict
from sim.pools.curves import ConstantProductCurve, SampledCurve
from sim.routing import best_single, find_best_route
from sim.tokens import Token


class ConstantSumPool(Pool):
    """A stable pool: every swap at the fixed ``peg`` (human y per x), until a side runs out."""

    kind = "constant_sum"

    def __init__(self, pool_id: str, token_x: Token, token_y: Token, reserve_x: int, reserve_y: int,
                 *, peg: Fraction, fee_bps: int, dex: str) -> None:
        self.pool_id, self.dex, self.token_x, self.token_y = pool_id, dex, token_x, token_y
        self.reserve_x, self.reserve_y, self.peg, self._fee_bps = reserve_x, reserve_y, peg, fee_bps
        self.rate = peg * 10**token_y.decimals / 10**token_x.decimals  # y base units per x base unit

    @property
    def fee_bps(self) -> float:
        return float(self._fee_bps)

    def _out(self, token_in: str, net: int) -> tuple[int, int]:
        """(output, reserve it comes from) for ``net`` input after the fee."""
        if token_in == self.token_x.symbol:
            return int(net * self.rate), self.reserve_y
        self.other(token_in)
        return int(net / self.rate), self.reserve_x

    def quote_exact_in(self, token_in: str, amount_in: int, now: float = 0.0) -> SwapQuote:
        check_amount(amount_in, "amount_in")
        fee = ceil_div(amount_in * self._fee_bps, 10_000)
        amount_out, reserve = self._out(token_in, amount_in - fee)
        if not 0 < amount_out < reserve:
            raise InsufficientLiquidity(f"pool {self.pool_id} cannot pay {amount_out}")
        spot = self.spot_price(token_in)
        t_in, t_out = self.tokens if token_in == self.token_x.symbol else self.tokens[::-1]
        executed = (amount_out / t_out.one) / (amount_in / t_in.one)
        return SwapQuote(self.pool_id, self.dex, t_in.symbol, t_out.symbol, amount_in, amount_out, fee,
                         spot, spot, executed, 0.0, (spot - executed) / spot * 1e4)

    def quote_exact_out(self, token_in: str, amount_out: int, now: float = 0.0) -> SwapQuote:
        check_amount(amount_out, "amount_out")
        rate = self.rate if token_in == self.token_x.symbol else 1 / self.rate
        net = ceil_div(amount_out * rate.denominator, rate.numerator)
        return self.quote_exact_in(token_in, ceil_div(net * 10_000, 10_000 - self._fee_bps), now)

    def swap_exact_in(self, token_in: str, amount_in: int, min_out: int = 0, now: float = 0.0) -> SwapQuote:
        check_min_out(min_out)
        quote = self.quote_exact_in(token_in, amount_in, now)
        if quote.amount_out < min_out:
            raise SlippageExceeded(min_out, quote.amount_out)
        x_in = token_in == self.token_x.symbol
        self.reserve_x += quote.amount_in if x_in else -quote.amount_out
        self.reserve_y += -quote.amount_out if x_in else quote.amount_in
        return quote

    def spot_price(self, token_in: str) -> float:
        self.other(token_in)
        return float(self.peg) if token_in == self.token_x.symbol else float(1 / self.peg)

    def reserves(self) -> dict[str, int]:
        return {self.token_x.symbol: self.reserve_x, self.token_y.symbol: self.reserve_y}

    def extra_summary(self) -> dict[str, Any]:
        return {"peg": str(self.peg)}

    def snapshot(self) -> dict[str, Any]:
        return {"type": self.kind, "pool_id": self.pool_id, "dex": self.dex,
                "token_x": token_to_dict(self.token_x), "token_y": token_to_dict(self.token_y),
                "reserve_x": self.reserve_x, "reserve_y": self.reserve_y,
                "peg": str(self.peg), "fee_bps": self._fee_bps}

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> ConstantSumPool:
        cls.check_snapshot(snapshot)
        return cls(snapshot["pool_id"], Token(**snapshot["token_x"]), Token(**snapshot["token_y"]),
                   snapshot["reserve_x"], snapshot["reserve_y"], peg=Fraction(snapshot["peg"]),
                   fee_bps=snapshot["fee_bps"], dex=snapshot["dex"])


def parse_peg(fee_bps: float, fields: Mapping[str, Any]) -> Fraction:
    if fee_bps != int(fee_bps):
        raise ValueError("a constant-sum pool's fee is a whole number of bps")
    peg = fields.get("peg", 1.0)
    if not isinstance(peg, (int, float)) or peg <= 0:
        raise ValueError(f"peg must be a positive price, got {peg!r}")
    return Fraction(repr(peg))


def build(setup: PoolSetup, peg: Fraction) -> ConstantSumPool:
    reserve_y = int(setup.tvl_y / 2)
    reserve_x = int(reserve_y / (peg * 10**setup.token_y.decimals / 10**setup.token_x.decimals))
    return ConstantSumPool(setup.pool_id, setup.token_x, setup.token_y, reserve_x, reserve_y,
                           peg=peg, fee_bps=int(setup.fee_bps), dex=setup.dex)


CONSTANT_SUM: PoolKind[Fraction] = PoolKind(ConstantSumPool, build, parse_peg, fields=("peg",))


@pytest.fixture
def constant_sum(monkeypatch: pytest.MonkeyPatch) -> PoolKind[Fraction]:
    """The kind registered for one test (on a copy of the registry, dropped afterwards)."""
    monkeypatch.setattr(registry, "_KINDS", dict(registry._KINDS))
    return register(CONSTANT_SUM)


def market_config(**stable: Any) -> dict[str, Any]:
    return {
        "tokens": [
            {"symbol": "USDC", "mint": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "decimals": 6},
            {"symbol": "USDT", "mint": "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", "decimals": 6},
        ],
        "pools": [
            {"id": "raydium:USDC-USDT", "dex": "raydium", "kind": "cpmm", "base": "USDC",
             "quote": "USDT", "fee_bps": 4, "tvl_usd": 100_000},
            {"id": "saber:USDC-USDT", "dex": "saber", "kind": "constant_sum", "base": "USDC",
             "quote": "USDT", "fee_bps": 1, "tvl_usd": 200_000, "peg": 1.0, **stable},
        ],
        "market": {"reference_prices_usd": {"USDC": 1.0, "USDT": 1.0}},
    }


def test_a_kind_is_unknown_until_registered() -> None:
    assert pool_kind_names() == ("cpmm", "dlmm")
    with pytest.raises(ConfigError, match="unknown pool kind 'constant_sum' \\(known: cpmm, dlmm\\)"):
        parse_market_config(market_config())
    with pytest.raises(ValueError, match="unknown pool kind 'constant_sum'"):
        restore_pool({"type": "constant_sum"})


def test_a_registered_kind_is_built_from_the_market_config(constant_sum: PoolKind[Fraction]) -> None:
    assert pool_kind("constant_sum") is constant_sum and "constant_sum" in pool_kind_names()
    with pytest.raises(ValueError, match="already registered"):
        register(CONSTANT_SUM)
    config = parse_market_config(market_config())
    cpmm, stable = build_pools(config)
    assert isinstance(stable, ConstantSumPool)
    assert (stable.kind, stable.dex, stable.fee_bps) == ("constant_sum", "saber", 1.0)
    assert stable.reserves() == {"USDC": 100_000 * 10**6, "USDT": 100_000 * 10**6}
    assert cpmm.kind == "cpmm"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amp": 100}, r"pool saber:USDC-USDT: constant_sum pools take no amp \(their own fields: peg\)"),
        ({"peg": -1}, "peg must be a positive price"),
        ({"fee_bps": 1.5}, "whole number of bps"),
    ],
)
def test_the_kind_validates_its_own_fields(
    constant_sum: PoolKind[Fraction], change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_market_config(market_config(**change))


def test_routing_takes_the_new_kind_like_any_other(constant_sum: PoolKind[Fraction]) -> None:
    pools = build_pools(parse_market_config(market_config()))
    cpmm, stable = pools
    assert isinstance(stable.output_curve("USDC", 10**6, 0.0), SampledCurve)
    assert isinstance(cpmm.output_curve("USDC", 10**6, 0.0), ConstantProductCurve)
    small = find_best_route(pools, "USDC", "USDT", 5_000 * 10**6, allow_split=True)
    assert (small.kind, small.pool_ids) == ("single", ("saber:USDC-USDT",))  # flat and cheaper
    # More than the stable pool holds: only a split fills it, the stable pool taking the most.
    big = 120_000 * 10**6
    with pytest.raises(InsufficientLiquidity):
        stable.quote_exact_in("USDC", big)
    route = find_best_route(pools, "USDC", "USDT", big, allow_split=True)
    assert route.kind == "split" and set(route.pool_ids) == {"saber:USDC-USDT", "raydium:USDC-USDT"}
    assert route.legs[0].pool_id == "saber:USDC-USDT"
    assert route.amount_out > best_single(pools, "USDC", "USDT", big).amount_out
    assert sum(leg.amount_in for leg in route.legs) == big


def test_the_new_kind_is_summarised_restored_and_traded(constant_sum: PoolKind[Fraction]) -> None:
    config = parse_market_config(market_config())
    pools = build_pools(config)
    stable = pools[1]
    summary = pool_summary(stable)
    assert (summary.kind, summary.dex, summary.extra["peg"]) == ("constant_sum", "saber", "1")
    assert "bins" not in summary.extra and summary.spot_price == 1.0
    again = restore_pool(stable.snapshot())
    assert isinstance(again, ConstantSumPool) and again.snapshot() == stable.snapshot()
    quote = stable.quote_exact_out("USDT", 1_000 * 10**6)
    assert quote.amount_out >= 1_000 * 10**6
    assert stable.quote_exact_in("USDT", quote.amount_in - 1).amount_out < 1_000 * 10**6
    market = build_market(config, pools, seed=7, tick_s=1.0)
    trades = [trade for _ in range(20) for trade in market.tick()]
    on_stable = [t for t in trades if t.pool_id == "saber:USDC-USDT"]
    assert on_stable and {t.kind for t in on_stable} == {"noise"}  # its price never moves: no arbitrage
    assert sum(stable.reserves().values()) > 200_000 * 10**6  # the fees stay in the pool
