"""Fees on the simulated chain: what a transaction pays, what the others bid, what to bid.

* Charging (the runtime's rules): a base fee of 5,000 lamports per
  signature and a priority fee of ``ceil(cu_limit * cu_price / 1e6)``
  lamports (``cu_price`` in micro-lamports per compute unit, charged on the
  *requested* limit), both taken before execution and kept when the
  transaction fails on chain; a Jito tip only when its bundle lands.
* The fee market (:class:`FeeMarket`): other traffic's bids for block
  space, slot after slot, on the whole chain and on each account our
  transactions write (a hot pool is a fee market of its own). How much CU
  it asks for (the load, in blocks or account limits) is log-normal around
  the preset's median and moves in waves (an AR(1) process on its log); its
  CU prices and Jito tips are drawn from the quantiles of a mainnet fee
  sample and of landed tips (log-linear between them), scaled by the preset
  (:class:`Congestion`).
* Packing (:func:`pack_block`): by the leader's reward per CU, each account
  first within its CU limit, then the block within its own.
* Levels: ``priority_fee_for`` turns "auto", "low" ... "veryHigh" into a
  compute-unit price from the fees of recently landed transactions
  (:class:`FeeHistory`), as fee estimators do (Helius' percentiles; "auto"
  is the median, see ``AUTO_PERCENTILE``).
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Literal

import numpy as np

LAMPORTS_PER_SOL = 1_000_000_000
BASE_FEE_LAMPORTS = 5_000  # per signature
MICRO_LAMPORTS_PER_LAMPORT = 1_000_000
MAX_CU_PER_TX = 1_400_000
DEFAULT_CU_LIMIT = 200_000
MIN_JITO_TIP_LAMPORTS = 1_000

FeeLevel = Literal["auto", "low", "medium", "high", "veryHigh"]
# Helius' getPriorityFeeEstimate levels, as percentiles of recently landed fees per CU.
LEVEL_PERCENTILES: dict[str, float] = {"low": 25.0, "medium": 50.0, "high": 75.0, "veryHigh": 95.0}
# "auto": the median, Helius' recommended (medium) estimate. Jupiter names its levels lower
# (medium = p25, high = p50, veryHigh = p75 of the last 20 slots).
AUTO_PERCENTILE = 50.0
FEE_LEVELS: tuple[str, ...] = ("auto", *LEVEL_PERCENTILES)

# Quantiles of priority fees in micro-lamports per CU, one mainnet slot (from mainnet samples). The
# 0-quantile is ours: the sample starts at p25, and most wallets bid at least ~1,000.
PRIORITY_FEE_QUANTILES: tuple[tuple[float, float], ...] = (
    (0.0, 1_000.0),
    (0.25, 36_050.0),
    (0.50, 89_430.0),
    (0.75, 615_532.0),
    (0.90, 1_432_990.0),
    (0.95, 2_778_906.0),
    (1.0, 17_916_371.0),
)
# Quantiles of landed Jito tips, in lamports (from mainnet samples; below p25: the 1,000 minimum,
# above p99: 0.05 SOL, ours).
JITO_TIP_QUANTILES: tuple[tuple[float, float], ...] = (
    (0.0, 1_000.0),
    (0.25, 5_000.0),
    (0.50, 10_000.0),
    (0.75, 1_000_000.0),
    (0.95, 5_300_000.0),
    (0.99, 8_300_000.0),
    (1.0, 50_000_000.0),
)


def priority_fee_lamports(cu_limit: int, cu_price: int) -> int:
    """The priority fee of a transaction: its CU limit times its CU price, rounded up to a lamport."""
    return -(-cu_limit * cu_price // MICRO_LAMPORTS_PER_LAMPORT)


def leader_reward_per_cu(cu_limit: int, cu_price: int, signatures: int = 1) -> float:
    """What the leader earns per requested CU, the key its scheduler sorts by.

    The leader keeps the whole priority fee and half the base fee (the other
    half is burned).
    """
    reward = priority_fee_lamports(cu_limit, cu_price) + BASE_FEE_LAMPORTS * signatures // 2
    return reward / cu_limit


@dataclass(frozen=True, slots=True)
class FeeCharge:
    """What one transaction paid, in lamports."""

    base_lamports: int = 0
    priority_lamports: int = 0
    tip_lamports: int = 0

    @property
    def total_lamports(self) -> int:
        return self.base_lamports + self.priority_lamports + self.tip_lamports

    @property
    def total_sol(self) -> Decimal:
        return Decimal(self.total_lamports) / LAMPORTS_PER_SOL

    def to_dict(self) -> dict[str, object]:
        """camelCase, as clients see it; SOL as a decimal string."""
        return {
            "baseLamports": self.base_lamports,
            "priorityLamports": self.priority_lamports,
            "tipLamports": self.tip_lamports,
            "totalSol": str(self.total_sol),
        }


NO_FEES = FeeCharge()


def charge(cu_limit: int, cu_price: int, *, signatures: int = 1, tip_lamports: int = 0) -> FeeCharge:
    """The fees of a transaction that landed, whether it succeeded or failed on chain.

    ``tip_lamports`` is the bundle's tip when it landed as one (a bundle
    that does not land, or reverts, pays nothing at all: see ``NO_FEES``).
    """
    return FeeCharge(
        base_lamports=BASE_FEE_LAMPORTS * signatures,
        priority_lamports=priority_fee_lamports(cu_limit, cu_price),
        tip_lamports=tip_lamports,
    )


# --------------------------------------------------------------------------- fee levels


def fee_percentile(sorted_fees: Sequence[int] | np.ndarray, percentile: float) -> int:
    """The nearest-rank percentile of fees sorted ascending (0 when there are none)."""
    n = len(sorted_fees)
    if n == 0:
        return 0
    rank = max(1, math.ceil(percentile / 100.0 * n))
    return int(sorted_fees[rank - 1])


def level_percentile(level: str) -> float:
    if level == "auto":
        return AUTO_PERCENTILE
    try:
        return LEVEL_PERCENTILES[level]
    except KeyError:
        raise ValueError(f"priority fee level {level!r}: one of {', '.join(FEE_LEVELS)}") from None


def priority_fee_for(
    level: str | int,
    recent_fees: Sequence[int] | np.ndarray,
    *,
    cu_limit: int = DEFAULT_CU_LIMIT,
    max_priority_fee_lamports: int | None = None,
) -> int:
    """The compute-unit price (micro-lamports per CU) to bid for ``level``.

    A level names a percentile of ``recent_fees`` (the CU prices of recently
    landed transactions, sorted ascending: ``Chain.recent_fees``); an integer
    is a CU price given directly and passes through. Either way the priority
    fee it makes for ``cu_limit`` is capped at ``max_priority_fee_lamports``.
    """
    if isinstance(level, bool):
        raise ValueError("a priority fee is a level name or micro-lamports per CU")
    if isinstance(level, int):
        if level < 0:
            raise ValueError(f"a CU price cannot be negative, got {level}")
        price = level
    else:
        price = fee_percentile(recent_fees, level_percentile(level))
    if max_priority_fee_lamports is not None:
        if max_priority_fee_lamports < 0:
            raise ValueError("max_priority_fee_lamports must be >= 0")
        price = min(price, max_priority_fee_lamports * MICRO_LAMPORTS_PER_LAMPORT // cu_limit)
    return price


# --------------------------------------------------------------------------- the market's bids


@dataclass(frozen=True)
class Congestion:
    """How busy the chain is: the other traffic bidding for block space, and what reaches a leader."""

    name: str = "calm"
    load: float = 0.5  # median CU other traffic asks for per slot, in blocks (1 = a full block)
    wave_sigma: float = 0.2  # spread of the load (log), moving in waves
    wave_s: float = 20.0  # correlation time of those waves, seconds
    fee_scale: float = 1.0  # other traffic's CU prices, times the mainnet sample's
    ingress_loss: float = 0.0  # share of sends a leader never takes in, whatever they pay
    bundles_per_slot: float = 5.0  # other traffic's Jito bundles per slot, at the median load
    tip_scale: float = 1.0  # their tips, times the landed-tip sample's
    hot_load: float = 0.1  # median CU other traffic asks of each account ours write, in account limits
    hot_fee_scale: float = 1.0  # its CU prices (bots on a hot pool), times the sample's

    def __post_init__(self) -> None:
        fields = ("load", "wave_sigma", "fee_scale", "bundles_per_slot", "tip_scale", "hot_load", "hot_fee_scale")
        for name in fields:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"congestion.{name} must be >= 0, got {value}")
        if not self.wave_s > 0:
            raise ValueError("congestion.wave_s must be > 0")
        if not 0 <= self.ingress_loss < 1:
            raise ValueError("congestion.ingress_loss must be in [0, 1)")


def draw_from_quantiles(
    rng: np.random.Generator, quantiles: Sequence[tuple[float, float]], size: int
) -> np.ndarray:
    """``size`` draws of a distribution given by quantiles, log-linear between them."""
    probs = np.array([q for q, _ in quantiles])
    logs = np.log(np.array([v for _, v in quantiles]))
    return np.exp(np.interp(rng.random(size), probs, logs))


@dataclass(frozen=True, slots=True)
class Demand:
    """One slot's other traffic: transactions (reward per CU, CU limit, CU price) and bundles (tip, CU)."""

    reward: np.ndarray
    cu: np.ndarray
    price: np.ndarray
    bundle_tip: np.ndarray
    bundle_cu: np.ndarray


