"""Tests for domain.slots: free slots, bookable days and "like usual" suggestions.

Expected instants are worked out by hand: Europe/Moscow is UTC+3 all year; Europe/Berlin is
UTC+1 (CET) in winter and UTC+2 (CEST) in summer, switching on 2026-03-29 at 01:00 UTC
(02:00 CET -> 03:00 CEST) and on 2026-10-25 at 01:00 UTC (03:00 CEST -> 02:00 CET).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.slots import (
    Interval,
    SlotRules,
    WorkingHours,
    bookable_days,
    first_bookable_day,
    free_slots,
    nearest_free,
    suggest_around_day,
    suggest_on_different_days,
    usual_time,
    working_intervals,
)

MSK = ZoneInfo("Europe/Moscow")
BER = ZoneInfo("Europe/Berlin")

MONDAY = date(2026, 3, 2)  # a Monday
SUNDAY_BEFORE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # Sunday 12:00 in Moscow
SPRING_FORWARD = date(2026, 3, 29)  # Sunday
FALL_BACK = date(2026, 10, 25)  # Sunday
EVERY_15 = SlotRules()
HOURLY = SlotRules(step=timedelta(minutes=60))
HALF_HOURLY = SlotRules(step=timedelta(minutes=30))


def utc(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def hours(weekday: int, *spans: tuple[str, str]) -> list[WorkingHours]:
    return [WorkingHours(weekday, time.fromisoformat(a), time.fromisoformat(b)) for a, b in spans]


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


MON_MORNING = hours(0, ("10:00", "13:00"))  # 07:00-10:00 UTC in Moscow
MON_TO_SAT = [h for wd in range(6) for h in hours(wd, ("10:00", "13:00"))]


# ------------------------------------------------------------------------ value types


def test_interval_overlap_is_half_open() -> None:
    a = Interval(utc(3, 2, 7), utc(3, 2, 8))
    assert a.overlaps(Interval(utc(3, 2, 7, 30), utc(3, 2, 9)))
    assert a.overlaps(Interval(utc(3, 2, 6), utc(3, 2, 10)))
    assert not a.overlaps(Interval(utc(3, 2, 8), utc(3, 2, 9)))
    assert not Interval(utc(3, 2, 8), utc(3, 2, 9)).overlaps(a)


def test_interval_rejects_empty_or_naive_spans() -> None:
    with pytest.raises(ValueError):
        Interval(utc(3, 2, 8), utc(3, 2, 8))
    with pytest.raises(ValueError):
        Interval(datetime(2026, 3, 2, 7), datetime(2026, 3, 2, 8))


def test_working_hours_reject_closing_before_opening_and_bad_weekday() -> None:
    with pytest.raises(ValueError):
        WorkingHours(0, time(13), time(10))
    with pytest.raises(ValueError):
        WorkingHours(7, time(10), time(13))


# ---------------------------------------------------------------- working intervals


def test_moscow_working_hours_are_three_hours_ahead_of_utc_all_year() -> None:
    assert working_intervals(MONDAY, hours(0, ("10:00", "19:00")), MSK) == [
        Interval(utc(3, 2, 7), utc(3, 2, 16))
    ]
    july_monday = date(2026, 7, 6)
    assert working_intervals(july_monday, hours(0, ("10:00", "19:00")), MSK) == [
        Interval(utc(7, 6, 7), utc(7, 6, 16))
    ]


def test_working_intervals_asked_again_are_the_same_whatever_was_done_with_the_first() -> None:
    first = working_intervals(MONDAY, MON_MORNING, MSK)
    first.clear()  # the caller's own list: the next answer is not changed by it
    assert working_intervals(MONDAY, list(MON_MORNING), MSK) == [
        Interval(utc(3, 2, 7), utc(3, 2, 10))
    ]


def test_day_without_matching_weekday_has_no_working_intervals() -> None:
    assert working_intervals(MONDAY + timedelta(days=1), MON_MORNING, MSK) == []


def test_berlin_working_hours_follow_the_offset_on_both_sides_of_spring_forward() -> None:
    saturday = hours(5, ("09:00", "12:00"))
    sunday = hours(6, ("09:00", "12:00"))
    assert working_intervals(date(2026, 3, 28), saturday, BER) == [
        Interval(utc(3, 28, 8), utc(3, 28, 11))
    ]
    assert working_intervals(SPRING_FORWARD, sunday, BER) == [
        Interval(utc(3, 29, 7), utc(3, 29, 10))
    ]


def test_spring_forward_day_spanning_the_gap_is_one_hour_shorter() -> None:
    # 00:00 CET = 23:00 UTC the day before; 06:00 CEST = 04:00 UTC: five real hours.
    assert working_intervals(SPRING_FORWARD, hours(6, ("00:00", "06:00")), BER) == [
        Interval(utc(3, 28, 23), utc(3, 29, 4))
    ]


def test_nonexistent_local_time_maps_forward_to_the_end_of_the_gap() -> None:
    # 02:30 does not exist on 2026-03-29: the clock jumps 02:00 CET -> 03:00 CEST (01:00 UTC).
    assert working_intervals(SPRING_FORWARD, hours(6, ("02:30", "04:00")), BER) == [
        Interval(utc(3, 29, 1), utc(3, 29, 2))
    ]
    # Closing inside the gap: work ends when the clock jumps.
    assert working_intervals(SPRING_FORWARD, hours(6, ("01:00", "02:30")), BER) == [
        Interval(utc(3, 29, 0), utc(3, 29, 1))
    ]


def test_shift_entirely_inside_the_dst_gap_yields_no_working_time() -> None:
    assert working_intervals(SPRING_FORWARD, hours(6, ("02:00", "02:45")), BER) == []


def test_ambiguous_fall_back_time_uses_its_first_occurrence() -> None:
    # 02:30 happens twice on 2026-10-25; the first is 02:30 CEST = 00:30 UTC.
    # 04:00 CET = 03:00 UTC, so the shift lasts 2.5 real hours.
    assert working_intervals(FALL_BACK, hours(6, ("02:30", "04:00")), BER) == [
        Interval(utc(10, 25, 0, 30), utc(10, 25, 3))
    ]


# ------------------------------------------------------------------------ free slots


def test_moscow_slots_start_every_step_from_opening_until_the_service_still_fits() -> None:
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=[],
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=EVERY_15,
    )
    assert slots == [
        utc(3, 2, 7, 0),
        utc(3, 2, 7, 15),
        utc(3, 2, 7, 30),
        utc(3, 2, 7, 45),
        utc(3, 2, 8, 0),
        utc(3, 2, 8, 15),
        utc(3, 2, 8, 30),
        utc(3, 2, 8, 45),
        utc(3, 2, 9, 0),
    ]
    assert all(s.tzinfo is UTC for s in slots)


def test_spring_forward_day_has_five_hourly_slots_in_five_real_hours() -> None:
    # Local 00:00-06:00 on the spring-forward Sunday: 00:00, 01:00, 03:00, 04:00, 05:00 local.
    slots = free_slots(
        day=SPRING_FORWARD,
        hours=hours(6, ("00:00", "06:00")),
        busy=[],
        duration=minutes(60),
        tz=BER,
        now=utc(3, 28, 12),
        rules=HOURLY,
    )
    assert slots == [utc(3, 28, 23), utc(3, 29, 0), utc(3, 29, 1), utc(3, 29, 2), utc(3, 29, 3)]


def test_fall_back_day_has_seven_hourly_slots_in_seven_real_hours() -> None:
    # Local 00:00 CEST (22:00 UTC) to 06:00 CET (05:00 UTC): 02:00 local happens twice.
    slots = free_slots(
        day=FALL_BACK,
        hours=hours(6, ("00:00", "06:00")),
        busy=[],
        duration=minutes(60),
        tz=BER,
        now=utc(10, 24, 12),
        rules=HOURLY,
    )
    assert slots == [
        utc(10, 24, 22),
        utc(10, 24, 23),
        utc(10, 25, 0),
        utc(10, 25, 1),
        utc(10, 25, 2),
        utc(10, 25, 3),
        utc(10, 25, 4),
    ]


def test_fall_back_grid_steps_in_real_time_through_the_repeated_hour() -> None:
    # 02:30 (first, CEST) to 04:00 CET is 2.5 real hours: five half-hour slots, not three.
    slots = free_slots(
        day=FALL_BACK,
        hours=hours(6, ("02:30", "04:00")),
        busy=[],
        duration=minutes(30),
        tz=BER,
        now=utc(10, 24, 12),
        rules=HALF_HOURLY,
    )
    assert slots == [
        utc(10, 25, 0, 30),
        utc(10, 25, 1, 0),
        utc(10, 25, 1, 30),
        utc(10, 25, 2, 0),
        utc(10, 25, 2, 30),
    ]


def test_time_off_blocks_only_the_slots_it_overlaps() -> None:
    time_off = Interval(utc(3, 2, 8), utc(3, 2, 9))  # 11:00-12:00 Moscow
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=[time_off],
        duration=minutes(30),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=HALF_HOURLY,
    )
    assert slots == [utc(3, 2, 7, 0), utc(3, 2, 7, 30), utc(3, 2, 9, 0), utc(3, 2, 9, 30)]


def test_time_off_starting_the_day_before_blocks_the_morning() -> None:
    vacation = Interval(utc(2, 27, 0), utc(3, 2, 8, 30))  # until 11:30 Moscow on Monday
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=[vacation],
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=HALF_HOURLY,
    )
    assert slots == [utc(3, 2, 8, 30), utc(3, 2, 9, 0)]


def test_lead_time_excludes_slots_starting_too_soon() -> None:
    now = utc(3, 2, 7, 10)  # 10:10 Moscow; with a one-hour lead the first start is >= 08:10 UTC
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=[],
        duration=minutes(60),
        tz=MSK,
        now=now,
        rules=EVERY_15,
    )
    assert slots == [utc(3, 2, 8, 15), utc(3, 2, 8, 30), utc(3, 2, 8, 45), utc(3, 2, 9, 0)]


def test_slot_exactly_at_now_plus_lead_is_offered() -> None:
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=[],
        duration=minutes(60),
        tz=MSK,
        now=utc(3, 2, 7, 0),
        rules=HOURLY,
    )
    assert slots == [utc(3, 2, 8), utc(3, 2, 9)]


def test_back_to_back_slots_touching_a_visit_are_free() -> None:
    visit = Interval(utc(3, 2, 8), utc(3, 2, 9))  # 11:00-12:00 Moscow
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=[visit],
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=EVERY_15,
    )
    # 07:00 ends exactly when the visit starts; 09:00 starts exactly when it ends.
    assert slots == [utc(3, 2, 7), utc(3, 2, 9)]


def test_slot_between_two_adjacent_visits_fits_exactly() -> None:
    busy = [Interval(utc(3, 2, 7), utc(3, 2, 8)), Interval(utc(3, 2, 8, 45), utc(3, 2, 10))]
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=busy,
        duration=minutes(45),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=EVERY_15,
    )
    assert slots == [utc(3, 2, 8)]


def test_overlapping_and_unsorted_busy_intervals_are_all_respected() -> None:
    busy = [
        Interval(utc(3, 2, 9, 30), utc(3, 2, 10)),
        Interval(utc(3, 2, 7, 30), utc(3, 2, 8, 15)),
        Interval(utc(3, 2, 7, 45), utc(3, 2, 8, 30)),
    ]
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=busy,
        duration=minutes(30),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=EVERY_15,
    )
    assert slots == [
        utc(3, 2, 7, 0),
        utc(3, 2, 8, 30),
        utc(3, 2, 8, 45),
        utc(3, 2, 9, 0),
    ]


def test_service_longer_than_remaining_day_is_not_offered() -> None:
    slots = free_slots(
        day=MONDAY,
        hours=MON_MORNING,
        busy=[],
        duration=minutes(90),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=HALF_HOURLY,
    )
    # 08:30 + 1:30 = 10:00 UTC = closing; 09:00 would end after closing.
    assert slots == [utc(3, 2, 7), utc(3, 2, 7, 30), utc(3, 2, 8), utc(3, 2, 8, 30)]


def test_service_longer_than_the_whole_shift_has_no_slots() -> None:
    assert (
        free_slots(
            day=MONDAY,
            hours=MON_MORNING,
            busy=[],
            duration=minutes(181),
            tz=MSK,
            now=SUNDAY_BEFORE,
            rules=EVERY_15,
        )
        == []
    )


def test_lunch_break_as_two_intervals_is_never_booked_across() -> None:
    # Reverse order on purpose: 14:00-18:00 and 10:00-13:00 Moscow.
    lunch = hours(0, ("14:00", "18:00"), ("10:00", "13:00"))
    slots = free_slots(
        day=MONDAY,
        hours=lunch,
        busy=[],
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=HALF_HOURLY,
    )
    assert slots == [
        utc(3, 2, 7, 0),
        utc(3, 2, 7, 30),
        utc(3, 2, 8, 0),
        utc(3, 2, 8, 30),
        utc(3, 2, 9, 0),
        utc(3, 2, 11, 0),
        utc(3, 2, 11, 30),
        utc(3, 2, 12, 0),
        utc(3, 2, 12, 30),
        utc(3, 2, 13, 0),
        utc(3, 2, 13, 30),
        utc(3, 2, 14, 0),
    ]


def test_grid_restarts_at_each_working_interval_opening() -> None:
    # Afternoon opens at 14:10 Moscow (11:10 UTC), off the morning's half-hour grid.
    split = hours(0, ("10:00", "11:00"), ("14:10", "15:10"))
    slots = free_slots(
        day=MONDAY,
        hours=split,
        busy=[],
        duration=minutes(30),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=HALF_HOURLY,
    )
    assert slots == [utc(3, 2, 7), utc(3, 2, 7, 30), utc(3, 2, 11, 10), utc(3, 2, 11, 40)]


def test_last_day_of_the_horizon_is_bookable_and_the_next_is_not() -> None:
    # Today is Sunday 2026-03-01 in Moscow; 14 days: 03-01 .. 03-14.
    every_day = [h for wd in range(7) for h in hours(wd, ("10:00", "13:00"))]

    def slots_on(day: date, now: datetime = SUNDAY_BEFORE) -> list[datetime]:
        return free_slots(
            day=day,
            hours=every_day,
            busy=[],
            duration=minutes(60),
            tz=MSK,
            now=now,
            rules=HOURLY,
        )

    assert slots_on(date(2026, 3, 14)) == [utc(3, 14, 7), utc(3, 14, 8), utc(3, 14, 9)]
    assert slots_on(date(2026, 3, 15)) == []
    assert slots_on(date(2026, 2, 28)) == []


def test_horizon_counts_local_days_not_utc_days() -> None:
    # 22:30 UTC on Feb 28 is already 01:30 on Mar 1 in Moscow, so Mar 14 is the last day.
    now = utc(2, 28, 22, 30)
    rules = SlotRules(step=timedelta(hours=1), horizon_days=14)
    sat = hours(5, ("10:00", "11:00"))
    assert free_slots(
        day=date(2026, 3, 14),
        hours=sat,
        busy=[],
        duration=minutes(60),
        tz=MSK,
        now=now,
        rules=rules,
    ) == [utc(3, 14, 7)]
    assert (
        free_slots(
            day=date(2026, 2, 28),
            hours=sat,
            busy=[],
            duration=minutes(60),
            tz=MSK,
            now=now,
            rules=rules,
        )
        == []
    )


def test_invalid_duration_or_step_is_rejected() -> None:
    with pytest.raises(ValueError):
        free_slots(
            day=MONDAY,
            hours=MON_MORNING,
            busy=[],
            duration=timedelta(0),
            tz=MSK,
            now=SUNDAY_BEFORE,
            rules=EVERY_15,
        )
    with pytest.raises(ValueError):
        free_slots(
            day=MONDAY,
            hours=MON_MORNING,
            busy=[],
            duration=minutes(30),
            tz=MSK,
            now=SUNDAY_BEFORE,
            rules=SlotRules(step=timedelta(0)),
        )


def test_many_busy_intervals_match_a_brute_force_check() -> None:
    rng = random.Random(20260302)
    every_day = [h for wd in range(7) for h in hours(wd, ("09:00", "13:00"), ("14:00", "21:00"))]
    busy: list[Interval] = []
    for _ in range(300):
        start = utc(3, 1, 0) + minutes(15 * rng.randrange(14 * 96))
        busy.append(Interval(start, start + minutes(15 * rng.randrange(1, 8))))
    duration = minutes(45)
    for offset in range(14):
        day = date(2026, 3, 1) + timedelta(days=offset)
        got = free_slots(
            day=day,
            hours=every_day,
            busy=busy,
            duration=duration,
            tz=MSK,
            now=SUNDAY_BEFORE,
            rules=EVERY_15,
        )
        expected = []
        for work in working_intervals(day, every_day, MSK):
            start = work.start
            while start + duration <= work.end:
                wanted = Interval(start, start + duration)
                lead_ok = start >= SUNDAY_BEFORE + EVERY_15.lead
                if lead_ok and not any(wanted.overlaps(b) for b in busy):
                    expected.append(start)
                start += EVERY_15.step
        assert got == expected


# --------------------------------------------------------------------- bookable days


def test_bookable_days_skip_days_off_and_fully_booked_days() -> None:
    booked_tuesday = Interval(utc(3, 3, 7), utc(3, 3, 10))  # all of Tue 10:00-13:00 Moscow
    days = bookable_days(
        hours=MON_TO_SAT,
        busy=[booked_tuesday],
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=EVERY_15,
    )
    # Sundays 03-01 and 03-08 are days off; 03-14 is the last day of the 14-day horizon.
    assert days == [
        date(2026, 3, 2),
        date(2026, 3, 4),
        date(2026, 3, 5),
        date(2026, 3, 6),
        date(2026, 3, 7),
        date(2026, 3, 9),
        date(2026, 3, 10),
        date(2026, 3, 11),
        date(2026, 3, 12),
        date(2026, 3, 13),
        date(2026, 3, 14),
    ]


def test_bookable_days_leave_out_the_days_to_skip_and_find_the_rest() -> None:
    rules = SlotRules(horizon_days=5)  # Sunday 03-01 (a day off) to Thursday 03-05

    def days(skip: set[date]) -> list[date]:
        return bookable_days(
            hours=MON_TO_SAT, busy=[], duration=minutes(60), tz=MSK, now=SUNDAY_BEFORE,
            rules=rules, skip=skip,
        )  # fmt: skip

    assert days(set()) == [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)]
    skipped = {date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 1)}
    assert days(skipped) == [date(2026, 3, 2), date(2026, 3, 4)]


def test_bookable_days_drop_today_when_the_lead_time_leaves_nothing() -> None:
    now = utc(3, 2, 9, 30)  # Monday 12:30 Moscow; shop closes at 13:00
    days = bookable_days(
        hours=MON_TO_SAT,
        busy=[],
        duration=minutes(30),
        tz=MSK,
        now=now,
        rules=SlotRules(horizon_days=3),
    )
    assert days == [date(2026, 3, 3), date(2026, 3, 4)]


def test_bookable_days_stop_at_a_short_horizon() -> None:
    days = bookable_days(
        hours=MON_TO_SAT,
        busy=[],
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=SlotRules(horizon_days=3),
    )
    assert days == [date(2026, 3, 2), date(2026, 3, 3)]


def test_bookable_days_with_zero_horizon_are_empty() -> None:
    assert (
        bookable_days(
            hours=MON_TO_SAT,
            busy=[],
            duration=minutes(60),
            tz=MSK,
            now=SUNDAY_BEFORE,
            rules=SlotRules(horizon_days=0),
        )
        == []
    )


def test_the_first_bookable_day_is_the_first_of_bookable_days_or_none() -> None:
    monday_booked = [Interval(utc(3, 2, 7), utc(3, 2, 10))]  # all of Mon 10:00-13:00 Moscow
    first = first_bookable_day(
        hours=MON_TO_SAT,
        busy=monday_booked,
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=EVERY_15,
    )
    assert first == date(2026, 3, 3)
    days = bookable_days(
        hours=MON_TO_SAT,
        busy=monday_booked,
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=EVERY_15,
    )
    assert first == days[0]
    only_sunday = first_bookable_day(
        hours=MON_TO_SAT,
        busy=[],
        duration=minutes(60),
        tz=MSK,
        now=SUNDAY_BEFORE,
        rules=SlotRules(horizon_days=1),
    )
    assert only_sunday is None  # a day off: nothing at all


def test_the_next_visit_is_offered_on_the_days_nearest_the_prediction() -> None:
    monday_noon = [utc(3, 2, 9), utc(3, 9, 9)]  # Mondays 12:00 Moscow
    around = [utc(3, 4, 7), utc(3, 4, 12), utc(3, 5, 8), utc(3, 6, 11), utc(3, 3, 9)]
    picks = suggest_around_day(
        candidates=[*monday_noon, *around], day=date(2026, 3, 4), usual_minute_of_day=600, tz=MSK
    )
    # Wednesday itself (its start nearest 10:00), then Tuesday and Thursday, a day away each.
    assert picks == [utc(3, 3, 9), utc(3, 4, 7), utc(3, 5, 8)]


# ---------------------------------------------------------------------- nearest free


def test_nearest_free_returns_the_closest_candidates_in_ascending_order() -> None:
    candidates = [
        utc(3, 2, 11),
        utc(3, 2, 9),
        utc(3, 2, 10, 30),
        utc(3, 2, 9, 45),
        utc(3, 2, 10, 15),
    ]
    assert nearest_free(wanted=utc(3, 2, 10), candidates=candidates) == [
        utc(3, 2, 9, 45),
        utc(3, 2, 10, 15),
        utc(3, 2, 10, 30),
    ]


def test_nearest_free_prefers_the_earlier_of_two_equally_close_candidates() -> None:
    candidates = [utc(3, 2, 10, 30), utc(3, 2, 9, 30), utc(3, 2, 12)]
    assert nearest_free(wanted=utc(3, 2, 10), candidates=candidates, limit=1) == [utc(3, 2, 9, 30)]


def test_nearest_free_with_few_or_no_candidates() -> None:
    assert nearest_free(wanted=utc(3, 2, 10), candidates=[utc(3, 5, 8)]) == [utc(3, 5, 8)]
    assert nearest_free(wanted=utc(3, 2, 10), candidates=[]) == []
    assert nearest_free(wanted=utc(3, 2, 10), candidates=[utc(3, 5, 8)], limit=0) == []


# ------------------------------------------------------------------ suggest like usual


def msk(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A Moscow wall time as a UTC instant (Moscow is UTC+3)."""
    return utc(month, day, hour, minute) - timedelta(hours=3)


