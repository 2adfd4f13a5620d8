"""A swap as a chain transaction, as the lifecycle sees it: its terms, and what the chain answered.

At ``building`` the executor takes :class:`TxTerms` from the chain (a recent
blockhash and its ``lastValidBlockHeight``, the compute-unit limit and price);
at ``submitted`` it sends the transaction and waits for a :class:`Landing`:
landed (with the fills, in its slot), failed on chain (fees paid, no fill),
expired (``BlockhashNotFound``: nothing paid), reverted (a protected bundle
whose swap failed: nothing paid) or refused by the RPC node.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sim.chain import Transaction
from sim.chain_swaps import SwapIntent, SwapLeg

from engine.plans import Fill

LANDED, FAILED, EXPIRED, REVERTED, REFUSED = "landed", "failed", "expired", "reverted", "refused"


@dataclass(frozen=True, slots=True)
class TxTerms:
    """What a transaction is signed with (fixed at ``building``)."""

    blockhash: str
    last_valid_block_height: int
    cu_limit: int
    cu_price: int  # micro-lamports per CU
    priority_fee: str | int  # what was asked: a level, or micro-lamports per CU
    jito_tip_lamports: int = 0
    expires_in_s: float = 60.0  # about when the blockhash runs out, from when it was taken
    slot: int = 0  # the slot it was taken in

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TxTerms:
        return cls(**data)

    def details(self) -> dict[str, Any]:
        """The ``building`` event's ``transaction``."""
        return {
            "recentBlockhash": self.blockhash, "lastValidBlockHeight": self.last_valid_block_height,
            "computeUnitLimit": self.cu_limit, "computeUnitPrice": self.cu_price,
            "priorityFee": self.priority_fee, "jitoTipLamports": self.jito_tip_lamports,
            "protected": self.jito_tip_lamports > 0,
        }  # fmt: skip


def swap_transaction(signature: str, order_id: str, route: Any, min_out: int, terms: TxTerms) -> Transaction:
    """The route as one transaction (every leg, all or nothing), write-locking each pool it touches."""
    legs = tuple(SwapLeg(leg.pool_id, leg.token_in, leg.amount_in) for leg in route.legs)
    intent = SwapIntent(order_id, legs, min_out, chained=route.kind == "two_hop")
    return Transaction(
        signature, terms.blockhash, terms.last_valid_block_height, intent, min_out,
        cu_limit=terms.cu_limit, cu_price=terms.cu_price, jito_tip_lamports=terms.jito_tip_lamports,
        accounts=intent.pool_ids,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Landing:
    """The chain's answer for one transaction."""

    status: str  # LANDED | FAILED | EXPIRED | REVERTED | REFUSED
    signature: str
    error: str | None = None  # the program's or the runtime's error
    slot: int | None = None
    height: int | None = None
    block_time: int | None = None  # unix seconds, as programs see it
    landed_at: float | None = None  # when its slot ended
    finalizes_at: float | None = None  # when its block has 32 blocks on top (fixed by the seed's skipped slots)
    fees: dict[str, Any] | None = None  # FeeCharge.to_dict(), when it landed
    cu_consumed: int | None = None
    sends: tuple[dict[str, Any], ...] = ()  # {"attempt", "at", "received"}, every send
    role: str | None = None  # "victim": it landed inside a sandwich
    fills: tuple[Fill, ...] = field(default=())
    fill_error: str | None = None  # landed, but a pool would not take the swap (it restarted meanwhile)

    def chain_details(self) -> dict[str, Any]:
        """What the order's events show of its landing (or of its failure to land)."""
        details: dict[str, Any] = {"txSignature": self.signature, "sends": list(self.sends),
                                   "resends": max(0, len(self.sends) - 1)}  # fmt: skip
        if self.slot is not None:
            details.update(slot=self.slot, blockHeight=self.height, blockTime=self.block_time,
                           landedAt=self.landed_at, computeUnitsConsumed=self.cu_consumed,
                           finalizesAt=self.finalizes_at, fees=self.fees, commitment="confirmed")  # fmt: skip
        if self.role is not None:
            details["sandwiched"] = self.role == "victim"
        if self.error is not None:
            details["chainError"] = self.error
        return details

    def stamp(self) -> dict[str, Any]:
        """The landing as a pool records it with the fill (so a resumed order finds it there)."""
        return {k: v for k, v in self.chain_details().items() if k not in ("chainError",)}


__all__ = ["EXPIRED", "FAILED", "LANDED", "Landing", "REFUSED", "REVERTED", "TxTerms", "swap_transaction"]
