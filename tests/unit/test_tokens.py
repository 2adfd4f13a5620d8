from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.tokens import (
    BONK,
    DEFAULT_TOKENS,
    SOL,
    USDC,
    InvalidAmount,
    Token,
    TokenRegistry,
    UnknownToken,
    from_base_units,
    to_base_units,
)

FAST = settings(max_examples=150, derandomize=True, deadline=None)


@pytest.mark.parametrize(
    ("human", "token", "units"),
    [
        ("1", SOL, 1_000_000_000),
        ("1.5", SOL, 1_500_000_000),
        ("0.000000001", SOL, 1),
        ("150.25", USDC, 150_250_000),
        (Decimal("0.000001"), USDC, 1),
        (7, BONK, 700_000),
        ("1e-5", BONK, 1),
        ("0", USDC, 0),
    ],
)
def test_to_base_units_is_exact(human, token, units):
    assert to_base_units(human, token) == units


@pytest.mark.parametrize(("human", "token"), [("0.0000001", USDC), ("1.0000000001", SOL), ("0.000001", BONK)])
def test_over_precise_amounts_are_rejected(human, token):
    with pytest.raises(InvalidAmount, match="decimals"):
        to_base_units(human, token)


@pytest.mark.parametrize("bad", ["abc", "", "1,5", "NaN", "Infinity", "-inf", None, object()])
def test_non_numbers_are_rejected(bad):
    with pytest.raises(InvalidAmount):
        to_base_units(bad, USDC)


def test_trailing_zeros_beyond_decimals_are_fine():
    assert to_base_units("1.50000000", USDC) == 1_500_000


@FAST
@given(units=st.integers(min_value=0, max_value=10**20), token=st.sampled_from(DEFAULT_TOKENS))
def test_base_units_round_trip(units, token):
    human = from_base_units(units, token)
    assert to_base_units(human, token) == units
    assert to_base_units(str(human), token) == units
    assert human * token.one == units


def test_from_base_units_is_exact():
    assert from_base_units(149_475_897, USDC) == Decimal("149.475897")
    assert from_base_units(1, SOL) == Decimal("1E-9")


def test_token_one():
    assert SOL.one == 10**9 and USDC.one == 10**6 and BONK.one == 10**5


def test_registry_resolves_symbol_case_insensitively_and_mint():
    registry = TokenRegistry()
    assert registry.resolve("SOL") is SOL
    assert registry.resolve("sol") is SOL
    assert registry["usdc"] is USDC
    assert registry.resolve("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v") is USDC
    assert registry.resolve(SOL.mint) is SOL


def test_registry_unknown_token():
    registry = TokenRegistry()
    with pytest.raises(UnknownToken) as err:
        registry.resolve("DOGE")
    assert err.value.ref == "DOGE"
    assert "DOGE" in str(err.value)
    with pytest.raises(KeyError):
        registry["So11111111111111111111111111111111111111113"]


def test_registry_membership_and_iteration():
    registry = TokenRegistry()
    assert list(registry) == list(DEFAULT_TOKENS)
    assert "jup" in registry and SOL.mint in registry
    assert "DOGE" not in registry and 42 not in registry


def test_registry_rejects_duplicates():
    with pytest.raises(ValueError):
        TokenRegistry([SOL, Token("sol", "other-mint", 9)])
    with pytest.raises(ValueError):
        TokenRegistry([SOL, Token("WSOL", SOL.mint, 9)])


def test_custom_registry_only_knows_its_tokens():
    registry = TokenRegistry([SOL])
    assert registry.resolve("SOL") is SOL
    assert "USDC" not in registry


def test_amounts_are_formatted_one_way_everywhere():
    from sim.tokens import USDC, format_units

    assert format_units(223_888_960, USDC) == "223.88896"
    assert format_units(1_500_000, USDC) == "1.5"
    assert format_units(10**13, USDC) == "10000000"
    assert format_units(0, USDC) == "0"


def test_decimals_are_formatted_the_same_way():
    from sim.tokens import format_decimal

    assert format_decimal(Decimal("149.4490220000")) == "149.449022"
    assert format_decimal(Decimal("1E+3")) == "1000"
    assert format_decimal(Decimal("0.000")) == "0"