# Monday 2026-03-02 .. Tuesday 2026-03-17, as Moscow wall times.
USUAL_CANDIDATES = [
    msk(3, 2, 10),  # Mon, exact time
    msk(3, 3, 12),  # Tue, +2 h
    msk(3, 3, 10, 30),  # Tue, +30 min
    msk(3, 4, 10),  # Wed, exact time
    msk(3, 10, 10),  # Tue next week, exact time
    msk(3, 17, 10),  # Tue beyond two weeks of the first candidate
]


# ------------------------------------------------------------------------ usual time


def test_usual_time_of_no_visits_is_unknown() -> None:
    assert usual_time([], MSK) == (None, None)


def test_usual_time_is_most_common_local_weekday_and_median_local_minute() -> None:
    visits = [msk(2, 10, 10), msk(2, 20, 18), msk(2, 17, 11)]  # Tue 10:00, Fri 18:00, Tue 11:00
    assert usual_time(visits, MSK) == (1, 11 * 60)


def test_usual_time_uses_the_local_date_for_late_utc_instants() -> None:
    # 22:30 UTC Monday is 01:30 on Tuesday in Moscow.
    visits = [utc(3, 2, 22, 30), utc(3, 9, 22, 30), utc(3, 12, 7)]
    assert usual_time(visits, MSK) == (1, 90)


