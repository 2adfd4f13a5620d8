"""When the chain is on: ``chain.enabled`` auto follows the latencies; the benchmark profile turns it off."""

from __future__ import annotations

import pytest

from engine.chain_config import DEFAULT_CHAIN_CONFIG, chain_config_with
from engine.config import ConfigError
from engine.settings import EngineSettings, LatencySettings


def test_auto_is_on_with_the_seed_latencies_and_off_in_zero_latency_mode():
    assert EngineSettings().chain_on
    assert not EngineSettings(latency=LatencySettings.zero()).chain_on
    assert not EngineSettings().with_profile("benchmark").chain_on
    assert EngineSettings(latency=LatencySettings.zero(), chain={"enabled": "on"}).chain_on
    assert not EngineSettings(chain={"enabled": "off"}).chain_on


def test_overrides_are_laid_over_the_chain_file_and_validated():
    config = chain_config_with(DEFAULT_CHAIN_CONFIG, {"chain": {"slot_s": 0.05}, "mev": {"rate": 0.5}})
    assert config.chain.slot_s == 0.05 and config.chain.blockhash_valid_blocks == 150 and config.mev.rate == 0.5
    with pytest.raises(ConfigError, match="slot_s"):
        chain_config_with(DEFAULT_CHAIN_CONFIG, {"chain": {"slot_s": -1}})
