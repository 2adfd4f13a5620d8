"""The order state machine and the retry schedule."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.orders import (
    FINAL_STATUSES,
    InvalidTransition,
    ACTIVE_STATUSES,
    OrderStatus,
    RetryPolicy,
    can_transition,
    predecessors,
    transaction_signature,
)

S = OrderStatus


def test_happy_path_is_the_seeds_lifecycle():
    path = [S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED]
    for current, nxt in zip(path, path[1:]):
        assert can_transition(current, nxt)


@pytest.mark.parametrize("status", [S.ROUTING, S.BUILDING, S.SUBMITTED])
def test_in_flight_statuses_can_go_back_to_pending_for_a_retry(status):
    assert can_transition(status, S.PENDING)


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
def test_final_statuses_go_nowhere(final):
    assert final.is_final
    for target in S:
        assert not can_transition(final, target)


def test_skipping_a_stage_is_refused_with_both_statuses_named():
    assert not can_transition(S.PENDING, S.SUBMITTED)
    error = InvalidTransition(S.PENDING, S.SUBMITTED)
    assert error.current is S.PENDING and error.target is S.SUBMITTED
    assert "pending" in str(error) and "submitted" in str(error)


def test_only_a_submitted_order_can_be_confirmed():
    assert predecessors(S.CONFIRMED) == {S.SUBMITTED}
    assert predecessors(S.FAILED) == {S.PENDING, S.TRIGGERED, S.ROUTING, S.BUILDING, S.SUBMITTED}


def test_an_order_that_waits_is_armed_fired_or_ended_while_it_waits():
    path = [S.PENDING, S.OPEN, S.TRIGGERED, S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED]
    for current, nxt in zip(path, path[1:]):
        assert can_transition(current, nxt)
    assert predecessors(S.CANCELLED) == {S.PENDING, S.OPEN, S.TRIGGERED}
    assert predecessors(S.EXPIRED) == {S.PENDING, S.OPEN}
    assert predecessors(S.TRIGGERED) == {S.OPEN}  # only an armed order fires


@pytest.mark.parametrize("status", [S.ROUTING, S.BUILDING, S.SUBMITTED])
def test_a_limit_whose_price_moved_back_is_armed_again_from_any_stage_before_its_fill(status):
    assert can_transition(status, S.OPEN)
    assert not can_transition(S.CONFIRMED, S.OPEN)


def test_waiting_orders_are_neither_final_nor_active():
    assert S.OPEN not in ACTIVE_STATUSES and not S.OPEN.is_final
    assert {S.CANCELLED, S.EXPIRED} <= FINAL_STATUSES
    assert ACTIVE_STATUSES == {S.PENDING, S.TRIGGERED, S.ROUTING, S.BUILDING, S.SUBMITTED}


@given(st.lists(st.sampled_from(list(S)), min_size=1, max_size=30))
@settings(max_examples=200, derandomize=True)
def test_any_legal_walk_has_at_most_one_final_status_and_it_is_last(walk):
    current = S.PENDING
    seen = [current]
    for target in walk:
        if can_transition(current, target):
            current = target
            seen.append(current)
    finals = [s for s in seen if s.is_final]
    assert len(finals) <= 1
    assert not finals or seen[-1] == finals[0]


def test_backoff_is_1_2_4_seconds_then_nothing():
    policy = RetryPolicy()
    assert [policy.delay_before(a) for a in (1, 2, 3, 4, 5)] == [0.0, 1.0, 2.0, 4.0, None]


def test_backoff_with_no_retries_allows_one_attempt():
    assert RetryPolicy(max_retries=0).delay_before(2) is None
    with pytest.raises(ValueError):
        RetryPolicy().delay_before(0)


def test_transaction_signatures_are_base58_deterministic_and_distinct():
    a = transaction_signature("order-1", "raydium:SOL-USDC", 1)
    assert a == transaction_signature("order-1", "raydium:SOL-USDC", 1)
    assert a != transaction_signature("order-1", "raydium:SOL-USDC", 2)
    assert 80 <= len(a) <= 90
    assert set(a) <= set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