def test_usual_time_weekday_tie_goes_to_the_most_recent_visit() -> None:
    visits = [
        msk(3, 12, 9),  # Thu 09:00
        msk(3, 16, 11),  # Mon 11:00 (most recent)
        msk(3, 2, 10),  # Mon 10:00
        msk(3, 5, 12),  # Thu 12:00
    ]
    # Minutes 540, 600, 660, 720 -> median (600 + 660) / 2 = 630.
    assert usual_time(visits, MSK) == (0, 630)


def test_suggest_on_different_days_offers_one_start_a_day_near_the_usual_weekday() -> None:
    # 2026-11-23 is a Monday; the usual visit is a Friday (4) at 15:00.
    every_quarter = [
        msk(11, day, hour, minute)
        for day in range(23, 31)
        for hour in (10, 14, 15)
        for minute in (0, 15, 30, 45)
    ]
    got = suggest_on_different_days(
        candidates=every_quarter, usual_weekday=4, usual_minute_of_day=15 * 60, tz=MSK
    )
    # Friday, then its neighbours Thursday and Saturday: three days, each at 15:00.
    assert got == [
        msk(11, 26, 15),
        msk(11, 27, 15),
        msk(11, 28, 15),
    ]


def test_suggest_on_different_days_without_history_takes_the_first_days_earliest() -> None:
    starts = [msk(11, 23, 12), msk(11, 23, 13), msk(11, 25, 11)]
    got = suggest_on_different_days(
        candidates=starts, usual_weekday=None, usual_minute_of_day=None, tz=MSK
    )
    assert got == [msk(11, 23, 12), msk(11, 25, 11)]
