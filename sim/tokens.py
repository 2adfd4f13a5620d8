"""Token registry and conversion between human amounts and base units."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    mint: str
    decimals: int

    @property
    def one(self) -> int:
        """Base units in one whole token."""
        return 10**self.decimals


class UnknownToken(KeyError):
    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref

    def __str__(self) -> str:
        return f"unknown token {self.ref!r}"


class InvalidAmount(ValueError):
    pass


# Real mainnet mints and decimals.
SOL = Token("SOL", "So11111111111111111111111111111111111111112", 9)
USDC = Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
USDT = Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6)
BONK = Token("BONK", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", 5)
JUP = Token("JUP", "JUPyiwrYJFskUPiHa7hafR8VUtAeFoSYbKedZNsDvCN", 6)

DEFAULT_TOKENS: tuple[Token, ...] = (SOL, USDC, USDT, BONK, JUP)


class TokenRegistry:
    """Looks tokens up by symbol (case-insensitive) or by mint address."""

    def __init__(self, tokens: tuple[Token, ...] | list[Token] = DEFAULT_TOKENS) -> None:
        self._by_symbol: dict[str, Token] = {}
        self._by_mint: dict[str, Token] = {}
        for token in tokens:
            if token.symbol.upper() in self._by_symbol or token.mint in self._by_mint:
                raise ValueError(f"duplicate token {token.symbol}")
            self._by_symbol[token.symbol.upper()] = token
            self._by_mint[token.mint] = token

    def add(self, token: Token) -> bool:
        """Learn a launched token; False when it is known already. A symbol or mint taken by another raises."""
        known = self._by_symbol.get(token.symbol.upper()) or self._by_mint.get(token.mint)
        if known == token:
            return False
        if known is not None:
            raise ValueError(f"token {token.symbol} ({token.mint}) clashes with {known.symbol} ({known.mint})")
        self._by_symbol[token.symbol.upper()] = token
        self._by_mint[token.mint] = token
        return True

    def resolve(self, ref: str) -> Token:
        token = self._by_mint.get(ref) or self._by_symbol.get(ref.upper())
        if token is None:
            raise UnknownToken(ref)
        return token

    def __getitem__(self, symbol: str) -> Token:
        return self.resolve(symbol)

    def __contains__(self, ref: object) -> bool:
        return isinstance(ref, str) and (ref in self._by_mint or ref.upper() in self._by_symbol)

    def __iter__(self) -> Iterator[Token]:
        return iter(self._by_symbol.values())



def to_base_units(amount: Decimal | str | int, token: Token) -> int:
    """Exact conversion of a human amount to base units; rejects over-precise input."""
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise InvalidAmount(f"not a number: {amount!r}") from exc
    if not value.is_finite():
        raise InvalidAmount(f"not a finite number: {amount!r}")
    scaled = value.scaleb(token.decimals)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(
            f"{token.symbol} has {token.decimals} decimals; {amount} is more precise than that"
        )
    return int(scaled)


def from_base_units(units: int, token: Token) -> Decimal:
    return Decimal(units).scaleb(-token.decimals)


def format_decimal(value: Decimal) -> str:
    """A plain decimal string: "1.5", never "1.50" or "1.5E+0"; zero is "0"."""
    return format(value.normalize(), "f") if value else "0"


def format_units(units: int, token: Token) -> str:
    """Base units as a plain decimal string in token units (see :func:`format_decimal`)."""
    return format_decimal(from_base_units(units, token))