MIN_OTHER_CU = 5_000
_NORMAL = NormalDist()


def unit(*key: object) -> float:
    """A number in (0, 1) fixed by ``key``: chance that does not depend on what was drawn before."""
    digest = hashlib.sha256(":".join(map(str, key)).encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


class FeeMarket:
    """Other traffic, slot after slot, from a seed.

    Every draw is fixed by (seed, slot) and, on an account, by the account
    too: a slot's traffic is the same whatever was drawn before it and
    whichever of our transactions wait. Only the wave is sequential.
    """

    def __init__(
        self, *, seed: int, block_cu: int, account_cu: int, cu_median: int, cu_sigma: float, slot_s: float
    ) -> None:
        self.seed = seed
        self.block_cu = block_cu
        self.account_cu = account_cu
        self.cu_median = cu_median
        self.cu_sigma = cu_sigma
        self.slot_s = slot_s
        self.wave = 0.0  # the load's log deviation, in units of its spread: stationary N(0, 1)

    def step(self, congestion: Congestion, slot: int) -> None:
        """Slot ``slot`` begins: the wave moves."""
        phi = math.exp(-self.slot_s / congestion.wave_s)
        shock = _NORMAL.inv_cdf(unit("wave", self.seed, slot))
        self.wave = phi * self.wave + math.sqrt(1 - phi * phi) * shock

    def surge(self, congestion: Congestion) -> float:
        return math.exp(congestion.wave_sigma * self.wave)

    def load(self, congestion: Congestion) -> float:
        """CU asked for now, in blocks."""
        return congestion.load * self.surge(congestion)

    def _bids(self, rng: np.random.Generator, cu_asked: float, fee_scale: float) -> tuple[np.ndarray, ...]:
        mean_cu = self.cu_median * math.exp(self.cu_sigma**2 / 2)
        cu = self._cu(rng, int(rng.poisson(cu_asked / mean_cu)))
        price = (draw_from_quantiles(rng, PRIORITY_FEE_QUANTILES, len(cu)) * fee_scale).astype(np.int64)
        reward = (-(-cu * price // MICRO_LAMPORTS_PER_LAMPORT) + BASE_FEE_LAMPORTS // 2) / cu
        return reward, cu, price

    def _cu(self, rng: np.random.Generator, size: int) -> np.ndarray:
        drawn = rng.lognormal(math.log(self.cu_median), self.cu_sigma, size)
        return np.clip(drawn, MIN_OTHER_CU, MAX_CU_PER_TX).astype(np.int64)

    def draw(self, congestion: Congestion, slot: int) -> Demand:
        """The slot's other traffic on the whole chain."""
        rng = np.random.default_rng([self.seed, 0, slot])
        reward, cu, price = self._bids(rng, self.load(congestion) * self.block_cu, congestion.fee_scale)
        bundles = int(rng.poisson(congestion.bundles_per_slot * self.surge(congestion)))
        tips = draw_from_quantiles(rng, JITO_TIP_QUANTILES, bundles) * congestion.tip_scale
        return Demand(reward, cu, price, tips.astype(np.int64), self._cu(rng, bundles))

    def draw_account(self, congestion: Congestion, account: str, slot: int) -> Demand:
        """This slot's other traffic writing ``account`` (no bundles)."""
        key = int.from_bytes(hashlib.sha256(account.encode()).digest()[:8], "big")
        rng = np.random.default_rng([self.seed, 1, key, slot])
        asked = congestion.hot_load * self.surge(congestion) * self.account_cu
        reward, cu, price = self._bids(rng, asked, congestion.hot_fee_scale)
        empty = np.zeros(0, np.int64)
        return Demand(reward, cu, price, empty, empty)


def pack(cu: np.ndarray, room: int) -> np.ndarray:
    """Which items, in priority order, a greedy packer takes into ``room``: each one that still fits."""
    taken = np.zeros(len(cu), dtype=bool)
    start = 0
    while start < len(cu) and room > 0:
        rest = np.flatnonzero(cu[start:] <= room) + start
        if rest.size == 0:
            break
        fits = np.cumsum(cu[rest]) <= room
        stop = rest.size if fits.all() else int(np.argmin(fits))
        taken[rest[:stop]] = True
        room -= int(cu[rest[:stop]].sum())
        start = int(rest[stop]) + 1 if stop < rest.size else len(cu)
    return taken


def pack_block(
    others: Demand, accounts: Sequence[Demand], ours: Demand, ours_writes: Sequence[Sequence[int]],
    *, room: int, account_room: int,
) -> tuple[np.ndarray, Demand, dict[int, Sequence[int]]]:  # fmt: skip
    """One block's transactions by reward per CU, no account taking more than ``account_room``.

    The items are the chain's other traffic, then each account's (``accounts[i]``
    writes account ``i``), then ours (``ours_writes[k]``: the accounts our
    item ``k`` writes). Each account is packed first, by reward, among the
    items that write it; the items all of their accounts took in then
    compete for the block's ``room``. Returns the chosen items in block order
    (ours are the last ``len(ours.cu)`` items), all the items, and the
    accounts of those that write one.
    """
    parts = [others, *accounts, ours]
    starts = np.cumsum([0] + [len(part.cu) for part in parts])
    writes: dict[int, Sequence[int]] = {
        j: (i,) for i in range(len(accounts)) for j in range(starts[i + 1], starts[i + 2])
    }
    writes.update({int(starts[-2]) + k: tuple(w) for k, w in enumerate(ours_writes)})
    items = Demand(*(np.concatenate([getattr(part, name) for part in parts]) for name in Demand.__slots__))
    reward, cu = items.reward, items.cu
    keep = np.ones(len(cu), dtype=bool)
    by_account: dict[int, list[int]] = {}
    for item, written in writes.items():
        for account in written:
            by_account.setdefault(account, []).append(item)
    for writers in by_account.values():
        idx = np.array(writers)
        idx = idx[np.argsort(-reward[idx], kind="stable")]
        keep[idx[~pack(cu[idx], account_room)]] = False
    order = np.flatnonzero(keep)
    order = order[np.argsort(-reward[order], kind="stable")]  # other traffic first on a tie
    return order[pack(cu[order], room)], items, writes


class FeeHistory:
    """The CU prices landed in the last ``blocks`` blocks: the chain's (key None) and each account's."""

    def __init__(self, blocks: int) -> None:
        self.blocks = blocks
        self._fees: dict[str | None, deque[np.ndarray]] = {}
        self._sorted: dict[str | None, np.ndarray] = {}

    def record(self, account: str | None, prices: np.ndarray) -> None:
        self._fees.setdefault(account, deque(maxlen=self.blocks)).append(prices.astype(np.int64))
        self._sorted.pop(account, None)

    def recent(self, account: str | None = None) -> np.ndarray:
        """Ascending; empty before the first block (or for an account no block recorded)."""
        if account not in self._sorted:
            fees = self._fees.get(account)
            self._sorted[account] = np.sort(np.concatenate(fees)) if fees else np.zeros(0, np.int64)
        return self._sorted[account]


__all__ = [
    "AUTO_PERCENTILE",
    "BASE_FEE_LAMPORTS",
    "Congestion",
    "DEFAULT_CU_LIMIT",
    "Demand",
    "FEE_LEVELS",
    "FeeCharge",
    "FeeHistory",
    "FeeLevel",
    "FeeMarket",
    "JITO_TIP_QUANTILES",
    "LAMPORTS_PER_SOL",
    "LEVEL_PERCENTILES",
    "MAX_CU_PER_TX",
    "MICRO_LAMPORTS_PER_LAMPORT",
    "MIN_JITO_TIP_LAMPORTS",
    "NO_FEES",
    "PRIORITY_FEE_QUANTILES",
    "charge",
    "draw_from_quantiles",
    "fee_percentile",
    "leader_reward_per_cu",
    "level_percentile",
    "pack",
    "pack_block",
    "priority_fee_for",
    "priority_fee_lamports",
    "unit",
]
