"""Token launches: new tokens whose first pool opens during a run, and the sniper orders that wait for them.

A launch names a new token, the token it pairs with, the venue, the pool's
liquidity (its whole value, in units of the paired token) and its opening
price (paired token per new token). Launches come from a schedule (seconds
after the market starts) and from a seeded Poisson process; the same seed
gives the same launches. A sniper waits for a token by symbol or mint and
fires on the first pool that opens for its pair with at least its minimum
liquidity.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sim.orders import b58encode
from sim.pools import Pool
from sim.pools.base import PoolSetup
from sim.pools.registry import pool_kind
from sim.tokens import Token

# What a launch on each venue opens: Raydium a constant-product pool, Meteora a DLMM book.
VENUE_KINDS: dict[str, tuple[str, dict[str, int], float]] = {
    "raydium": ("cpmm", {}, 25.0),
    "meteora": ("dlmm", {"bin_step": 25, "bins_each_side": 40}, 25.0),
}


def launch_mint(seed: int | str, symbol: str) -> str:
    """A deterministic, mint-like base58 address (32 bytes) for a launched token."""
    return b58encode(hashlib.sha256(f"launch:{seed}:{symbol}".encode()).digest())


def launch_pool_id(dex: str, symbol: str, pair_with: str) -> str:
    return f"{dex}:{symbol}-{pair_with}"


@dataclass(frozen=True, slots=True)
class Launch:
    symbol: str
    mint: str
    decimals: int
    pair_with: str  # the symbol of a token that already trades
    dex: str
    liquidity: Decimal  # the pool's whole value, in units of pair_with
    price: Decimal  # pair_with per one new token
    after_s: float = 0.0  # scheduled: seconds after the market started

    def __post_init__(self) -> None:
        if not self.symbol or not self.symbol.isalnum() or len(self.symbol) > 16:
            raise ValueError(f"symbol {self.symbol!r}: 1..16 letters or digits")
        if self.dex not in VENUE_KINDS:
            raise ValueError(f"dex {self.dex!r}: one of {', '.join(VENUE_KINDS)}")
        if not 0 <= self.decimals <= 12:
            raise ValueError("decimals must be within 0..12")
        if not (self.liquidity > 0 and self.price > 0):
            raise ValueError("liquidity and price must be positive")
        if self.symbol.upper() == self.pair_with.upper():
            raise ValueError("a token cannot pair with itself")

    @property
    def token(self) -> Token:
        return Token(self.symbol, self.mint, self.decimals)

    @property
    def pool_id(self) -> str:
        return launch_pool_id(self.dex, self.symbol, self.pair_with)


def launch_pool(launch: Launch, pair_token: Token) -> Pool:
    """The launched token's first pool (the new token as x, the paired one as y), at its opening price."""
    kind, fields, fee_bps = VENUE_KINDS[launch.dex]
    setup = PoolSetup(
        pool_id=launch.pool_id, dex=launch.dex, token_x=launch.token, token_y=pair_token,
        price=float(launch.price), tvl_y=float(launch.liquidity) * pair_token.one, fee_bps=fee_bps,
    )  # fmt: skip
    return pool_kind(kind).build_from(setup, fields)


def liquidity_in(pool: Pool, token_in: str) -> Decimal:
    """The pool's whole value in units of ``token_in`` (one of its tokens), at its spot price."""
    reserves = pool.reserves()
    held_in = pool.token_x if pool.token_x.symbol == token_in else pool.token_y
    other = pool.other(token_in)
    other_in_units = Decimal(reserves[other.symbol]) / other.one * Decimal(repr(pool.spot_price(other.symbol)))
    return Decimal(reserves[held_in.symbol]) / held_in.one + other_in_units


@dataclass(frozen=True, slots=True)
class LaunchRange:
    """What a random launch draws from (log-uniform between the bounds)."""

    pair_with: str = "SOL"
    dexes: tuple[str, ...] = ("raydium", "meteora")
    liquidity: tuple[float, float] = (50.0, 500.0)
    price: tuple[float, float] = (1e-6, 1e-3)
    decimals: int = 6


