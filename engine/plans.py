"""Typed values the order lifecycle passes along: decisions, plans, fills, failures.

A route comes from the domain (``sim.routing.Route``); the lifecycle turns it
into an :class:`ExecutionPlan` (the route plus its slippage bound and, once
submitted, its expiry and signature), which is what the order row stores.
Pools answer a swap with a :class:`Fill` or a :class:`Rejection`: domain
refusals are answers, not crashes, so they travel as data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sim.decision import Rejection
from sim.orders import transaction_signature
from sim.routing import Route, RouteLeg

from engine.records import TradeRecord


class OrderFailure(Exception):
    """An attempt that did not fill (raised inside the lifecycle, then recorded)."""

    def __init__(self, code: str, message: str, transient: bool, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.rejection = Rejection(code, message, transient)
        self.details = details or {}

    @classmethod
    def of(cls, rejection: Rejection) -> OrderFailure:
        return cls(rejection.code, rejection.message, rejection.transient)


def venues_of(route: Route) -> str:
    """The venues of a route, as the order row names them (``meteora`` or ``meteora+raydium``)."""
    return "+".join(sorted(set(route.dexes)))


def route_from_json(data: dict[str, Any]) -> Route:
    legs = tuple(RouteLeg(**leg) for leg in data["legs"])
    return Route(
        kind=data["kind"],
        token_in=data["token_in"],
        token_out=data["token_out"],
        amount_in=int(data["amount_in"]),
        amount_out=int(data["amount_out"]),
        legs=legs,
        fee_by_token=dict(data.get("fee_by_token") or {}),
        price_impact_bps=float(data.get("price_impact_bps") or 0.0),
    )


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """A route being executed: its minimum out, and once submitted its expiry and signature."""

    route: Route
    min_out: int
    expires_at: float | None = None
    signature: str | None = None
    tx: dict[str, Any] | None = None  # the chain transaction's terms (engine.chain_tx.TxTerms), with the chain on

    @property
    def pool_ids(self) -> tuple[str, ...]:
        return self.route.pool_ids

    @property
    def dex(self) -> str:
        return venues_of(self.route)

    def submitted(self, expires_at: float, attempt: int, order_id: str) -> ExecutionPlan:
        signature = transaction_signature(order_id, self.route.legs[0].pool_id, attempt)
        return replace(self, expires_at=expires_at, signature=signature)

    def to_json(self) -> dict[str, Any]:
        data = self.route.to_dict()
        data["min_out"] = self.min_out
        if self.expires_at is not None:
            data["expires_at"] = self.expires_at
        if self.signature is not None:
            data["signature"] = self.signature
        if self.tx is not None:
            data["tx"] = self.tx
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecutionPlan:
        return cls(
            route=route_from_json(data),
            min_out=int(data["min_out"]),
            expires_at=data.get("expires_at"),
            signature=data.get("signature"),
            tx=data.get("tx"),
        )


@dataclass(frozen=True, slots=True)
class SwapOrder:
    """One leg sent to one pool; idempotent per (order_id, leg)."""

    order_id: str
    leg: int
    token_in: str
    amount_in: int
    min_out: int
    expires_at: float
    signature: str | None = None
    held: bool = False  # part of an atomic route: the caller holds the pool
    holder: str | None = None  # who holds the pool, when not the order itself (the chain, for a block)
    chain: dict[str, Any] | None = None  # where it landed (slot, fees...), recorded with the fill


@dataclass(frozen=True, slots=True)
class Fill:
    """One leg filled by one pool (``existing``: it had been filled before)."""

    pool_id: str
    order_id: str | None
    leg: int
    token_in: str
    amount_in: int
    token_out: str
    amount_out: int
    fee: int
    price_impact_bps: float | None
    tx_signature: str
    existing: bool = False
    chain: dict[str, Any] | None = None  # where its transaction landed, when the chain executed it

    @classmethod
    def from_trade(cls, record: TradeRecord, *, existing: bool) -> Fill:
        details = record.details or {}
        return cls(
            pool_id=record.pool_id,
            order_id=record.order_id,
            leg=record.leg,
            token_in=record.token_in,
            amount_in=record.amount_in,
            token_out=record.token_out,
            amount_out=record.amount_out,
            fee=record.fee,
            price_impact_bps=details.get("priceImpactBps"),
            tx_signature=details.get("txSignature")
            or transaction_signature(record.order_id or "", record.pool_id, record.leg),
            existing=existing,
            chain=details.get("chain"),
        )


@dataclass(frozen=True, slots=True)
class HeldPool:
    """A pool held for one order: its state at the instant it was taken."""

    snapshot: dict[str, Any]
    now: float


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """Where one run left an order: final, back in the queue after ``retry_in``, or not runnable."""

    status: str
    retry_in: float | None = None
    superseded: bool = False
    message: str | None = None
