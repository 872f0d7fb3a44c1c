"""Free time, in one place: the days and start times a service can still be booked with
some masters, and the slots nearest a wish. Booking, "repeat my last visit", the nudge's
suggested slot and (later) staff booking all ask here, so "free" means the same thing in
a conversation and in a planned message.

`openings()` loads what is busy (visits, time off) once for the booking horizon; the
`Openings` it returns answers every question about that window without the database.
`openings(day=…)` loads one local day only, for the questions about that day (its times,
whether a slot is still free at Confirm). The slot rules themselves are the pure ones of
domain/slots.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.business import BusinessConfig
from domain.slots import (
    Interval,
    bookable_days,
    first_bookable_day,
    free_slots,
    nearest_free,
    nearest_time_of_day,
    suggest_around_day,
    suggest_on_different_days,
)
from storage.catalog import MasterInfo, ServiceInfo
from storage.queries import busy_intervals
from storage.tables import Visit

Busy = dict[int, list[Interval]]
AFTERNOON = 15 * 60  # the wish of a client with no usual time yet


@dataclass(frozen=True, slots=True)
class Openings:
    """Free start times of one service with some masters (in order of preference), from
    `now` to the end of the booking horizon."""

    service: ServiceInfo
    masters: tuple[MasterInfo, ...]
    busy: Busy
    config: BusinessConfig
    now: datetime
    duration: timedelta  # the service's, or longer with a service added to it
    horizon_days: int  # the booking horizon, or further for the next-visit offer
    only: date | None = None  # busy time was read for this local day alone

    def _about(self, day: date | None) -> None:
        if self.only is not None and day != self.only:
            raise ValueError(f"these openings know {self.only} only, not {day or 'every day'}")

    def _rules_for(self, master: MasterInfo) -> dict[str, Any]:
        rules = replace(self.config.booking.rules(), horizon_days=self.horizon_days)
        return {
            "hours": master.hours,
            "busy": self.busy.get(master.id, []),
            "duration": self.duration,
            "tz": self.config.tz,
            "now": self.now,
            "rules": rules,
        }

    def days(self) -> list[date]:
        """Local days with at least one free start, with any of the masters (a day found
        with one is not searched again with the next)."""
        self._about(None)
        found: set[date] = set()
        for master in self.masters:
            found.update(bookable_days(**self._rules_for(master), skip=found))
        return sorted(found)

    def any_free(self) -> bool:
        """Some master has some free start in the window (stops at the first one found)."""
        self._about(None)
        return any(first_bookable_day(**self._rules_for(m)) for m in self.masters)

    def times(self, day: date) -> dict[datetime, int]:
        """Free starts on a local day, each with the first master (by preference) free then."""
        self._about(day)
        found: dict[datetime, int] = {}
        for master in self.masters:
            for start in free_slots(day=day, **self._rules_for(master)):
                found.setdefault(start, master.id)
        return dict(sorted(found.items()))

    def all_times(self) -> dict[datetime, int]:
        self._about(None)
        found: dict[datetime, int] = {}
        for day in self.days():
            found.update(self.times(day))
        return found

    def is_free(self, start: datetime) -> bool:
        return start in self.times(start.astimezone(self.config.tz).date())

    def nearest(self, wanted: datetime) -> dict[datetime, int]:
        """The free starts closest to `wanted` (a slot just taken), each with its master."""
        times = self.all_times()
        return {
            start: times[start] for start in nearest_free(wanted=wanted, candidates=list(times))
        }

    def like_usual(self, weekday: int | None, minute_of_day: int | None) -> dict[datetime, int]:
        """Free starts on a few different days that look like the client's usual visit
        ("repeat my last")."""
        times = self.all_times()
        picks = suggest_on_different_days(
            candidates=list(times),
            usual_weekday=weekday,
            usual_minute_of_day=minute_of_day,
            tz=self.config.tz,
        )
        return {start: times[start] for start in picks}

    def near_usual_time(self, first_day: date, minute_of_day: int | None) -> datetime | None:
        """The first day from `first_day` with a free start, at the start nearest the
        client's usual time of day (the afternoon when there is none yet)."""
        self._about(None)
        wanted = minute_of_day if minute_of_day is not None else AFTERNOON
        for offset in range(self.horizon_days):
            day = first_day + timedelta(days=offset)
            if slot := nearest_time_of_day(list(self.times(day)), wanted, self.config.tz):
                return slot
        return None

    def around(
        self, day: date, minute_of_day: int | None, *, before: int, after: int
    ) -> list[datetime]:
        """Three free starts on different days nearest `day` (from `before` days before it
        to `after` days after), each near the client's usual time: the next visit at the
        client's rhythm."""
        wanted = minute_of_day if minute_of_day is not None else AFTERNOON
        days = [day + timedelta(days=offset) for offset in range(-before, after + 1)]
        candidates = [start for d in days for start in self.times(d)]
        return suggest_around_day(
            candidates=candidates, day=day, usual_minute_of_day=wanted, tz=self.config.tz
        )


async def openings(
    *,
    session: AsyncSession,
    config: BusinessConfig,
    service: ServiceInfo,
    masters: list[MasterInfo],
    now: datetime,
    moving: Visit | None = None,
    duration: timedelta | None = None,
    horizon_days: int | None = None,
    day: date | None = None,
) -> Openings:
    """What is free for `service` (lasting `duration` when something is added to it) with
    `masters`, within the booking horizon or `horizon_days`; the visit being `moving` does
    not block its own time. With `day`, only that local day is read and may be asked
    about."""
    horizon = horizon_days or config.booking.horizon_days
    if day is None:
        last_day = now.astimezone(config.tz).date() + timedelta(days=horizon)
        start, end = now, _midnight(last_day, config)
    else:
        start, end = max(now, _midnight(day, config)), _midnight(day + timedelta(days=1), config)
    busy = await busy_intervals(
        session=session, master_ids=[m.id for m in masters], start=start, end=max(start, end)
    )
    if moving is not None:
        own = Interval(moving.starts_at, moving.ends_at)
        busy[moving.master_id] = [b for b in busy[moving.master_id] if b != own]
    return Openings(
        service, tuple(masters), busy, config, now, duration or service.duration, horizon, day
    )


def _midnight(day: date, config: BusinessConfig) -> datetime:
    return datetime.combine(day, time(), config.tz).astimezone(UTC)
