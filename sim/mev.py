"""Jito bundles and the searcher who sandwiches what it can see.

A bundle is a few transactions executed in order, atomically, at the top of
one block (on a Jito leader's slot), chosen by tip; its last transaction
pays the tip, and only when the bundle lands. A user's protected
transaction travels as a bundle of one: nobody sees it before it lands.

The searcher sees the transactions a leader holds (sent to it, not yet
packed, not protected) with their slippage bound. For each one it watches
(a share ``rate`` of them), it asks the caller's :data:`SandwichPort` for a
plan against the pools as they are; the pool math is the caller's. It
sandwiches only when the plan's profit leaves at least
``min_profit_lamports`` after its own costs: two base fees, two priority
fees and the tip it bids (a share of the profit). The sandwich is a bundle
(front-run, victim, back-run), so the three land adjacent in one block or
not at all: if the victim would fail (its minimum out not met) the bundle
reverts and the victim is left as it was.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sim.chain_fees import BASE_FEE_LAMPORTS, MIN_JITO_TIP_LAMPORTS, pack, priority_fee_lamports
from sim.orders import b58encode

if TYPE_CHECKING:  # the chain imports this module; transactions reach us as values
    from sim.chain import Transaction


SANDWICH_ROLES = ("front_run", "victim", "back_run")  # in block order


class BundleKind(StrEnum):
    PROTECTED = "protected"  # a user's transaction sent as a bundle of one
    SANDWICH = "sandwich"  # front-run, victim, back-run


@dataclass(frozen=True, slots=True)
class Bundle:
    """Transactions executed in order, atomically, at the top of one block; the last one pays the tip."""

    bundle_id: str
    txs: tuple[Transaction, ...]
    tip_lamports: int
    kind: BundleKind = BundleKind.PROTECTED

    @property
    def cu(self) -> int:
        return sum(tx.cu_limit for tx in self.txs)


class Searcher(Protocol):
    """What the chain asks, once per Jito leader's slot."""

    def sandwiches(self, visible: Sequence[Transaction], slot: int) -> list[Bundle]:
        """Sandwich bundles around some of ``visible`` (held by this slot's leader, unprotected)."""
        ...


def auction(ours: Sequence[Bundle], other_tips: np.ndarray, other_cu: np.ndarray, room: int) -> list[int]:
    """The bundles that win a block's bundle space, in block order: highest tip first, each only if it
    still fits. Indices into ``ours`` followed by the other traffic's bundles (ours first on a tie)."""
    tips = np.concatenate([np.array([b.tip_lamports for b in ours], np.int64), other_tips])
    cus = np.concatenate([np.array([b.cu for b in ours], np.int64), other_cu])
    order = np.lexsort((np.arange(len(tips)), -tips))
    return [int(i) for i in order[pack(cus[order], room)]]


@dataclass(frozen=True, slots=True)
class SandwichPlan:
    """A sandwich the caller's pool math found: the two trades, and what they would earn."""

    front_intent: object  # the front-run's swap, in the caller's terms
    back_intent: object  # the back-run's swap
    profit_lamports: int  # the searcher's gain before its chain costs, valued in lamports


# (a victim the searcher can see) -> a profitable-looking plan, or None. Must not change any pool.
SandwichPort = Callable[["Transaction"], SandwichPlan | None]


@dataclass(frozen=True)
class MevParams:
    rate: float = 0.0  # share of visible transactions a searcher watches (0: no MEV)
    min_profit_lamports: int = 10_000  # what a sandwich must earn after the searcher's costs
    tip_share: float = 0.5  # share of the profit the searcher bids as its tip
    cu_limit: int = 150_000  # of each of its two transactions
    cu_price: int = 0  # it wins by tip, not by priority fee

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1 or not 0 <= self.tip_share <= 1:
            raise ValueError("mev.rate and mev.tip_share must be in [0, 1]")
        if self.min_profit_lamports < 0 or self.cu_limit < 1 or self.cu_price < 0:
            raise ValueError("mev: min_profit_lamports, cu_price >= 0 and cu_limit >= 1")

    def costs_lamports(self, tip: int) -> int:
        """What the searcher pays for a landed sandwich: fees of its two transactions and the tip."""
        return 2 * (BASE_FEE_LAMPORTS + priority_fee_lamports(self.cu_limit, self.cu_price)) + tip

    def tip_for(self, profit_lamports: int) -> int:
        return max(MIN_JITO_TIP_LAMPORTS, int(profit_lamports * self.tip_share))


def searcher_signature(victim: str, slot: int, leg: str) -> str:
    return b58encode(hashlib.sha512(f"sandwich:{victim}:{slot}:{leg}".encode()).digest())


class SandwichSearcher:
    """Implements the chain's ``Searcher``; deterministic for a seed and the same victims."""

    KEEP_WATCHED = 100_000  # decisions remembered, oldest forgotten first

    def __init__(self, port: SandwichPort, params: MevParams | None = None, *, seed: int = 0) -> None:
        self.port = port
        self.params = params or MevParams()
        self._rng = random.Random(f"searcher:{seed}")
        self._watched: OrderedDict[str, bool] = OrderedDict()  # victim signature -> watched?
        self.attempts = 0  # plans asked for

    def watches(self, signature: str) -> bool:
        """Whether the searcher watches this transaction: decided once, the first time it is seen."""
        if signature not in self._watched:
            self._watched[signature] = self._rng.random() < self.params.rate
            if len(self._watched) > self.KEEP_WATCHED:
                self._watched.popitem(last=False)
        return self._watched[signature]

    def sandwich(self, victim: Transaction, slot: int) -> Bundle | None:
        """The sandwich of ``victim`` this slot, if it pays; None otherwise (and for protected ones)."""
        if victim.protected or not self.watches(victim.signature):
            return None
        self.attempts += 1
        plan = self.port(victim)
        if plan is None:
            return None
        tip = self.params.tip_for(plan.profit_lamports)
        if plan.profit_lamports - self.params.costs_lamports(tip) < self.params.min_profit_lamports:
            return None
        leg = {"min_out": 0, "cu_limit": self.params.cu_limit, "cu_price": self.params.cu_price,
               "jito_tip_lamports": 0, "signatures": 1}  # fmt: skip
        front = replace(victim, signature=searcher_signature(victim.signature, slot, "front"),
                        intent=plan.front_intent, **leg)  # fmt: skip
        back = replace(victim, signature=searcher_signature(victim.signature, slot, "back"),
                       intent=plan.back_intent, **leg)  # fmt: skip
        return Bundle(f"sandwich:{victim.signature}:{slot}", (front, victim, back), tip, BundleKind.SANDWICH)

    def sandwiches(self, visible: Sequence[Transaction], slot: int) -> list[Bundle]:
        """The chain's call, once per Jito leader's slot."""
        found = (self.sandwich(victim, slot) for victim in visible)
        return [bundle for bundle in found if bundle is not None]


__all__ = [
    "SANDWICH_ROLES",
    "Bundle",
    "BundleKind",
    "MevParams",
    "SandwichPlan",
    "SandwichPort",
    "SandwichSearcher",
    "Searcher",
    "auction",
    "searcher_signature",
]
