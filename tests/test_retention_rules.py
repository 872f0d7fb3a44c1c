"""Tests for domain.retention: segments, rhythm, send windows, caps, priority, holdout,
birthdays and win-back timing.

Expected values are worked out by hand. Europe/Berlin is UTC+1 (CET) in winter and UTC+2
(CEST) in summer, switching on 2026-03-29 at 01:00 UTC (02:00 CET -> 03:00 CEST) and on
2026-10-25 at 01:00 UTC (03:00 CEST -> 02:00 CET). Europe/Moscow is UTC+3 all year.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.retention import (
    KIND_CLASS,
    MARKETING_PRIORITY,
    Caps,
    MessageClass,
    QuietHours,
    Segment,
    birthday_in_year,
    cap_allows,
    in_holdout,
    is_birthday_today,
    personal_rhythm_days,
    pick_by_priority,
    predicted_next_visit,
    segment_of,
    send_window_start,
    winback_due,
)

BER = ZoneInfo("Europe/Berlin")
MSK = ZoneInfo("Europe/Moscow")
HOURS = QuietHours()
T = MessageClass.transactional
M = MessageClass.marketing
S = MessageClass.staff


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ber(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BER)


def visits(start: date, *gaps: int) -> list[date]:
    """Visit dates starting at ``start`` with the given gaps (in days) between them."""
    days = [start]
    for gap in gaps:
        days.append(days[-1] + timedelta(days=gap))
    return days


# --- segments -----------------------------------------------------------------------------

TODAY = date(2026, 6, 15)


@pytest.mark.parametrize(
    ("last", "days", "expected"),
    [
        (date(2026, 6, 15), 0, Segment.hot),
        (date(2026, 5, 16), 30, Segment.hot),
        (date(2026, 5, 15), 31, Segment.warm),
        (date(2026, 2, 15), 120, Segment.warm),
        (date(2026, 2, 14), 121, Segment.sleeping),
        (date(2024, 6, 15), 730, Segment.sleeping),
    ],
)
def test_segment_boundaries(last: date, days: int, expected: Segment) -> None:
    assert (TODAY - last).days == days  # the hand-computed dates are what they claim
    assert segment_of(last, TODAY) is expected


def test_segment_prospect_and_custom_thresholds() -> None:
    assert segment_of(None, TODAY) is Segment.prospect
    assert segment_of(date(2026, 6, 5), TODAY, hot_days=10) is Segment.hot  # 10 days
    assert segment_of(date(2026, 6, 4), TODAY, hot_days=10) is Segment.warm  # 11 days
    assert segment_of(date(2026, 5, 16), TODAY, hot_days=10, warm_days=30) is Segment.warm
    assert segment_of(date(2026, 5, 15), TODAY, hot_days=10, warm_days=30) is Segment.sleeping


def test_segment_values_are_plain_strings() -> None:
    assert [s.value for s in Segment] == ["hot", "warm", "sleeping", "prospect"]
    assert Segment.sleeping == "sleeping"


# --- rhythm -------------------------------------------------------------------------------

JAN1 = date(2026, 1, 1)


def test_rhythm_needs_three_visits() -> None:
    assert personal_rhythm_days([], 35) == 35
    assert personal_rhythm_days([JAN1], 35) == 35
    assert personal_rhythm_days([JAN1, date(2026, 2, 1)], 35) == 35


def test_rhythm_three_visits_even_median_rounds_half_up() -> None:
    # gaps 28 (Jan 1 -> Jan 29) and 35 (Jan 29 -> Mar 5): median 31.5 -> 32
    dates = [JAN1, date(2026, 1, 29), date(2026, 3, 5)]
    assert personal_rhythm_days(dates, 35) == 32
    # gaps 1 and 2: 1.5 -> 2
    assert personal_rhythm_days(visits(JAN1, 1, 2), 35) == 2
    # gaps 10 and 20: exactly 15
    assert personal_rhythm_days(visits(JAN1, 10, 20), 35) == 15


def test_rhythm_odd_median() -> None:
    # gaps 20 (Jan 1 -> Jan 21), 40 (-> Mar 2), 30 (-> Apr 1): median 30
    dates = [JAN1, date(2026, 1, 21), date(2026, 3, 2), date(2026, 4, 1)]
    assert personal_rhythm_days(dates, 35) == 30


def test_rhythm_only_last_five_gaps_count() -> None:
    # all 7 gaps: median 40; last 5 (10, 20, 30, 40, 50): median 30
    dates = visits(JAN1, 100, 100, 10, 20, 30, 40, 50)
    assert personal_rhythm_days(dates, 35) == 30
    # last 4 gaps (20, 30, 40, 50) with last_gaps=4: (30 + 40) / 2 = 35
    assert personal_rhythm_days(dates, 99, last_gaps=4) == 35
    # 5 visits = 4 gaps 10, 21, 30, 40: (21 + 30) / 2 = 25.5 -> 26
    assert personal_rhythm_days(visits(JAN1, 40, 10, 30, 21), 35) == 26


def test_rhythm_unsorted_input() -> None:
    dates = [date(2026, 3, 5), JAN1, date(2026, 1, 29)]
    assert personal_rhythm_days(dates, 35) == 32
    shuffled = visits(JAN1, 100, 100, 10, 20, 30, 40, 50)[::-1]
    assert personal_rhythm_days(shuffled, 35) == 30


def test_rhythm_same_day_duplicates_count_once() -> None:
    # two distinct days only -> default
    assert personal_rhythm_days([JAN1, JAN1, date(2026, 2, 1)], 35) == 35
    # duplicates do not create zero gaps: gaps 28, 35 -> 32
    dates = [JAN1, date(2026, 1, 29), date(2026, 1, 29), date(2026, 3, 5), date(2026, 3, 5)]
    assert personal_rhythm_days(dates, 35) == 32


def test_rhythm_never_below_one_and_custom_min_visits() -> None:
    assert personal_rhythm_days([], 0) == 1
    assert personal_rhythm_days([JAN1, date(2026, 1, 2)], -5) == 1
    assert personal_rhythm_days([JAN1, date(2026, 1, 2), date(2026, 1, 3)], 35) == 1
    # with min_visits=2 two visits suffice: gap 31
    assert personal_rhythm_days([JAN1, date(2026, 2, 1)], 35, min_visits=2) == 31
    with pytest.raises(ValueError):
        personal_rhythm_days([JAN1], 35, last_gaps=0)


def test_predicted_next_visit() -> None:
    assert predicted_next_visit(date(2026, 3, 5), 32) == date(2026, 4, 6)
    assert predicted_next_visit(date(2026, 12, 20), 14) == date(2027, 1, 3)


# --- message kinds ------------------------------------------------------------------------


def test_kind_classes() -> None:
    assert dict(KIND_CLASS) == {
        "booking_confirmation": T,
        "reminder": T,
        "visit_cancelled": T,
        "feedback_request": T,
        "next_visit_offer": T,
        "referral_reward": T,
        "care_tip": M,
        "return_nudge": M,
        "warm_offer": M,
        "winback": M,
        "birthday": M,
        "broadcast": M,
        "visit_check": S,
        "staff_day_plan": S,
        "complaint_alert": S,
        "digest": S,
        "broadcast_report": S,
    }
    assert {k for k, c in KIND_CLASS.items() if c is M} == set(MARKETING_PRIORITY)
    with pytest.raises(TypeError):
        KIND_CLASS["reminder"] = M  # type: ignore[index]


def test_marketing_priority_order() -> None:
    assert MARKETING_PRIORITY == (
        "birthday",
        "winback",
        "warm_offer",
        "return_nudge",
        "care_tip",
        "broadcast",
    )


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (["care_tip", "birthday", "broadcast"], "birthday"),
        (["warm_offer", "winback"], "winback"),
        (["return_nudge", "warm_offer"], "warm_offer"),
        (["care_tip", "return_nudge"], "return_nudge"),
        (["broadcast", "care_tip"], "care_tip"),
        (["broadcast"], "broadcast"),
        (["broadcast", "broadcast"], "broadcast"),
        ([], None),
        (["reminder", "digest", "no_such_kind"], None),
        (["reminder", "care_tip"], "care_tip"),
    ],
)
def test_pick_by_priority(kinds: list[str], expected: str | None) -> None:
    assert pick_by_priority(kinds) == expected


def test_pick_by_priority_accepts_any_iterable() -> None:
    assert pick_by_priority(k for k in ("broadcast", "winback")) == "winback"
    assert pick_by_priority({"care_tip", "birthday"}) == "birthday"


# --- send windows -------------------------------------------------------------------------
# Summer day 2026-06-15 in Berlin: CEST, local = UTC + 2.


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (ber(2026, 6, 15, 21, 59), utc(2026, 6, 15, 19, 59)),  # allowed: itself
        (ber(2026, 6, 15, 22, 0), utc(2026, 6, 16, 6, 0)),  # quiet: next day 08:00 local
        (ber(2026, 6, 15, 23, 30), utc(2026, 6, 16, 6, 0)),
        (ber(2026, 6, 16, 0, 30), utc(2026, 6, 16, 6, 0)),  # after local midnight: same day
        (ber(2026, 6, 16, 7, 59), utc(2026, 6, 16, 6, 0)),
        (ber(2026, 6, 16, 8, 0), utc(2026, 6, 16, 6, 0)),  # window opens: itself
        (ber(2026, 6, 16, 9, 0), utc(2026, 6, 16, 7, 0)),  # transactional before 10: fine
        (ber(2026, 6, 30, 22, 30), utc(2026, 7, 1, 6, 0)),  # month rollover
    ],
)
def test_transactional_window(due: datetime, expected: datetime) -> None:
    assert send_window_start(due, T, BER, HOURS) == expected


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (ber(2026, 6, 15, 9, 59), utc(2026, 6, 15, 8, 0)),  # waits for 10:00 local
        (ber(2026, 6, 15, 10, 0), utc(2026, 6, 15, 8, 0)),  # itself
        (ber(2026, 6, 15, 19, 59), utc(2026, 6, 15, 17, 59)),  # itself
        (ber(2026, 6, 15, 20, 0), utc(2026, 6, 16, 8, 0)),  # next day 10:00 local
        (ber(2026, 6, 15, 21, 30), utc(2026, 6, 16, 8, 0)),
        (ber(2026, 6, 15, 23, 59), utc(2026, 6, 16, 8, 0)),
        (ber(2026, 6, 16, 3, 0), utc(2026, 6, 16, 8, 0)),  # quiet hours: same day 10:00
        (ber(2026, 6, 16, 8, 0), utc(2026, 6, 16, 8, 0)),  # transactional-only hour
        (ber(2026, 12, 31, 23, 0), utc(2027, 1, 1, 9, 0)),  # year rollover, CET (+1)
    ],
)
def test_marketing_window(due: datetime, expected: datetime) -> None:
    assert send_window_start(due, M, BER, HOURS) == expected


def test_staff_messages_are_never_held() -> None:
    for due in (ber(2026, 6, 15, 3, 0), ber(2026, 6, 15, 22, 0), ber(2026, 6, 15, 9, 0)):
        assert send_window_start(due, S, BER, HOURS) == due
    assert send_window_start(ber(2026, 6, 15, 3, 0), S, BER, HOURS) == utc(2026, 6, 15, 1, 0)


def test_result_is_utc_whatever_the_input_zone() -> None:
    result = send_window_start(ber(2026, 6, 15, 12, 0), M, BER, HOURS)
    assert result == utc(2026, 6, 15, 10, 0)
    assert result.tzinfo is UTC
    held = send_window_start(ber(2026, 6, 15, 23, 0), T, BER, HOURS)
    assert held.tzinfo is UTC
    staff = send_window_start(ber(2026, 6, 15, 23, 0), S, BER, HOURS)
    assert staff.tzinfo is UTC
    # local logic follows the tz argument, not the due's zone: 07:30 UTC is 10:30 in Moscow
    assert send_window_start(utc(2026, 6, 15, 7, 30), M, MSK, HOURS) == utc(2026, 6, 15, 7, 30)
    # 17:00 UTC is 20:00 in Moscow: next day 10:00 MSK = 07:00 UTC
    assert send_window_start(utc(2026, 6, 15, 17, 0), M, MSK, HOURS) == utc(2026, 6, 16, 7, 0)


def test_naive_due_is_rejected() -> None:
    with pytest.raises(ValueError):
        send_window_start(datetime(2026, 6, 15, 12, 0), T, BER, HOURS)


@pytest.mark.parametrize(
    ("due", "cls", "expected"),
    [
        # 22:30 CET on the eve -> 08:00 CEST = 06:00 UTC (not 07:00: the offset changed)
        (utc(2026, 3, 28, 21, 30), T, utc(2026, 3, 29, 6, 0)),
        # 20:00 CET on the eve -> 10:00 CEST = 08:00 UTC
        (utc(2026, 3, 28, 19, 0), M, utc(2026, 3, 29, 8, 0)),
        # 01:30 CET, before the jump -> 08:00 CEST the same day
        (utc(2026, 3, 29, 0, 30), T, utc(2026, 3, 29, 6, 0)),
        # 03:30 CEST, after the jump -> 08:00 CEST
        (utc(2026, 3, 29, 1, 30), T, utc(2026, 3, 29, 6, 0)),
        (utc(2026, 3, 29, 1, 30), M, utc(2026, 3, 29, 8, 0)),
        # 07:59 / 08:00 CEST
        (utc(2026, 3, 29, 5, 59), T, utc(2026, 3, 29, 6, 0)),
        (utc(2026, 3, 29, 6, 0), T, utc(2026, 3, 29, 6, 0)),
        # 19:59 CEST allowed, 20:00 CEST -> 10:00 CEST next day
        (utc(2026, 3, 29, 17, 59), M, utc(2026, 3, 29, 17, 59)),
        (utc(2026, 3, 29, 18, 0), M, utc(2026, 3, 30, 8, 0)),
        # 21:59 / 22:00 CEST
        (utc(2026, 3, 29, 19, 59), T, utc(2026, 3, 29, 19, 59)),
        (utc(2026, 3, 29, 20, 0), T, utc(2026, 3, 30, 6, 0)),
    ],
)
def test_spring_forward_berlin(due: datetime, cls: MessageClass, expected: datetime) -> None:
    assert send_window_start(due, cls, BER, HOURS) == expected


@pytest.mark.parametrize(
    ("due", "cls", "expected"),
    [
        # 22:00 CEST on the eve -> 08:00 CET = 07:00 UTC (not 06:00)
        (utc(2026, 10, 24, 20, 0), T, utc(2026, 10, 25, 7, 0)),
        (utc(2026, 10, 24, 18, 0), M, utc(2026, 10, 25, 9, 0)),  # 20:00 CEST -> 10:00 CET
        # 02:30 CEST (first pass) and 02:30 CET (second pass) -> 10:00 CET
        (utc(2026, 10, 25, 0, 30), M, utc(2026, 10, 25, 9, 0)),
        (utc(2026, 10, 25, 1, 30), M, utc(2026, 10, 25, 9, 0)),
        (utc(2026, 10, 25, 1, 30), T, utc(2026, 10, 25, 7, 0)),
        # 07:59 / 08:00 CET, 09:59 / 10:00 CET
        (utc(2026, 10, 25, 6, 59), T, utc(2026, 10, 25, 7, 0)),
        (utc(2026, 10, 25, 7, 0), T, utc(2026, 10, 25, 7, 0)),
        (utc(2026, 10, 25, 8, 59), M, utc(2026, 10, 25, 9, 0)),
        (utc(2026, 10, 25, 9, 0), M, utc(2026, 10, 25, 9, 0)),
        # 19:59 CET allowed, 20:00 CET -> 10:00 CET next day
        (utc(2026, 10, 25, 18, 59), M, utc(2026, 10, 25, 18, 59)),
        (utc(2026, 10, 25, 19, 0), M, utc(2026, 10, 26, 9, 0)),
        # 21:59 CET allowed, 22:00 CET -> 08:00 CET next day
        (utc(2026, 10, 25, 20, 59), T, utc(2026, 10, 25, 20, 59)),
        (utc(2026, 10, 25, 21, 0), T, utc(2026, 10, 26, 7, 0)),
    ],
)
def test_fall_back_berlin(due: datetime, cls: MessageClass, expected: datetime) -> None:
    assert send_window_start(due, cls, BER, HOURS) == expected


def test_window_opening_inside_a_dst_gap_or_overlap() -> None:
    hours = QuietHours(quiet_from=time(23, 0), quiet_to=time(2, 30))
    # 02:30 does not exist on 2026-03-29: the window opens at the jump, 03:00 CEST = 01:00 UTC
    assert send_window_start(utc(2026, 3, 29, 0, 0), T, BER, hours) == utc(2026, 3, 29, 1, 0)
    # 02:30 happens twice on 2026-10-25: the first one, 02:30 CEST = 00:30 UTC
    assert send_window_start(utc(2026, 10, 24, 23, 0), T, BER, hours) == utc(2026, 10, 25, 0, 30)


def test_custom_hours_and_impossible_window() -> None:
    hours = QuietHours(quiet_from=time(21, 0), quiet_to=time(9, 0), marketing_from=time(8, 0))
    # marketing window opens at 08:00 but the quiet hours last until 09:00: 09:00 wins
    assert send_window_start(ber(2026, 6, 15, 7, 0), M, BER, hours) == utc(2026, 6, 15, 7, 0)
    # marketing window entirely inside quiet hours: no window at all
    never = QuietHours(marketing_from=time(23, 0), marketing_to=time(23, 30))
    with pytest.raises(ValueError):
        send_window_start(ber(2026, 6, 15, 12, 0), M, BER, never)
    assert send_window_start(ber(2026, 6, 15, 12, 0), T, BER, never) == utc(2026, 6, 15, 10, 0)


# --- caps ---------------------------------------------------------------------------------

AT = utc(2026, 6, 15, 12, 0)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def test_cap_seven_days() -> None:
    caps = Caps()
    assert cap_allows([], AT, caps)
    assert cap_allows([AT - 7 * DAY], AT, caps)  # exactly 7 days ago: out of the window
    assert not cap_allows([AT - 7 * DAY + SECOND], AT, caps)
    assert not cap_allows([AT - DAY], AT, caps)
    assert not cap_allows([AT], AT, caps)  # at the same instant
    assert cap_allows([AT + SECOND], AT, caps)  # after `at`: not in (at - 7d, at]


def test_cap_thirty_days() -> None:
    caps = Caps()
    four = [AT - 29 * DAY, AT - 22 * DAY, AT - 15 * DAY, AT - 8 * DAY]
    assert not cap_allows(four, AT, caps)
    three_and_boundary = [AT - 30 * DAY, AT - 22 * DAY, AT - 15 * DAY, AT - 8 * DAY]
    assert cap_allows(three_and_boundary, AT, caps)
    just_inside = [AT - 30 * DAY + SECOND, AT - 22 * DAY, AT - 15 * DAY, AT - 8 * DAY]
    assert not cap_allows(just_inside, AT, caps)
    assert cap_allows([AT - 40 * DAY] * 10, AT, caps)


def test_cap_custom_limits_and_zones() -> None:
    caps = Caps(per_7_days=2, per_30_days=3)
    assert cap_allows([AT - DAY], AT, caps)
    assert not cap_allows([AT - DAY, AT - 2 * DAY], AT, caps)
    assert not cap_allows([AT - 8 * DAY, AT - 9 * DAY, AT - 10 * DAY], AT, caps)
    assert not cap_allows([], AT, Caps(per_7_days=0))
    # 14:00 CEST is 12:00 UTC: exactly 7 days before AT, hence allowed
    assert cap_allows([ber(2026, 6, 8, 14, 0)], AT, Caps())
    assert not cap_allows([ber(2026, 6, 8, 14, 1)], AT, Caps())
    with pytest.raises(ValueError):
        cap_allows([], datetime(2026, 6, 15, 12, 0), Caps())


# --- holdout ------------------------------------------------------------------------------
# Golden values from `printf 'regulars-holdout-v1:%s' KEY | sha256sum`: the first 16 hex digits
# over 2**64 are 0.0976 for 17, 0.0125 for 19, 0.0677 for 57 (the only ones < 0.1 in 0..60),
# 0.0227 for "carol", 0.0798 for "dave", 0.351 for "alice", 0.928 for "bob".


def test_holdout_golden_values() -> None:
    assert [k for k in range(61) if in_holdout(k)] == [17, 19, 57]
    assert in_holdout("carol")
    assert in_holdout("dave")
    assert not in_holdout("alice")
    assert not in_holdout("bob")
    assert in_holdout(17) == in_holdout("17")


def test_holdout_is_stable_across_calls() -> None:
    first = [in_holdout(k) for k in range(1000)]
    assert [in_holdout(k) for k in range(1000)] == first
    assert [in_holdout(str(k)) for k in range(1000)] == first


def test_holdout_share_is_roughly_ten_percent() -> None:
    held = sum(in_holdout(k) for k in range(10_000))
    assert 800 <= held <= 1200


def test_holdout_edge_shares_and_salt() -> None:
    assert not any(in_holdout(k, 0.0) for k in range(10_000))
    assert all(in_holdout(k, 1.0) for k in range(10_000))
    small = {k for k in range(10_000) if in_holdout(k, 0.05)}
    ten = {k for k in range(10_000) if in_holdout(k)}
    assert small < ten  # a bigger share only adds clients
    other = {k for k in range(10_000) if in_holdout(k, salt="another-experiment")}
    assert other != ten
    for share in (-0.01, 1.01):
        with pytest.raises(ValueError):
            in_holdout(1, share)


# --- birthdays ----------------------------------------------------------------------------


def test_birthday_in_year() -> None:
    assert birthday_in_year(date(1990, 6, 15), 2026) == date(2026, 6, 15)
    assert birthday_in_year(date(2000, 2, 29), 2027) == date(2027, 2, 28)
    assert birthday_in_year(date(2000, 2, 29), 2028) == date(2028, 2, 29)
    assert birthday_in_year(date(2000, 2, 29), 2100) == date(2100, 2, 28)  # not a leap year
    assert birthday_in_year(date(2001, 2, 28), 2028) == date(2028, 2, 28)


def test_is_birthday_today() -> None:
    assert is_birthday_today(date(1990, 6, 15), date(2026, 6, 15))
    assert not is_birthday_today(date(1990, 6, 15), date(2026, 6, 14))
    assert not is_birthday_today(None, date(2026, 6, 15))
    leapling = date(2000, 2, 29)
    assert is_birthday_today(leapling, date(2027, 2, 28))
    assert not is_birthday_today(leapling, date(2027, 3, 1))
    assert not is_birthday_today(leapling, date(2028, 2, 28))
    assert is_birthday_today(leapling, date(2028, 2, 29))


# --- win-back -----------------------------------------------------------------------------

LAST = date(2026, 1, 1)


def test_winback_only_for_sleeping_clients() -> None:
    # 2026-05-01 is 120 days after 2026-01-01 (31 + 28 + 31 + 30): still warm
    assert not winback_due(last_completed_local=LAST, today=date(2026, 5, 1), previous_winbacks=[])
    assert winback_due(last_completed_local=LAST, today=date(2026, 5, 2), previous_winbacks=[])
    assert not winback_due(last_completed_local=None, today=date(2026, 5, 2), previous_winbacks=[])


def test_winback_sixty_days_apart() -> None:
    first = [date(2026, 5, 2)]
    # 2026-06-30 is 59 days after 2026-05-02, 2026-07-01 is 60
    assert not winback_due(
        last_completed_local=LAST, today=date(2026, 6, 30), previous_winbacks=first
    )
    assert winback_due(last_completed_local=LAST, today=date(2026, 7, 1), previous_winbacks=first)


def test_winback_at_most_two_per_dormancy() -> None:
    two = [date(2026, 5, 2), date(2026, 7, 1)]
    assert not winback_due(last_completed_local=LAST, today=date(2026, 9, 1), previous_winbacks=two)
    assert not winback_due(last_completed_local=LAST, today=date(2027, 6, 1), previous_winbacks=two)
    assert not winback_due(
        last_completed_local=LAST,
        today=date(2026, 7, 1),
        previous_winbacks=[date(2026, 5, 2)],
        max_per_dormancy=1,
    )


def test_winback_new_visit_resets_the_count() -> None:
    two = [date(2026, 5, 2), date(2026, 7, 1)]
    back = date(2026, 8, 1)
    # 2026-11-29 is 120 days after 2026-08-01 (31 + 30 + 31 + 28), 2026-11-30 is 121
    assert not winback_due(
        last_completed_local=back, today=date(2026, 11, 29), previous_winbacks=two
    )
    assert winback_due(last_completed_local=back, today=date(2026, 11, 30), previous_winbacks=two)
    # an earlier dormancy's win-backs (before the last visit) never count
    old = [date(2025, 3, 1), date(2025, 5, 1)]
    assert winback_due(last_completed_local=LAST, today=date(2026, 5, 2), previous_winbacks=old)


def test_winback_same_day_as_visit_is_not_after_it() -> None:
    sent = [date(2026, 1, 1), date(2026, 5, 2)]  # unordered input is fine too
    assert winback_due(
        last_completed_local=LAST, today=date(2026, 7, 1), previous_winbacks=sent[::-1]
    )
    assert not winback_due(
        last_completed_local=LAST, today=date(2026, 6, 30), previous_winbacks=sent
    )


def test_winback_custom_thresholds() -> None:
    assert winback_due(
        last_completed_local=LAST,
        today=date(2026, 3, 2),  # 60 days
        previous_winbacks=[date(2026, 3, 1)],
        sleeping_after_days=59,
        gap_days=1,
    )
    assert not winback_due(
        last_completed_local=LAST,
        today=date(2026, 3, 2),
        previous_winbacks=[date(2026, 3, 1)],
        sleeping_after_days=59,
        gap_days=2,
    )
