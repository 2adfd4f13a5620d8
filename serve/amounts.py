"""Amounts at the API's edge: base units shown as token units ("1.5" SOL, never a float)."""

from __future__ import annotations

from sim.tokens import Token, TokenRegistry, format_units


def human(units: int | str | None, token: Token | None) -> str | None:
    """Base units -> a plain decimal string in token units ("1.5", never "1.5E+0").

    With no token (one the registry does not know) the base units are shown as they are.
    """
    if units is None:
        return None
    if token is None:
        return str(units)
    return format_units(int(units), token)


def known_token(tokens: TokenRegistry, ref: str | None) -> Token | None:
    """The token ``ref`` names, or None when there is none or the registry does not know it."""
    if ref is None:
        return None
    try:
        return tokens.resolve(ref)
    except KeyError:
        return None
