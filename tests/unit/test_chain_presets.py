"""configs/chain.yaml and engine.chain_config; the shape the presets must give (a small simulation, no Ray)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import yaml

from engine.chain_config import DEFAULT_CHAIN_CONFIG, ChainConfig, load_chain_config, parse_chain_config
from engine.config import ConfigError
from sim.chain import Block, Chain, Transaction
from sim.chain_fees import FEE_LEVELS, priority_fee_for
from sim.mev import MevParams, SandwichPlan, SandwichSearcher

POOL = "raydium:SOL-USDC"


def shipped() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CHAIN_CONFIG.read_text())


# --------------------------------------------------------------------------- the config


def test_the_shipped_config_loads_with_the_three_presets():
    config = load_chain_config()
    assert {"calm", "busy", "congested"} <= set(config.presets) and config.preset == "calm"
    params = config.params(seed=3, genesis_time=1_700_000_000.0, preset="congested")
    assert params.congestion.name == "congested" and params.seed == 3 and params.slot_s == 0.4
    assert params.blockhash_valid_blocks == 150 and params.block_cu_limit == 48_000_000
    assert config.congestion().name == "calm"
    assert config.transactions.cu_limit_for("cpmm") == 140_000 and config.transactions.cu_limit_for("clmm") == 200_000
    assert config.mev.to_params() == MevParams(rate=0.0)
    with pytest.raises(KeyError, match="calm"):
        config.congestion("gridlock")


def with_change(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(shipped())
    node = raw
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("presets.busy", None, "busy missing"),
        ("preset", "gridlock", "not one of the presets"),
        ("presets.calm.ingress_loss", 1.0, "presets.calm.ingress_loss"),
        ("presets.calm.load", -0.1, "presets.calm.load"),
        ("presets.calm.speed", 3, "speed"),
        ("chain.account_cu_limit", 60_000_000, "must not exceed block_cu_limit"),
        ("chain.finalize_depth", 0, "finalize_depth"),
        ("transactions.priority_fee", "urgent", "one of auto"),
        ("transactions.priority_fee", -5, "must be >= 0"),
        ("transactions.cu_limit", {"cpmm": 2_000_000}, "cu_limit of cpmm"),
        ("mev.rate", 1.5, "mev.rate"),
    ],
)
def test_a_bad_chain_config_is_refused_naming_what_is_wrong(path: str, value: Any, message: str):
    with pytest.raises(ConfigError, match=message):
        parse_chain_config(with_change(path, value))


def test_a_chain_config_that_cannot_be_read_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_chain_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("chain: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_chain_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_chain_config(tmp_path / "list.yaml")


# --------------------------------------------------------------------------- the shape of each preset


@dataclass(frozen=True)
class Figures:
    landed: float  # share of orders that landed
    slots_p50: float  # slots from sending to landing (1: the slot it was sent in), of those that landed
    slots_p90: float
    expired: float
    within_two: float = 0.0  # share of the landed that landed within 2 slots
    sandwiched: float = 0.0
    fees_lamports: float = 0.0  # mean fees paid per landed order


def figures(results: list[tuple[int | None, bool, int]]) -> Figures:
    slots = [s for s, _, _ in results if s is not None]
    fees = [f for s, _, f in results if s is not None]
    n = len(results)
    return Figures(
        landed=len(slots) / n, slots_p50=float(np.percentile(slots, 50)) if slots else float("inf"),
        slots_p90=float(np.percentile(slots, 90)) if slots else float("inf"), expired=1 - len(slots) / n,
        within_two=sum(1 for s in slots if s <= 2) / len(slots) if slots else 0.0,
        sandwiched=sum(1 for _, hit, _ in results if hit) / n, fees_lamports=float(np.mean(fees)) if fees else 0.0,
    )  # fmt: skip


def simulate(
    config: ChainConfig, preset: str, *, seed: int = 0, orders_per_level: int = 40, mev_rate: float = 0.0,
    protect: bool = False, levels: tuple[str, ...] = FEE_LEVELS,
) -> dict[str, Figures]:  # fmt: skip
    """Orders on one hot pool, a level each in turn, one every 0.4 s, after a minute of warm-up."""
    params = config.params(seed=seed, genesis_time=1_700_000_000.0, preset=preset)
    searcher = SandwichSearcher(
        lambda tx: SandwichPlan("front", "back", 1_000_000) if tx.min_out < 990 else None,  # room above 1 %
        MevParams(rate=mev_rate), seed=seed,
    )  # fmt: skip
    chain = Chain(params, searcher=searcher)
    chain.advance_to(chain.now + 60.0)
    cu_limit = config.transactions.cu_limit_for("cpmm")
    cap = config.transactions.max_priority_fee_lamports
    sent: dict[str, tuple[str, int]] = {}
    results: dict[str, list[tuple[int | None, bool, int]]] = {level: [] for level in levels}

    def collect(blocks: list[Block]) -> None:
        for block in blocks:
            for item in block.landed:
                if item.tx.signature in sent:
                    level, slot = sent[item.tx.signature]
                    results[level].append((block.slot - slot + 1, item.role == "victim", item.fees.total_lamports))
            for dropped in block.dropped:
                results[sent[dropped.tx.signature][0]].append((None, False, 0))

    t = chain.now
    for i in range(orders_per_level * len(levels)):
        t += 0.4
        collect(chain.advance_to(t))
        level = levels[i % len(levels)]
        price = priority_fee_for(level, chain.recent_fees(), cu_limit=cu_limit, max_priority_fee_lamports=cap)
        recent = chain.latest_blockhash()
        tx = Transaction(f"order{i}", recent.blockhash, recent.last_valid_block_height, intent=i, min_out=980,
                         cu_limit=cu_limit, cu_price=price, jito_tip_lamports=10_000 if protect else 0,
                         accounts=(POOL,))  # fmt: skip
        chain.submit(tx, t)
        sent[tx.signature] = (level, chain.slot_at(t))
    while chain.pending_count:
        t += 2.0
        collect(chain.advance_to(t))
    return {level: figures(rows) for level, rows in results.items()}


@pytest.fixture(scope="module")
def config() -> ChainConfig:
    return load_chain_config()


def test_calm_most_orders_land_in_one_or_two_slots_whatever_they_pay(config: ChainConfig):
    for level, fig in simulate(config, "calm", orders_per_level=20).items():
        assert fig.landed == 1.0 and fig.slots_p50 == 1 and fig.within_two >= 0.9, level


def test_busy_a_low_fee_waits_and_may_expire_a_high_one_lands_at_once(config: ChainConfig):
    figs = simulate(config, "busy")
    assert all(figs[level].landed >= 0.95 for level in ("auto", "medium", "high", "veryHigh"))
    assert all(figs[level].slots_p50 == 1 and figs[level].slots_p90 <= 10 for level in ("high", "veryHigh"))
    assert figs["low"].landed <= figs["auto"].landed
    assert figs["low"].slots_p50 > figs["high"].slots_p50


def test_congested_the_default_fee_often_expires_and_a_high_fee_almost_never(config: ChainConfig):
    # One seed; over seeds 0-9 the default's expired share ranges 3-62 % (waves of congestion
    # outlast a blockhash or not), while "high" and "veryHigh" never expired.
    figs = simulate(config, "congested")
    low, auto, high, very_high = figs["low"], figs["auto"], figs["high"], figs["veryHigh"]
    assert auto.expired >= 0.1  # "auto" is the default
    assert high.expired <= 0.05 and very_high.expired <= 0.05
    assert low.landed < auto.landed < high.landed <= very_high.landed + 0.05  # higher fee: more land...
    assert high.slots_p50 < auto.slots_p50 and very_high.slots_p50 < auto.slots_p50  # ...and sooner
    assert very_high.fees_lamports > high.fees_lamports > auto.fees_lamports


def test_protection_means_no_sandwich(config: ChainConfig):
    open_ = simulate(config, "calm", orders_per_level=60, mev_rate=0.5, levels=("auto",))["auto"]
    protected = simulate(config, "calm", orders_per_level=60, mev_rate=0.5, protect=True, levels=("auto",))["auto"]
    assert 0.2 <= open_.sandwiched <= 0.8 and protected.sandwiched == 0.0
    assert protected.landed == 1.0 and protected.fees_lamports > open_.fees_lamports  # the tip
