"""Free booking slots from working hours, busy intervals and booking rules.

Everything here is pure: no I/O and no clock (the current instant is always an argument).
Instants passed in and returned are timezone-aware UTC datetimes; working hours are local
wall times in the business time zone, given as a :class:`zoneinfo.ZoneInfo`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = [
    "Interval",
    "SlotRules",
    "WorkingHours",
    "bookable_days",
    "first_bookable_day",
    "free_slots",
    "nearest_free",
    "suggest_around_day",
    "suggest_on_different_days",
    "usual_time",
    "working_intervals",
]


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open span of time ``[start, end)`` between two aware UTC instants."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "Interval.start")
        _require_aware(self.end, "Interval.end")
        if self.end <= self.start:
            raise ValueError(f"Interval end {self.end} must be after start {self.start}")

    def overlaps(self, other: Interval) -> bool:
        """Whether the two half-open intervals share any instant (touching ends do not)."""
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """One working period of a master on a local weekday (0 = Monday … 6 = Sunday)."""

    weekday: int
    opens: time
    closes: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6, got {self.weekday}")
        if self.closes <= self.opens:
            raise ValueError(f"closes {self.closes} must be after opens {self.opens}")


@dataclass(frozen=True, slots=True)
class SlotRules:
    """Booking rules: grid step, minimum lead time and booking horizon in local days."""

    step: timedelta = timedelta(minutes=15)
    lead: timedelta = timedelta(hours=1)
    horizon_days: int = 14


# --------------------------------------------------------------------------- local time


def local_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the local clock in ``tz`` first shows ``wall`` on ``day``.

    Ambiguous wall times (fall-back overlap) resolve to their first occurrence (``fold=0``).
    Wall times that do not exist (spring-forward gap) map forward to the end of the gap,
    i.e. the instant of the transition: the clock jumps from before ``wall`` to after it.
    """
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # Non-existent local time: the two folds give instants on either side of the transition.
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(first, second), max(first, second)
    after_offset = hi.astimezone(tz).utcoffset()
    # Bisect whole seconds (tz transitions happen on whole seconds) for the first instant
    # that already has the post-transition offset.
    lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after_offset:
            hi_s = mid
        else:
            lo_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def _local_today(now: datetime, tz: ZoneInfo) -> date:
    _require_aware(now, "now")
    return now.astimezone(tz).date()


def _horizon(today: date, rules: SlotRules) -> list[date]:
    return [today + timedelta(days=i) for i in range(max(rules.horizon_days, 0))]


def working_intervals(day: date, hours: Sequence[WorkingHours], tz: ZoneInfo) -> list[Interval]:
    """The UTC intervals a master works on local date ``day``, sorted by start.

    Every ``WorkingHours`` entry whose weekday matches ``day`` yields one interval (several
    entries per weekday model breaks, e.g. a lunch break as two entries). Local times are
    converted in ``tz``: ambiguous ones use their first occurrence, non-existent ones (DST
    gap) map forward to the transition instant. An entry that lies wholly inside a DST gap
    yields no interval.
    """
    return list(_working(day, tuple(hours), tz))


@lru_cache(maxsize=8192)
def _working(day: date, hours: tuple[WorkingHours, ...], tz: ZoneInfo) -> tuple[Interval, ...]:
    """`working_intervals`, worked out once per day and set of hours: the same days of the
    same masters are asked about again and again (every day list, every "any available
    master"), and the local-time conversions cost more than the slot search itself."""
    weekday = day.weekday()
    result: list[Interval] = []
    for entry in hours:
        if entry.weekday != weekday:
            continue
        start = local_to_utc(day, entry.opens, tz)
        end = local_to_utc(day, entry.closes, tz)
        if end > start:
            result.append(Interval(start, end))
    result.sort(key=lambda iv: (iv.start, iv.end))
    return tuple(result)


# ------------------------------------------------------------------------------ slots


@dataclass(frozen=True, slots=True)
class _Busy:
    """Busy time merged into disjoint intervals sorted by start (hence also by end)."""

    starts: list[datetime]
    ends: list[datetime]

    @classmethod
    def merge(cls, busy: Iterable[Interval]) -> _Busy:
        starts: list[datetime] = []
        ends: list[datetime] = []
        for iv in sorted(busy, key=lambda b: b.start):
            if ends and iv.start <= ends[-1]:
                if iv.end > ends[-1]:
                    ends[-1] = iv.end
            else:
                starts.append(iv.start)
                ends.append(iv.end)
        return cls(starts, ends)


