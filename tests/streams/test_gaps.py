"""A partition's state takes its messages one after another; holes after a rebalance are read again,
and only the broker's log start proves a hole real (issue 16)."""

from __future__ import annotations

from amlwatch.streams.gaps import Admit, GapGuard

TP = ("aml.work", 0)


def guard_just_assigned(now: float = 0.0) -> GapGuard:
    guard = GapGuard(retry_seconds=2)
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


def test_a_repeated_seek_answered_by_the_same_message_is_not_a_hole():
    guard = guard_just_assigned()
    assert guard.admit(TP, expected=5, offset=9, now=1) is Admit.SEEK
    assert guard.admit(TP, expected=5, offset=9, now=1.2) is Admit.SKIP
    assert guard.due(now=3.1) == [(TP, 5)]
    # The repeated seek can be swallowed by a fetch in flight just like the first: 9 again proves nothing
    # (taking it as a hole lost a partition's registry events in one of three SIGKILL runs).
    assert guard.admit(TP, expected=5, offset=9, now=3.2) is Admit.SKIP
    assert guard.log_starts_at(TP, 5, start=0) == 5, "the log still holds 5: seek there again"
    assert guard.due(now=5.3) == [(TP, 5)]
    assert guard.admit(TP, expected=5, offset=5, now=5.4) is Admit.NEXT
    assert guard.holes == 0


def test_a_hole_is_real_only_where_retention_deleted_the_start_of_the_log():
    guard = guard_just_assigned()
    assert guard.admit(TP, expected=0, offset=1207, now=1) is Admit.SEEK
    assert guard.log_starts_at(TP, 0, start=1200) == 1200, "the state now needs the log's first message"
    assert guard.admit(TP, expected=1200, offset=1207, now=1.1) is Admit.SKIP
    assert guard.admit(TP, expected=1200, offset=1200, now=1.2) is Admit.NEXT
    assert guard.holes == 1 and guard.pending == {}
    assert guard.log_starts_at(TP, 1300, start=None) == 1300, "an unknown log start proves nothing"


def test_long_after_the_assignment_a_jump_is_read_again_too():
    guard = guard_just_assigned(now=0)
    assert guard.admit(TP, expected=100, offset=102, now=61) is Admit.SEEK
    assert guard.holes == 0 and guard.seeks == 1


def test_a_new_assignment_clears_a_pending_rewind():
    guard = guard_just_assigned()
    assert guard.admit(TP, expected=5, offset=9, now=1) is Admit.SEEK
    guard.assigned(TP, now=2)
    assert guard.due(now=10) == []


def test_each_stage_is_given_its_own_due_seeks_and_only_those():
    """One guard serves both stages, each asking for its topic's seeks in turn: stage 1 asking first must
    not use up stage 2's retry (its partition then skipped every message for good)."""
    guard = guard_just_assigned()
    keyed = ("aml.work.accounts", 1)
    guard.assigned(keyed, 0)
    assert guard.admit(TP, expected=3, offset=9, now=1) is Admit.SEEK
    assert guard.admit(keyed, expected=0, offset=7, now=1) is Admit.SEEK
    for now in (3.5, 6.0):
        assert guard.due(now, "aml.work") == [(TP, 3)]
        assert guard.due(now, "aml.work.accounts") == [(keyed, 0)], "stage 2's seek is issued again too"
    assert guard.admit(keyed, expected=0, offset=0, now=6.1) is Admit.NEXT
    assert guard.due(9.0, "aml.work.accounts") == [] and guard.due(9.0, "aml.work") == [(TP, 3)]
