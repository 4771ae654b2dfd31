"""The long-running-operation poll schedule as arithmetic: its lateness bound, its poll budget, Retry-After."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from provision.core.polling import MAX_DELAY, POLLS_FOR_6_MINUTES, RATIO, lateness, poll_delay, poll_times


def just_after_each_poll(low: float, high: float) -> list[float]:
    """Operation durations ending a hair after a scheduled poll: where the schedule is latest."""
    return [t + 1e-6 for t in poll_times(high) if low <= t < high] + [low, high]


def test_worst_lateness_is_at_most_two_percent_from_one_second_to_thirty_minutes() -> None:
    durations = just_after_each_poll(1.0, 1800.0)
    assert len(durations) > 350
    worst = max(lateness(d) for d in durations)
    assert worst <= 0.02 + 1e-6
    assert worst > 0.019  # the bound is tight: a looser schedule would fail the line above, not pass this one


def test_shorter_operations_are_noticed_within_a_fifth_of_a_second() -> None:
    for duration in (0.05, 0.3, 0.55, 0.99):
        assert poll_times(duration)[-1] - duration <= 0.2 + 1e-9


def test_a_six_minute_operation_costs_the_stated_budget_close_to_the_least_possible() -> None:
    polls = len(poll_times(360.0))
    assert polls == POLLS_FOR_6_MINUTES
    # no schedule with gaps of at most 2% of the time waited can reach 6 min from 1 s in fewer polls
    assert polls - math.log(360.0) / math.log(RATIO) < 10
    assert polls / 360.0 < 25 * 0.05  # under 5% of ARM's read refill rate (25 per second per subscription)


def test_gaps_grow_with_the_wait_from_one_second_and_stop_at_the_cap() -> None:
    times = [t for t in poll_times(3600.0) if t >= 1.0]
    gaps = [b - a for a, b in pairwise(times)]
    assert all(b >= a - 1e-9 for a, b in pairwise(gaps))
    assert max(gaps) == pytest.approx(MAX_DELAY)
    assert poll_delay(3600.0) == MAX_DELAY


def test_the_server_retry_after_wins_over_the_schedule_and_its_bounds() -> None:
    assert poll_delay(300.0, retry_after=15.0) == 15.0
    assert poll_delay(0.0, retry_after=60.0) == 60.0  # above MAX_DELAY: the server knows best
    assert poll_delay(300.0, retry_after=0.0) == 0.0
    assert poll_delay(300.0) == pytest.approx(6.0)


def test_a_caller_may_ask_for_a_sparser_schedule_with_a_floor() -> None:
    # the role-assignment retry after PrincipalNotFound: each try is a write
    assert poll_delay(0.0, ratio=1.1, minimum=1.0) == 1.0
    assert poll_delay(5.0, ratio=1.1, minimum=1.0) == 1.0
    assert poll_delay(50.0, ratio=1.1, minimum=1.0) == pytest.approx(5.0)