@dataclass
class LaunchProcess:
    """Scheduled launches, then a Poisson process of random ones (``per_hour``; 0 = none)."""

    scheduled: list[Launch] = field(default_factory=list)
    per_hour: float = 0.0
    draws: LaunchRange = field(default_factory=LaunchRange)
    seed: int = 0

    def __post_init__(self) -> None:
        self._pending = sorted(self.scheduled, key=lambda launch: launch.after_s)
        self._rng = random.Random(f"launches:{self.seed}")
        self._count = 0
        self._next_random = self._draw_gap(0.0)

    def _draw_gap(self, now: float) -> float:
        if self.per_hour <= 0:
            return math.inf
        return now + self._rng.expovariate(self.per_hour / 3600.0)

    def next_due(self) -> float:
        """Seconds after the start when the next launch is due (inf: none)."""
        scheduled = self._pending[0].after_s if self._pending else math.inf
        return min(scheduled, self._next_random)

    def due(self, elapsed_s: float) -> list[Launch]:
        """Every launch due by ``elapsed_s``, each once, in order."""
        out: list[Launch] = []
        while self._pending and self._pending[0].after_s <= elapsed_s:
            out.append(self._pending.pop(0))
        while self._next_random <= elapsed_s:
            out.append(self._random(self._next_random))
            self._next_random = self._draw_gap(self._next_random)
        return out

    def _random(self, at: float) -> Launch:
        self._count += 1
        draws = self.draws
        symbol = f"LNCH{self._count}"
        return Launch(
            symbol=symbol, mint=launch_mint(self.seed, symbol), decimals=draws.decimals,
            pair_with=draws.pair_with, dex=self._rng.choice(draws.dexes),
            liquidity=_log_uniform(self._rng, draws.liquidity), price=_log_uniform(self._rng, draws.price),
            after_s=at,
        )  # fmt: skip


def _log_uniform(rng: random.Random, bounds: tuple[float, float]) -> Decimal:
    low, high = bounds
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(math.floor(math.log10(value)) - 5))


# --------------------------------------------------------------------------- snipers


@dataclass(frozen=True, slots=True)
class Sniper:
    order_id: str
    token_ref: str  # the awaited token: a symbol (any case) or a mint
    token_in: str  # what it pays with (a symbol)
    min_liquidity: Decimal  # in token_in units
    expires_at: float

    def wants(self, token: Token) -> bool:
        return self.token_ref == token.mint or self.token_ref.upper() == token.symbol.upper()


@dataclass
class SniperBook:
    """Snipers by the token they wait for; a pool that opens fires those it satisfies, each once."""

    _by_ref: dict[str, dict[str, Sniper]] = field(default_factory=dict)
    _refs: dict[str, str] = field(default_factory=dict)  # order id -> its key

    @staticmethod
    def _key(ref: str) -> str:
        return ref if len(ref) > 16 else ref.upper()  # a mint as written, a symbol in any case

    def arm(self, sniper: Sniper) -> bool:
        if sniper.order_id in self._refs:
            return False
        key = self._key(sniper.token_ref)
        self._by_ref.setdefault(key, {})[sniper.order_id] = sniper
        self._refs[sniper.order_id] = key
        return True

    def disarm(self, order_id: str) -> Sniper | None:
        key = self._refs.pop(order_id, None)
        if key is None:
            return None
        waiting = self._by_ref[key]
        sniper = waiting.pop(order_id)
        if not waiting:
            del self._by_ref[key]
        return sniper

    def __len__(self) -> int:
        return len(self._refs)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._refs

    def opened(self, pool: Pool) -> list[tuple[Sniper, Token]]:
        """A pool opened: the snipers it fires (removed), with the token each waited for."""
        fired: list[tuple[Sniper, Token]] = []
        for token in pool.tokens:
            for key in {self._key(token.symbol), self._key(token.mint)}:
                for sniper in list(self._by_ref.get(key, {}).values()):
                    other = pool.other(token.symbol)
                    if sniper.wants(token) and other.symbol == sniper.token_in \
                            and liquidity_in(pool, other.symbol) >= sniper.min_liquidity:  # fmt: skip
                        self.disarm(sniper.order_id)
                        fired.append((sniper, token))
        return fired

    def expire(self, now: float) -> list[Sniper]:
        gone = [s for key in list(self._by_ref) for s in list(self._by_ref[key].values()) if s.expires_at <= now]
        for sniper in gone:
            self.disarm(sniper.order_id)
        return gone

    def next_expiry(self) -> float | None:
        return min((s.expires_at for ss in self._by_ref.values() for s in ss.values()), default=None)


def launches_from(entries: Iterable[dict], seed: int) -> list[Launch]:
    """Scheduled launches from config entries (``mint`` optional: derived from the seed)."""
    out = []
    for entry in entries:
        values = dict(entry)
        values.setdefault("mint", launch_mint(seed, values["symbol"]))
        values["liquidity"] = Decimal(str(values["liquidity"]))
        values["price"] = Decimal(str(values["price"]))
        out.append(Launch(**values))
    return out
