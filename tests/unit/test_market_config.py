"""engine.config: the market YAML, its validation, and building pools and the market."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.config import (
    ConfigError,
    MarketConfig,
    build_market,
    build_pools,
    load_market_config,
    parse_market_config,
)
from sim.market import Market
from sim.pools import CpmmPool, DlmmPool
from sim.routing import find_best_route
from sim.tokens import DEFAULT_TOKENS

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "market.yaml"


def minimal() -> dict[str, Any]:
    return {
        "tokens": [
            {"symbol": "SOL", "mint": "So11111111111111111111111111111111111111112", "decimals": 9},
            {"symbol": "USDC", "mint": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "decimals": 6},
        ],
        "pools": [
            {"id": "raydium:SOL-USDC", "dex": "raydium", "kind": "cpmm", "base": "SOL",
             "quote": "USDC", "fee_bps": 30, "tvl_usd": 100_000},
            {"id": "meteora:SOL-USDC", "dex": "meteora", "kind": "dlmm", "base": "SOL",
             "quote": "USDC", "fee_bps": 20, "tvl_usd": 120_000, "bin_step": 10,
             "bins_each_side": 30},
        ],
        "market": {"reference_prices_usd": {"SOL": 150.0, "USDC": 1.0}},
    }


def with_change(path: str, value: Any) -> dict[str, Any]:
    """minimal() with one value replaced; path like 'pools.0.fee_bps'."""
    raw = copy.deepcopy(minimal())
    node: Any = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return raw


# --------------------------------------------------------------------------- the shipped file


def test_shipped_market_config_loads_and_builds() -> None:
    config = load_market_config(SHIPPED)
    assert isinstance(config, MarketConfig)
    assert [t.to_token() for t in config.tokens] == list(DEFAULT_TOKENS)  # real mints
    ids = [p.id for p in config.pools]
    assert {"raydium:SOL-USDC", "meteora:SOL-USDC"} <= set(ids)
    pools = build_pools(config)
    assert [p.pool_id for p in pools] == ids
    prices = config.market.reference_prices_usd
    assert prices["SOL"] == pytest.approx(150, rel=0.2) and prices["BONK"] < 0.001
    for spec, pool in zip(config.pools, pools):
        assert pool.dex == spec.dex
        assert pool.kind == spec.kind
        assert pool.fee_bps == pytest.approx(spec.fee_bps)  # DLMM: base fee, no volatility yet
        # Valued at reference prices, the pool holds its TVL, half on each side
        # (a DLMM book's upper bins hold x bought at higher prices than the
        # reference: valued at the reference they are worth a little less).
        value = {
            sym: units / 10 ** config.registry()[sym].decimals * prices[sym]
            for sym, units in pool.reserves().items()
        }
        bin_step = spec.kind_fields.get("bin_step", 0)
        spread = spec.kind_fields.get("bins_each_side", 0) * bin_step / 10_000
        assert sum(value.values()) == pytest.approx(spec.tvl_usd, rel=0.01 + spread / 4)
        assert value[spec.base] == pytest.approx(value[spec.quote], rel=0.01 + spread / 2)
        # And its spot price is the reference cross, within one bin.
        step = bin_step / 10_000
        assert pool.spot_price(spec.base) == pytest.approx(prices[spec.base] / prices[spec.quote],
                                                          rel=step / 2 + 1e-9)
    seed_pools = {p.pool_id: p for p in pools}
    assert seed_pools["raydium:SOL-USDC"].fee_bps == 30
    assert seed_pools["meteora:SOL-USDC"].fee_bps == 20


def test_shipped_market_runs_and_routes() -> None:
    config = load_market_config(SHIPPED)
    pools = build_pools(config)
    market = build_market(config, pools, seed=7, tick_s=0.5)
    assert isinstance(market, Market) and market.seed == 7
    assert market.params.tick_s == 0.5
    trades = [trade for _ in range(30) for trade in market.tick()]
    assert {t.kind for t in trades} == {"noise", "arbitrage"}
    live = list(market.pools.values())
    # Every pair the demo orders use has a route; BONK -> USDC only through SOL.
    for token_in, token_out, amount in [("SOL", "USDC", 10**9), ("USDC", "SOL", 250 * 10**6),
                                        ("JUP", "USDC", 300 * 10**6), ("SOL", "USDT", 10**9),
                                        ("USDC", "USDT", 100 * 10**6)]:
        assert find_best_route(live, token_in, token_out, amount, market.now).amount_out > 0
    bonk = find_best_route(live, "BONK", "USDC", 5_000_000 * 10**5, market.now)
    assert bonk.kind == "two_hop" and bonk.legs[0].token_out == "SOL"
    split = find_best_route(live, "SOL", "USDC", 200 * 10**9, market.now, allow_split=True)
    assert split.kind == "split"
    assert build_market(config, build_pools(config), seed=99, tick_s=1.0).seed == 99


def test_same_config_same_genesis() -> None:
    a = build_pools(load_market_config(SHIPPED))
    b = build_pools(load_market_config(str(SHIPPED)))
    assert [p.snapshot() for p in a] == [p.snapshot() for p in b]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("pools.0.base", "DOGE", "unknown token 'DOGE'"),
        ("pools.1.id", "raydium:SOL-USDC", "pool id raydium:SOL-USDC is used twice"),
        ("pools.0.quote", "SOL", "base and quote are both SOL"),
        ("pools.0.fee_bps", -1, "fee_bps must be between 0 and 1000"),
        ("pools.0.fee_bps", 1_500, "fee_bps must be between 0 and 1000"),
        ("pools.0.fee_bps", 30.001, "hundredths of a basis point"),
        ("pools.0.tvl_usd", 0, "greater than 0"),
        ("pools.0.dex", "Raydium", "pattern"),
        ("pools.0.dex", "", "at least 1 character"),
        ("pools.0.kind", "clmm", "unknown pool kind 'clmm' (known: cpmm, dlmm)"),
        ("pools.0.id", "has space", "pattern"),
        ("tokens.1.symbol", "SOL", "token SOL is listed twice"),
        ("tokens.1.mint", "So11111111111111111111111111111111111111112", "already belongs"),
        ("tokens.0.mint", "O0Il" * 10, "base58"),
        ("tokens.0.decimals", 40, "less than or equal to 18"),
        ("market.reference_prices_usd", {"SOL": 150.0}, "USDC has no reference price"),
        ("market.reference_prices_usd", {"SOL": 150.0, "USDC": 1.0, "JUP": 1.0}, "unknown token 'JUP'"),
        ("market.reference_prices_usd", {"SOL": -1.0, "USDC": 1.0}, "must be positive"),
        ("market.volatility", {"BONK": 1.0}, "BONK has no reference price"),
        ("market.mean_reversion", {"USDC": -0.1}, "mean_reversion of USDC must be >= 0"),
        ("market.tick_s", 1.0, "Extra inputs are not permitted"),  # the engine's setting, not the market's
        ("market.seed", 7, "Extra inputs are not permitted"),
        ("market.arbitrage", {"fraction": 0}, "greater than 0"),
        ("market.noise", {"pool_rates": {"nowhere": 1.0}}, "unknown pool 'nowhere'"),
        ("market.noise", {"pool_rates": {"raydium:SOL-USDC": -1.0}}, "must be >= 0"),
        ("market.noise", {"rate": 1.0}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configs_say_what_is_wrong(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_market_config(with_change(path, value))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bin_step": None}, "a dlmm pool needs bin_step"),
        ({"bins_each_side": None}, "a dlmm pool needs bins_each_side"),
        ({"bin_step": 3, "fee_bps": 2}, "must be a whole number"),
        ({"bin_step": 4, "fee_bps": 26.33}, "above the on-chain maximum"),  # 65825
        ({"dlmm": {"filter_period": 700}}, "filter_period must not exceed decay_period"),
        ({"dlmm": {"reduction_factor": 20_000}}, "reduction_factor is in basis points, at most 10000"),
        ({"dlmm": {"filter_periods": 10}}, "dlmm: unknown filter_periods"),
        ({"dlmm": [1, 2]}, "dlmm must be a mapping"),
        ({"bin_step": 0}, "bin_step must be an integer from 1 to 500, got 0"),
        ({"bins_each_side": 2.5}, "bins_each_side must be an integer from 0 to 1000"),
        ({"liquidity_shape": "flat"}, "liquidity_shape must be 'spot' or 'curve'"),
        ({"bin_stpe": 10}, r"meteora:SOL-USDC: dlmm pools take no bin_stpe \(their own fields: bin_step"),
    ],
)
def test_dlmm_pool_validation(change: dict[str, Any], message: str) -> None:
    raw = minimal()
    raw["pools"][1].update(change)
    raw["pools"][1] = {k: v for k, v in raw["pools"][1].items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        parse_market_config(raw)


def test_cpmm_pool_rejects_dlmm_fields() -> None:
    raw = minimal()
    raw["pools"][0].update(bin_step=10, bins_each_side=5)
    with pytest.raises(ConfigError, match="cpmm pools take no bin_step, bins_each_side"):
        parse_market_config(raw)
    raw["pools"][0].update(bin_step=None, bins_each_side=None)  # null is as good as absent
    parse_market_config(raw)


def test_a_new_dex_on_a_known_kind_is_only_config() -> None:
    raw = minimal()
    raw["pools"].append({"id": "orca:SOL-USDC", "dex": "orca", "kind": "cpmm", "base": "SOL",
                         "quote": "USDC", "fee_bps": 4, "tvl_usd": 10_000})
    orca = build_pools(parse_market_config(raw))[-1]
    assert (orca.dex, orca.kind, orca.fee_bps) == ("orca", "cpmm", pytest.approx(4))


def test_errors_name_where_they_are() -> None:
    with pytest.raises(ConfigError) as info:
        parse_market_config(with_change("pools.0.tvl_usd", -5), source="my.yaml")
    assert str(info.value).startswith("my.yaml is invalid: pools.0.tvl_usd:")
    with pytest.raises(ConfigError, match=r"\(top level\)|market: Field required"):
        parse_market_config({"tokens": [], "pools": []})


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_market_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokens: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_market_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_market_config(listy)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(with_change("pools.0.base", "DOGE")))
    with pytest.raises(ConfigError, match=r"wrong\.yaml is invalid: .*DOGE"):
        load_market_config(wrong)


# --------------------------------------------------------------------------- building


def test_fees_are_built_exactly() -> None:
    raw = minimal()
    raw["pools"][0]["fee_bps"] = 2.5  # Raydium counts fees in millionths
    raw["pools"][1].update(bin_step=1, fee_bps=10)  # base_factor 100000 > u16: power factor 1
    raw["pools"].append({"id": "meteora:b", "dex": "meteora", "kind": "dlmm", "base": "SOL",
                         "quote": "USDC", "fee_bps": 25, "tvl_usd": 1_000, "bin_step": 80,
                         "bins_each_side": 3, "liquidity_shape": "curve",
                         "dlmm": {"variable_fee_control": 0}})
    config = parse_market_config(raw)
    cpmm, tight, curve = build_pools(config)
    assert isinstance(cpmm, CpmmPool) and (cpmm.fee_num, cpmm.fee_den) == (250, 1_000_000)
    assert cpmm.fee_bps == pytest.approx(2.5)
    assert isinstance(tight, DlmmPool)
    assert (tight.params.base_factor, tight.params.base_fee_power_factor) == (10_000, 1)
    assert tight.fee_bps == pytest.approx(10)
    assert isinstance(curve, DlmmPool) and curve.params.base_factor == 3_125
    assert curve.params.variable_fee_control == 0 and curve.fee_bps == pytest.approx(25)
    assert config.pools[2].kind_fields["liquidity_shape"] == "curve"


def test_market_spec_becomes_market_params() -> None:
    raw = minimal()
    raw["market"].update(
        volatility={"SOL": 0.5}, volatility_unit="per_second", mean_reversion={"USDC": 0.1},
        arbitrage={"fraction": 0.25, "min_profit_usd": 1.0},
        noise={"enabled": False, "rate_per_s": 2.0, "median_usd": 10.0, "sigma": 0.5,
               "max_usd": 50.0, "pool_rates": {"raydium:SOL-USDC": 0.1}},
    )
    config = parse_market_config(raw)
    params = config.market.to_params(seed=1, tick_s=2.0)
    assert params.seed == 1 and params.tick_s == 2.0 and params.volatility == {"SOL": 0.5}
    assert params.sigma_per_second("SOL") == 0.5
    assert params.mean_reversion == {"USDC": 0.1}
    assert params.arbitrage.fraction == 0.25 and params.arbitrage.min_profit_usd == 1.0
    assert not params.noise.enabled and params.noise.rate("raydium:SOL-USDC") == 0.1
    assert params.noise.rate("meteora:SOL-USDC") == 2.0 and params.noise.max_usd == 50.0
    assert config.market.to_params(seed=5, tick_s=1.0).seed == 5


def test_the_benchmark_profile_turns_off_the_latencies_and_every_rate_limit_and_nothing_else():
    from engine.settings import EngineSettings

    base = EngineSettings.model_validate({})
    bench = base.with_profile("benchmark")
    assert bench.latency.model_dump() == dict.fromkeys(base.latency.model_dump(), 0.0)
    assert bench.dispatch.rate_limit_per_minute == 0 and bench.dispatch.executors == base.dispatch.executors
    assert (bench.api.order_limit_per_minute, bench.api.read_limit_per_minute, bench.api.ws_max_per_client) == (0, 0, 0)
    assert bench.market == base.market and bench.retry == base.retry and bench.routing == base.routing
    assert bench.api.host == base.api.host and bench.api.port == base.api.port
    assert base.with_profile("default") is base
    with pytest.raises(ValueError, match="unknown profile"):
        base.with_profile("fast")


def test_dexengine_up_takes_the_profile_from_its_command_line():
    import argparse

    from runtime.cli import _settings

    args = argparse.Namespace(profile="benchmark", no_market=True, zero_latency=False)
    settings = _settings(args)
    assert settings.dispatch.rate_limit_per_minute == 0 and settings.latency.quote_s == 0
    assert not settings.market.enabled
