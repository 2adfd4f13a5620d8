"""The chain: slots, blocks, recent blockhashes, block space and the transactions bidding for it.

Time is given, never read (:meth:`Chain.next_slot`, :meth:`Chain.advance_to`).
A skipped slot makes no block: height does not move, no blockhash ages. A
transaction lands only in a block at most 150 above its blockhash's
(``last_valid_block_height``), else it is dropped: ``BlockhashNotFound``.
Each block: (1) sends: the RPC node sends a transaction when submitted and
every 2 s while pending; a send a leader takes in (a preset loses some,
whatever they pay) is held by the leaders of this 4-slot window and the
next, then forgotten until the next re-send; (2) on a Jito leader's slot,
bundles first, by tip, each wholly or not at all: protected transactions,
sandwiches (``sim.mev``) around held unprotected ones, others'; (3) the
rest by reward per CU among held transactions and other traffic
(``sim.chain_fees``), no account taking more than 12M CU. Landed
transactions execute in block order through the caller's :data:`Executor`:
one that fails still lands and pays; a failing bundle reverts, unpaid.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from sim.chain_fees import (
    DEFAULT_CU_LIMIT,
    MAX_CU_PER_TX,
    MIN_JITO_TIP_LAMPORTS,
    Congestion,
    Demand,
    FeeCharge,
    FeeHistory,
    FeeMarket,
    charge,
    leader_reward_per_cu,
    pack_block,
    unit,
)
from sim.mev import SANDWICH_ROLES, Bundle, BundleKind, Searcher, auction
from sim.orders import b58encode
from sim.pools.errors import SimError

@dataclass(frozen=True)
class ChainParams:
    slot_s: float = 0.4
    skip_rate: float = 0.05
    blockhash_valid_blocks: int = 150
    block_cu_limit: int = 48_000_000
    account_cu_limit: int = 12_000_000  # CU one block gives transactions writing the same account
    bundle_cu_limit: int = 12_000_000  # how much of a block bundles may take
    rebroadcast_s: float = 2.0
    leader_slots: int = 4  # consecutive slots of one leader
    forward_leaders: int = 2  # leaders a send reaches: this window's and the next
    jito_share: float = 0.95  # share of leaders that run Jito (take bundles)
    confirm_depth: int = 1  # blocks on top of a block before it counts as confirmed
    finalize_depth: int = 32
    fee_window_blocks: int = 150  # blocks whose landed fees recent_fees() reports
    max_pending: int = 10_000  # an RPC node with more queued drops new ones
    cu_median: int = 100_000  # other traffic's CU limits: log-normal
    cu_sigma: float = 0.8
    genesis_time: float = 1_700_000_000.0
    first_slot: int = 0
    seed: int = 0
    congestion: Congestion = field(default_factory=Congestion)

    def __post_init__(self) -> None:
        checks = {
            "slot_s and rebroadcast_s must be > 0": self.slot_s > 0 and self.rebroadcast_s > 0,
            "skip_rate must be in [0, 1)": 0 <= self.skip_rate < 1,
            "jito_share must be in [0, 1]": 0 <= self.jito_share <= 1,
            "counts and CU limits must be >= 1": min(
                self.blockhash_valid_blocks, self.block_cu_limit, self.account_cu_limit, self.leader_slots,
                self.forward_leaders, self.fee_window_blocks, self.max_pending, self.cu_median) >= 1,
            "bundle_cu_limit must be within the block's CU": 0 <= self.bundle_cu_limit <= self.block_cu_limit,
            "0 <= confirm_depth <= finalize_depth": 0 <= self.confirm_depth <= self.finalize_depth,
            "seed and first_slot must be >= 0": self.seed >= 0 and self.first_slot >= 0,
        }  # fmt: skip
        wrong = [message for message, ok in checks.items() if not ok]
        if wrong:
            raise ValueError("; ".join(wrong))


@dataclass(frozen=True, slots=True)
class Transaction:
    """A signed transaction. ``intent`` is the caller's (the swap); ``min_out`` its visible slippage bound."""

    signature: str
    blockhash: str
    last_valid_block_height: int
    intent: object = None
    min_out: int = 0
    cu_limit: int = DEFAULT_CU_LIMIT
    cu_price: int = 0  # micro-lamports per CU
    jito_tip_lamports: int = 0  # > 0: sent as a Jito bundle, at the top of a block or not at all
    signatures: int = 1
    accounts: tuple[str, ...] = ()  # the accounts it write-locks: the swap's pools

    def __post_init__(self) -> None:
        ok = 1 <= self.cu_limit <= MAX_CU_PER_TX and self.cu_price >= 0 and self.min_out >= 0 and self.signatures >= 1
        if not ok:
            raise ValueError(f"cu_limit within 1..{MAX_CU_PER_TX}, cu_price, min_out >= 0, signatures >= 1: {self}")
        if self.jito_tip_lamports < 0 or 0 < self.jito_tip_lamports < MIN_JITO_TIP_LAMPORTS:
            raise ValueError(f"a Jito tip is at least {MIN_JITO_TIP_LAMPORTS} lamports")

    @property
    def protected(self) -> bool:
        return self.jito_tip_lamports > 0

    @property
    def reward_per_cu(self) -> float:
        return leader_reward_per_cu(self.cu_limit, self.cu_price, self.signatures)