def _grid_ceil(origin: datetime, step: timedelta, at_least: datetime) -> datetime:
    """The first grid point ``origin + k * step`` (k >= 0) that is not before ``at_least``."""
    if at_least <= origin:
        return origin
    k = -((origin - at_least) // step)  # ceil((at_least - origin) / step)
    return origin + k * step


def _validate(duration: timedelta, rules: SlotRules) -> None:
    if duration <= timedelta(0):
        raise ValueError(f"duration must be positive, got {duration}")
    if rules.step <= timedelta(0):
        raise ValueError(f"rules.step must be positive, got {rules.step}")


def _iter_slots(
    day: date,
    hours: Sequence[WorkingHours],
    busy: _Busy,
    duration: timedelta,
    tz: ZoneInfo,
    earliest: datetime,
    step: timedelta,
) -> Iterator[datetime]:
    """Free starts per working interval (ascending within each interval, not across them)."""
    n = len(busy.ends)
    for work in _working(day, tuple(hours), tz):
        start = _grid_ceil(work.start, step, earliest)
        # First merged busy interval that ends after `start`.
        j = bisect_right(busy.ends, start)
        while start + duration <= work.end:
            while j < n and busy.ends[j] <= start:
                j += 1
            if j < n and busy.starts[j] < start + duration:
                start = _grid_ceil(work.start, step, busy.ends[j])
                continue
            yield start
            start += step


def _free_slots(
    day: date,
    hours: Sequence[WorkingHours],
    busy: _Busy,
    duration: timedelta,
    tz: ZoneInfo,
    now: datetime,
    rules: SlotRules,
) -> Iterator[datetime]:
    if day not in _horizon(_local_today(now, tz), rules):
        return iter(())
    return _iter_slots(day, hours, busy, duration, tz, now + rules.lead, rules.step)


def free_slots(
    *,
    day: date,
    hours: Sequence[WorkingHours],
    busy: Iterable[Interval],
    duration: timedelta,
    tz: ZoneInfo,
    now: datetime,
    rules: SlotRules,
) -> list[datetime]:
    """Start instants (aware UTC, ascending) on local date ``day`` for a service of ``duration``.

    A start is offered when the service fits entirely inside one working interval, overlaps
    no ``busy`` interval (visits and time off; half-open, so back-to-back is fine), starts at
    or after ``now + rules.lead``, and ``day`` lies within the horizon: local today through
    today + ``rules.horizon_days`` - 1 (otherwise the result is empty). Candidate starts lie
    on a grid from each working interval's opening, every ``rules.step`` of real elapsed time.
    """
    _validate(duration, rules)
    merged = _Busy.merge(busy)
    return sorted(set(_free_slots(day, hours, merged, duration, tz, now, rules)))


def bookable_days(
    *,
    hours: Sequence[WorkingHours],
    busy: Iterable[Interval],
    duration: timedelta,
    tz: ZoneInfo,
    now: datetime,
    rules: SlotRules,
    skip: AbstractSet[date] = frozenset(),
) -> list[date]:
    """Local dates within the horizon (today first) with at least one free slot, but the
    days in ``skip`` (known to be bookable already, e.g. with another master).

    Same rules as :func:`free_slots`; ``busy`` is sorted and merged once for all days.
    """
    _validate(duration, rules)
    merged = _Busy.merge(busy)
    earliest = now + rules.lead
    return [
        day
        for day in _horizon(_local_today(now, tz), rules)
        if day not in skip
        and next(_iter_slots(day, hours, merged, duration, tz, earliest, rules.step), None)
        is not None
    ]


def first_bookable_day(
    *,
    hours: Sequence[WorkingHours],
    busy: Iterable[Interval],
    duration: timedelta,
    tz: ZoneInfo,
    now: datetime,
    rules: SlotRules,
) -> date | None:
    """The first local date :func:`bookable_days` would give, found without looking at
    the days after it (whether there is any time at all); None when there is none."""
    _validate(duration, rules)
    merged = _Busy.merge(busy)
    earliest = now + rules.lead
    for day in _horizon(_local_today(now, tz), rules):
        if next(_iter_slots(day, hours, merged, duration, tz, earliest, rules.step), None):
            return day
    return None


# -------------------------------------------------------------------------- suggestions


def nearest_free(
    *, wanted: datetime, candidates: Sequence[datetime], limit: int = 3
) -> list[datetime]:
    """The ``limit`` candidates closest in time to ``wanted``, returned in ascending order.

    Equally distant candidates: the earlier one wins. Duplicates count once.
    """
    if limit <= 0:
        return []
    ranked = sorted(set(candidates), key=lambda c: (abs(c - wanted), c))
    return sorted(ranked[:limit])


def _minute_of_day(value: datetime, tz: ZoneInfo) -> int:
    local = value.astimezone(tz)
    return local.hour * 60 + local.minute


def nearest_time_of_day(
    candidates: Sequence[datetime], minute_of_day: int, tz: ZoneInfo
) -> datetime | None:
    """The candidate whose local time of day is nearest ``minute_of_day``; earlier on ties."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: abs(_minute_of_day(c, tz) - minute_of_day))


def suggest_on_different_days(
    *,
    candidates: Sequence[datetime],
    usual_weekday: int | None,
    usual_minute_of_day: int | None,
    tz: ZoneInfo,
    limit: int = 3,
) -> list[datetime]:
    """Up to ``limit`` starts, one per local day, for "repeat my last visit".

    Three times a quarter of an hour apart are one choice, not three: each day offers its
    start nearest the usual time of day (the earliest without one), and the days closest
    to the usual weekday (in either direction) win, sooner first on ties. The result is
    sorted ascending.
    """
    by_day: dict[date, list[datetime]] = {}
    for candidate in sorted(set(candidates)):
        by_day.setdefault(candidate.astimezone(tz).date(), []).append(candidate)
    best = {
        day: starts[0]
        if usual_minute_of_day is None
        else min(starts, key=lambda c: abs(_minute_of_day(c, tz) - usual_minute_of_day))
        for day, starts in by_day.items()
    }

    def weekday_distance(day: date) -> int:
        if usual_weekday is None:
            return 0
        apart = abs(day.weekday() - usual_weekday)
        return min(apart, 7 - apart)

    days = sorted(best, key=lambda day: (weekday_distance(day), day))[: max(limit, 0)]
    return sorted(best[day] for day in days)


def suggest_around_day(
    *,
    candidates: Sequence[datetime],
    day: date,
    usual_minute_of_day: int,
    tz: ZoneInfo,
    limit: int = 3,
) -> list[datetime]:
    """Up to ``limit`` starts, one per local day, for the next visit predicted on ``day``:
    each day offers its start nearest the usual time of day, and the days nearest ``day``
    win (the earlier on ties). The result is sorted ascending."""
    by_day: dict[date, list[datetime]] = {}
    for candidate in sorted(set(candidates)):
        by_day.setdefault(candidate.astimezone(tz).date(), []).append(candidate)
    best = {
        d: min(starts, key=lambda c: abs(_minute_of_day(c, tz) - usual_minute_of_day))
        for d, starts in by_day.items()
    }
    days = sorted(best, key=lambda d: (abs((d - day).days), d))[: max(limit, 0)]
    return sorted(best[d] for d in days)


#: Parts of the day a long list of times is split into, by their local starting minute.
DAY_PARTS = {"morning": 0, "afternoon": 12 * 60, "evening": 17 * 60}


def by_part_of_day(starts: Sequence[datetime], tz: ZoneInfo) -> dict[str, list[datetime]]:
    """``starts`` grouped by local part of the day, in the day's order; parts without a
    start are left out (a button for them would lead nowhere)."""
    groups: dict[str, list[datetime]] = {}
    for start in sorted(starts):
        minute = _minute_of_day(start, tz)
        part = [p for p, first in DAY_PARTS.items() if minute >= first][-1]
        groups.setdefault(part, []).append(start)
    return groups


def usual_time(starts: Sequence[datetime], tz: ZoneInfo) -> tuple[int | None, int | None]:
    """The client's usual local weekday and minute-of-day from past visit starts.

    Returns (most common local weekday, median local minute-of-day), or (None, None) for no
    visits. Weekday ties go to the weekday of the most recent visit among the tied ones.
    For an even number of visits the median is the mean of the two middle values, floored.
    """
    if not starts:
        return None, None
    counts: Counter[int] = Counter()
    latest: dict[int, datetime] = {}
    for start in starts:
        weekday = start.astimezone(tz).weekday()
        counts[weekday] += 1
        if weekday not in latest or start > latest[weekday]:
            latest[weekday] = start
    weekday = max(counts, key=lambda w: (counts[w], latest[w]))
    minutes = sorted(_minute_of_day(s, tz) for s in starts)
    mid = len(minutes) // 2
    median = minutes[mid] if len(minutes) % 2 else (minutes[mid - 1] + minutes[mid]) // 2
    return weekday, median
