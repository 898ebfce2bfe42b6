"""A partition's state takes its messages one after another; holes after a rebalance are read again."""

from __future__ import annotations

from amlwatch.streams.gaps import Admit, GapGuard

TP = ("aml.work", 0)


def guard_just_assigned(now: float = 0.0) -> GapGuard:
    guard = GapGuard(window_seconds=60, retry_seconds=2)
    guard.assigned(TP, now)
    return guard


def test_messages_in_order_are_taken_and_redeliveries_are_covered():
    guard = guard_just_assigned()
    assert guard.admit(TP, expected=10, offset=10, now=1) is Admit.NEXT
    assert guard.admit(TP, expected=11, offset=4, now=1) is Admit.COVERED
    assert guard.seeks == 0


def test_a_hole_after_an_assignment_is_read_again_until_the_expected_message_comes():
    guard = guard_just_assigned()
    assert guard.admit(TP, expected=40, offset=1061, now=1) is Admit.SEEK
    assert guard.admit(TP, expected=40, offset=1062, now=1.1) is Admit.SKIP   # left over from before the seek
    assert guard.due(now=2.0) == []
    assert guard.due(now=3.5) == [(TP, 40)], "the seek was swallowed: issue it again"
    assert guard.admit(TP, expected=40, offset=40, now=3.6) is Admit.NEXT
    assert guard.pending == {} and guard.due(now=10) == []


def test_the_first_answer_past_the_hole_is_not_trusted_but_a_repeated_seek_answers_it():
    guard = guard_just_assigned()
    assert guard.admit(TP, expected=5, offset=9, now=1) is Admit.SEEK
    # Faust's read offset could still sit at 9 after the first seek: 9 again proves nothing yet.
    assert guard.admit(TP, expected=5, offset=9, now=1.2) is Admit.SKIP
    assert guard.due(now=3.1) == [(TP, 5)]
    # After a repeated seek with nothing in flight, 9 is the first message from 5 on: 5..8 are not in the log.
    assert guard.admit(TP, expected=5, offset=9, now=3.2) is Admit.NEXT
    assert guard.holes == 1


def test_long_after_the_assignment_a_jump_is_a_real_hole():
    guard = guard_just_assigned(now=0)
    assert guard.admit(TP, expected=100, offset=102, now=61) is Admit.NEXT
    assert guard.holes == 1 and guard.seeks == 0


def test_a_new_assignment_clears_a_pending_rewind():
    guard = guard_just_assigned()
    assert guard.admit(TP, expected=5, offset=9, now=1) is Admit.SEEK
    guard.assigned(TP, now=2)
    assert guard.due(now=10) == []