@dataclass(frozen=True, slots=True)
class Execution:
    ok: bool = True
    error: str | None = None  # e.g. the program's slippage error
    cu_consumed: int | None = None  # None: the whole limit


# (txs in block order, atomic) -> one Execution each. Atomic: a bundle, to apply wholly or not at all.
Executor = Callable[[Sequence[Transaction], bool], Sequence[Execution]]


def all_succeed(txs: Sequence[Transaction], atomic: bool) -> list[Execution]:
    """The default executor: every transaction succeeds."""
    return [Execution() for _ in txs]


class TxStatus(StrEnum):
    PENDING = "pending"
    LANDED = "landed"  # executed and succeeded
    FAILED = "failed"  # landed, failed on chain, paid its fees
    EXPIRED = "expired"  # its blockhash grew too old before it landed: BlockhashNotFound
    REVERTED = "reverted"  # a protected bundle that failed: not landed, nothing paid


@dataclass(frozen=True, slots=True)
class Landed:
    tx: Transaction
    slot: int
    height: int
    position: int  # index in the block, other traffic counted
    ok: bool
    error: str | None
    cu_consumed: int
    fees: FeeCharge
    sends: int  # times it was sent (1: never re-sent; 0: a searcher's)
    bundle_id: str | None = None
    role: str | None = None  # in a sandwich: front_run | victim | back_run


@dataclass(frozen=True, slots=True)
class Dropped:
    tx: Transaction
    status: TxStatus  # EXPIRED or REVERTED
    error: str  # "BlockhashNotFound", or the failing transaction's error
    sends: int  # it paid nothing


@dataclass(frozen=True, slots=True)
class Send:
    signature: str
    attempt: int  # 1: the first send; more: re-sends
    at: float
    received: bool  # taken in by a leader (False: lost on the way)


@dataclass(frozen=True, slots=True)
class Block:
    slot: int
    height: int
    block_time: int  # unix seconds, whole, as programs see it
    blockhash: str
    landed: tuple[Landed, ...]  # the caller's and the searchers' transactions, in block order
    dropped: tuple[Dropped, ...]  # expired at this height, or reverted bundles
    sends: tuple[Send, ...]  # sends since the previous block
    tx_count: int  # every transaction in the block, other traffic included
    cu_used: int
    jito_leader: bool

    @property
    def sandwiched(self) -> tuple[Landed, ...]:
        return tuple(item for item in self.landed if item.role == "victim")


@dataclass(frozen=True, slots=True)
class RecentBlockhash:
    blockhash: str
    last_valid_block_height: int
    slot: int


STATS = ("submitted", "sends", "landed", "failed", "expired", "reverted", "sandwiched", "skipped_slots")


class ChainError(SimError):
    code = "CHAIN_ERROR"


class BlockhashNotFound(ChainError):
    code = "BLOCKHASH_NOT_FOUND"
    transient = True  # sign again with a fresh blockhash


class AlreadyProcessed(ChainError):
    code = "ALREADY_PROCESSED"


class RpcQueueFull(ChainError):
    code = "RPC_QUEUE_FULL"
    transient = True


@dataclass(slots=True)
class _Pending:
    tx: Transaction
    submitted_slot: int
    next_send_at: float
    sends: int = 0
    held_until: int = -1  # the last slot a leader holds it in


