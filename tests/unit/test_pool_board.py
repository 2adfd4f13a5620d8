"""The router's board of pool states: what a route sees of each pool, followed or asked."""

from __future__ import annotations

from sim.decision import Skipped
from sim.pools import restore_pool
from sim.pools.cpmm import CpmmPool
from sim.tokens import TokenRegistry

from engine.pool_board import PoolBoard

TOKENS = TokenRegistry()


def pool(reserve_x: int = 10**12) -> CpmmPool:
    return CpmmPool("raydium:SOL-USDC", TOKENS["SOL"], TOKENS["USDC"], reserve_x, 150 * 10**9 * 10**3)


def test_a_pool_never_seen_is_asked_and_one_seen_is_restored_once_and_kept_until_it_moves() -> None:
    board = PoolBoard()
    assert board.pool("raydium:SOL-USDC") is None and board.known_version("raydium:SOL-USDC") is None
    board.saw("raydium:SOL-USDC", "a:1", pool().snapshot())
    first = board.pool("raydium:SOL-USDC")
    assert first is not None and not isinstance(first, Skipped)
    assert first.snapshot() == pool().snapshot()
    assert board.pool("raydium:SOL-USDC") is first  # restored once
    board.saw("raydium:SOL-USDC", "a:1", None)  # unchanged
    assert board.pool("raydium:SOL-USDC") is first
    board.saw("raydium:SOL-USDC", "a:2", pool(2 * 10**12).snapshot())
    moved = board.pool("raydium:SOL-USDC")
    assert moved is not first and moved.reserves()["SOL"] == 2 * 10**12
    assert board.known_version("raydium:SOL-USDC") == "a:2"


def test_a_lost_pool_is_skipped_until_it_answers_again_and_then_routed_on_as_it_answered() -> None:
    board = PoolBoard()
    board.saw("raydium:SOL-USDC", "a:1", pool().snapshot())
    board.lost("raydium:SOL-USDC", "RayActorError: died")
    skipped = board.pool("raydium:SOL-USDC")
    assert skipped == Skipped("raydium:SOL-USDC", "POOL_UNAVAILABLE", "RayActorError: died")
    restarted = restore_pool(pool(3 * 10**12).snapshot())
    board.saw("raydium:SOL-USDC", "b:1", restarted.snapshot())  # a new incarnation's version
    back = board.pool("raydium:SOL-USDC")
    assert not isinstance(back, Skipped) and back is not None and back.reserves()["SOL"] == 3 * 10**12