class Chain:
    """One simulated chain, advanced by the caller's clock."""

    KEEP_OUTCOMES = 100_000  # outcomes of finished transactions kept for status() and AlreadyProcessed

    def __init__(self, params: ChainParams | None = None, *, searcher: Searcher | None = None) -> None:
        self.params = p = params or ChainParams()
        self.congestion = p.congestion
        self.searcher = searcher
        # Which sends reach a leader: drawn in turn (it depends on what is sent); all else is keyed by slot.
        self._send_rng = np.random.default_rng([p.seed, 2])
        self._market = FeeMarket(seed=p.seed, block_cu=p.block_cu_limit, account_cu=p.account_cu_limit,
                                 cu_median=p.cu_median, cu_sigma=p.cu_sigma, slot_s=p.slot_s)  # fmt: skip
        self._next = 0  # the next slot to produce, counted from first_slot
        self.height = 0
        self._heights: OrderedDict[str, int] = OrderedDict()
        self._seal(p.first_slot - 1)  # genesis
        self._pending: dict[str, _Pending] = {}
        self._sent: list[Send] = []  # since the last block
        self._done: OrderedDict[str, TxStatus] = OrderedDict()
        self._fees = FeeHistory(p.fee_window_blocks)
        self._counts: Counter[str] = Counter()

    @property
    def slot(self) -> int:
        """The slot in progress: the next one to be produced."""
        return self.params.first_slot + self._next

    @property
    def now(self) -> float:  # when the last produced slot ended
        return self.slot_start(self.slot)

    def slot_start(self, slot: int) -> float:
        return self.params.genesis_time + (slot - self.params.first_slot) * self.params.slot_s

    def block_time(self, slot: int) -> int:  # a slot's block time, whole unix seconds: what programs see
        return math.floor(round(self.slot_start(slot + 1), 6))

    def slot_at(self, t: float) -> int:
        """The slot in progress at time ``t``."""
        return self.params.first_slot + math.floor((t - self.params.genesis_time) / self.params.slot_s + 1e-9)

    def latest_blockhash(self) -> RecentBlockhash:
        """As ``getLatestBlockhash`` answers: valid up to the block height it names."""
        return RecentBlockhash(self._blockhash, self.height + self.params.blockhash_valid_blocks, self.slot)

    def status(self, signature: str) -> TxStatus | None:
        return TxStatus.PENDING if signature in self._pending else self._done.get(signature)

    def commitment(self, height: int) -> str | None:
        """What a block at ``height`` has reached: processed, confirmed, finalized (None: no such block)."""
        if not 1 <= height <= self.height:
            return None
        depth, p = self.height - height, self.params
        return "finalized" if depth >= p.finalize_depth else "confirmed" if depth >= p.confirm_depth else "processed"

    def recent_fees(self, account: str | None = None) -> np.ndarray:
        """CU prices landed in the last ``fee_window_blocks`` blocks, ascending: of every transaction,
        or of those writing ``account`` (in the blocks where one of ours wrote it)."""
        return self._fees.recent(account)

    def load(self) -> float:
        """CU the other traffic asks for now, in blocks."""
        return self._market.load(self.congestion)

    @property
    def stats(self) -> dict[str, int]:
        """Counts since genesis: the names in ``STATS``."""
        return {name: self._counts[name] for name in STATS}

    @property
    def pending_count(self) -> int:  # sent, not landed, not dropped
        return len(self._pending)

    def set_congestion(self, congestion: Congestion) -> None:
        """Switch the other traffic now (its waves keep their phase)."""
        self.congestion = congestion

    def submit(self, tx: Transaction, now: float) -> None:
        """Send ``tx`` at ``now`` (again: no change); the RPC node re-sends it every ``rebroadcast_s``.
        Raises BlockhashNotFound (unknown or expired blockhash), AlreadyProcessed or RpcQueueFull."""
        if tx.signature in self._pending:
            return
        if tx.signature in self._done:
            raise AlreadyProcessed(f"transaction {tx.signature} was processed already")
        valid = self.params.blockhash_valid_blocks
        height = self._heights.get(tx.blockhash)
        if height is None or height + valid < self.height + 1:
            raise BlockhashNotFound(f"blockhash {tx.blockhash} not found: unknown, or more than {valid} blocks old")
        if tx.last_valid_block_height != height + valid:
            raise ValueError("last_valid_block_height does not belong to this blockhash")
        if len(self._pending) >= self.params.max_pending:
            raise RpcQueueFull(f"the RPC node holds {len(self._pending)} transactions already")
        first_slot, sends = max(self.slot_at(now), self.slot), int(tx.protected)  # a bundle is sent once
        self._pending[tx.signature] = _Pending(tx, first_slot, max(now, self.now), sends)
        self._counts["submitted"] += 1

    def advance_to(self, t: float, execute: Executor | None = None) -> list[Block]:
        """Produce every slot ended by ``t``; their blocks (a skipped slot has none). While nothing is
        pending, slots before the last ``fee_window_blocks`` blocks are only counted (waves, height,
        blockhashes), leaving no Block: the chain ends as slot by slot would, and idling costs little."""
        last = self.slot_at(t + 1e-9) - 1
        if not self._pending:
            self._fast_forward(last)
        blocks = [self.next_slot(execute) for _ in range(last - self.slot + 1)]
        return [block for block in blocks if block is not None]

    def next_slot(self, execute: Executor | None = None) -> Block | None:
        """Produce the slot in progress: its block, or None when its leader skipped it."""
        slot, end = self.slot, self.slot_start(self.slot + 1)
        self._next += 1
        self._market.step(self.congestion, slot)
        self._send(end)
        if self._skipped(slot):
            return None
        demand = self._market.draw(self.congestion, slot)
        self.height += 1
        dropped = self._expire()
        execute = execute or all_succeed
        landed: list[Landed] = []
        jito = self._jito_leader(slot)
        bundle_cu, position = self._pack_bundles(slot, demand, landed, dropped, execute) if jito else (0, 0)
        room = self.params.block_cu_limit - bundle_cu
        tx_count, cu_used = self._pack_transactions(slot, demand, room, position, landed, execute)
        self._seal(slot)
        sends, self._sent = tuple(self._sent), []
        return Block(
            slot=slot, height=self.height, block_time=self.block_time(slot), blockhash=self._blockhash,
            landed=tuple(landed), dropped=tuple(dropped), sends=sends, tx_count=tx_count,
            cu_used=bundle_cu + cu_used, jito_leader=jito,
        )  # fmt: skip

    def _skipped(self, slot: int) -> bool:
        skipped = unit("skip", self.params.seed, slot) < self.params.skip_rate
        self._counts["skipped_slots"] += skipped
        return skipped

    def _seal(self, slot: int) -> None:
        """The slot's block is made: its blockhash is the latest, valid for the next 150 blocks."""
        self._blockhash = b58encode(hashlib.sha256(f"blockhash:{self.params.seed}:{slot}".encode()).digest())
        self._heights[self._blockhash] = self.height
        while len(self._heights) > 2 * self.params.blockhash_valid_blocks:
            self._heights.popitem(last=False)

    def _fast_forward(self, last: int) -> None:
        """Count the slots up to ``last`` but those holding its last ``fee_window_blocks`` blocks."""
        slot, blocks = last, 0
        while slot >= self.slot and blocks < self.params.fee_window_blocks:
            blocks += unit("skip", self.params.seed, slot) >= self.params.skip_rate
            slot -= 1
        while self.slot <= slot:
            idle = self.slot
            self._next += 1
            self._market.step(self.congestion, idle)
            if not self._skipped(idle):
                self.height += 1
                self._seal(idle)

    def _send(self, end: float) -> None:
        """Every send due before the slot ends: taken in by the leaders (held a while) or lost."""
        p = self.params
        for pending in self._pending.values():
            if pending.tx.protected:
                continue
            while pending.next_send_at < end - 1e-9:
                pending.sends += 1
                received = bool(self._send_rng.random() >= self.congestion.ingress_loss)
                if received:
                    window = self.slot_at(pending.next_send_at) // p.leader_slots
                    pending.held_until = max(pending.held_until, (window + p.forward_leaders) * p.leader_slots - 1)
                self._sent.append(Send(pending.tx.signature, pending.sends, pending.next_send_at, received))
                self._counts["sends"] += 1
                pending.next_send_at += p.rebroadcast_s

    def _expire(self) -> list[Dropped]:
        too_old = [p for p in self._pending.values() if p.tx.last_valid_block_height < self.height]
        for signature in [p.tx.signature for p in too_old]:
            self._finish(signature, TxStatus.EXPIRED)
        return [Dropped(p.tx, TxStatus.EXPIRED, "BlockhashNotFound", p.sends) for p in too_old]

    def _held(self, slot: int) -> list[Transaction]:
        """What this slot's leader holds: sent, taken in, not packed yet, not a bundle."""
        held = (p for p in self._pending.values() if p.submitted_slot <= slot <= p.held_until)
        return [p.tx for p in held if not p.tx.protected]

    def _pack_bundles(
        self, slot: int, demand: Demand, landed: list[Landed], dropped: list[Dropped], execute: Executor
    ) -> tuple[int, int]:
        """The bundle auction at the top of the block; returns (CU used, transactions placed)."""
        ours = [Bundle(p.tx.signature, (p.tx,), p.tx.jito_tip_lamports)
                for p in self._pending.values() if p.tx.protected and p.submitted_slot <= slot]  # fmt: skip
        if self.searcher is not None:
            ours += self.searcher.sandwiches(self._held(slot), slot)
        used, position = 0, 0
        for index in auction(ours, demand.bundle_tip, demand.bundle_cu, self.params.bundle_cu_limit):
            if index >= len(ours):  # other traffic's
                used, position = used + int(demand.bundle_cu[index - len(ours)]), position + 1
                continue
            bundle = ours[index]  # a victim is in one bundle at most: the searcher's rule
            results = list(execute(bundle.txs, True))
            if all(result.ok for result in results):
                for i, (tx, result) in enumerate(zip(bundle.txs, results)):
                    tip = bundle.tip_lamports if i == len(bundle.txs) - 1 else 0
                    role = SANDWICH_ROLES[i] if bundle.kind is BundleKind.SANDWICH else None
                    pending = self._pending.get(tx.signature)  # None: the searcher's
                    landed.append(self._landed(tx, result, slot, position + i, pending.sends if pending else 0,
                                               tip, bundle.bundle_id, role))  # fmt: skip
                    if pending:
                        self._finish(tx.signature, TxStatus.LANDED, sandwiched=int(role == "victim"))
                used, position = used + bundle.cu, position + len(bundle.txs)
            elif bundle.kind is BundleKind.PROTECTED:
                tx = bundle.txs[0]
                error = next(r.error for r in results if not r.ok) or "BundleReverted"
                dropped.append(Dropped(tx, TxStatus.REVERTED, error, self._pending[tx.signature].sends))
                self._finish(tx.signature, TxStatus.REVERTED)
        return used, position

    def _pack_transactions(
        self, slot: int, demand: Demand, room: int, position: int, landed: list[Landed], execute: Executor
    ) -> tuple[int, int]:
        """The rest of the block by reward per CU; returns (transactions in the block, CU they use)."""
        held = self._held(slot)
        accounts = sorted({account for tx in held for account in tx.accounts})
        number = {account: i for i, account in enumerate(accounts)}
        none = np.zeros(0, np.int64)
        ours = Demand(
            np.array([tx.reward_per_cu for tx in held], float), np.array([tx.cu_limit for tx in held], np.int64),
            np.array([tx.cu_price for tx in held], np.int64), none, none,
        )  # fmt: skip
        chosen, items, writes = pack_block(
            demand, [self._market.draw_account(self.congestion, a, slot) for a in accounts], ours,
            [[number[a] for a in tx.accounts] for tx in held],
            room=room, account_room=self.params.account_cu_limit,
        )  # fmt: skip
        first_ours = len(items.cu) - len(held)
        for rank, index in enumerate(chosen):
            if index >= first_ours:
                tx = held[index - first_ours]
                result = list(execute([tx], False))[0]
                landed.append(self._landed(tx, result, slot, position + rank, self._pending[tx.signature].sends))
                self._finish(tx.signature, TxStatus.LANDED if result.ok else TxStatus.FAILED)
        self._fees.record(None, items.price[chosen])
        for account, i in number.items():
            self._fees.record(account, items.price[[j for j in chosen if i in writes.get(int(j), ())]])
        return position + len(chosen), int(items.cu[chosen].sum())

    def _landed(
        self, tx: Transaction, result: Execution, slot: int, position: int, sends: int,
        tip: int = 0, bundle_id: str | None = None, role: str | None = None,
    ) -> Landed:  # fmt: skip
        fees = charge(tx.cu_limit, tx.cu_price, signatures=tx.signatures, tip_lamports=tip)
        consumed = tx.cu_limit if result.cu_consumed is None else min(result.cu_consumed, tx.cu_limit)
        return Landed(tx, slot, self.height, position, result.ok, result.error, consumed, fees, sends, bundle_id, role)

    def _finish(self, signature: str, status: TxStatus, sandwiched: int = 0) -> None:
        del self._pending[signature]
        self._done[signature] = status
        if len(self._done) > self.KEEP_OUTCOMES:
            self._done.popitem(last=False)
        self._counts[status.value] += 1
        self._counts["sandwiched"] += sandwiched

    def _jito_leader(self, slot: int) -> bool:
        """Whether the slot's leader runs Jito: fixed per leader window by the seed."""
        return unit("jito", self.params.seed, slot // self.params.leader_slots) < self.params.jito_share


__all__ = [
    "AlreadyProcessed", "Block", "BlockhashNotFound", "Bundle", "BundleKind", "Chain", "ChainError", "ChainParams",
    "Congestion", "Dropped", "Execution", "Executor", "Landed", "RecentBlockhash", "RpcQueueFull", "STATS",
    "Searcher", "Send", "Transaction", "TxStatus", "all_succeed",
]  # fmt: skip
