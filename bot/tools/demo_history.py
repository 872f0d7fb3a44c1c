"""Synthetic but realistic history for the demo barbershop and the benchmark.

`seed_history` fills an empty database (catalog already synced) with clients of several
kinds — regulars, occasional clients, one-timers, clients who stopped coming and newcomers —
and their visits, placed on the masters' real working hours on the booking grid without
two visits of one master overlapping. Everything is drawn from `random.Random(seed)` and
the given `now`, so a seed always gives the same database.

Rows are written with SQLAlchemy Core in chunks: 10,000 clients and ~100,000 visits take
seconds, not minutes. Explicit ids (ordered by creation time) let visits and feedback refer
to their rows without reading them back.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.business import BusinessConfig
from domain.loyalty import earned_by_visit
from domain.people import YEAR_UNKNOWN
from domain.retention import in_holdout
from domain.slots import working_intervals
from storage.catalog import Catalog
from storage.db import Database
from storage.stats import refresh_client_stats
from storage.tables import (
    ACTIVE_VISIT,
    Client,
    ClientIdentity,
    Feedback,
    LedgerKind,
    LoyaltyEntry,
    Visit,
    VisitStatus,
)

__all__ = ["HistoryStats", "seed_history", "with_more_masters"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS_PER_MONTH = 365.25 / 12
_CHUNK = 5_000
# The demo shop started its loyalty programme this long ago: visits since then earned.
_LOYALTY_SINCE = timedelta(days=120)

_MALE_NAMES = (
    "Александр", "Алексей", "Андрей", "Антон", "Артём", "Богдан", "Вадим", "Валерий",
    "Виктор", "Виталий", "Владимир", "Владислав", "Глеб", "Григорий", "Давид", "Даниил",
    "Денис", "Дмитрий", "Евгений", "Егор", "Иван", "Игорь", "Илья", "Кирилл", "Константин",
    "Лев", "Леонид", "Макар", "Максим", "Марк", "Матвей", "Михаил", "Никита", "Николай",
    "Олег", "Павел", "Пётр", "Роман", "Руслан", "Семён", "Сергей", "Станислав", "Степан",
    "Тимофей", "Тимур", "Фёдор", "Юрий", "Ярослав",
)  # fmt: skip
_FEMALE_NAMES = (
    "Анна", "Екатерина", "Елена", "Ирина", "Мария", "Наталья", "Ольга", "Светлана",
    "Татьяна", "Юлия", "Дарья", "Ксения",
)  # fmt: skip
_SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
    "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв",
    "Сергеев", "Кузьмин", "Фролов", "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв",
    "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев",
    "Антонов", "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев",
    "Герасимов", "Богданов", "Осипов", "Сидоров", "Матвеев", "Титов", "Марков", "Миронов",
    "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов", "Гаврилов", "Тихонов",
    "Казаков", "Афанасьев", "Данилов", "Савельев", "Тимофеев", "Фомин", "Чернов", "Абрамов",
    "Островский", "Вишневский", "Шевченко", "Бондаренко", "Ткаченко",
)  # fmt: skip
_PREFERENCE_NOTES = (
    "Не любит разговоры во время стрижки",
    "Виски машинкой на 3 мм",
    "Чёлку не трогать",
    "Кофе без сахара",
    "Чувствительная кожа, без спиртового лосьона",
    "Бороду короче по бокам",
    "Любит чёткий контур",
    "Только ножницы, без машинки",
    "Предпочитает вечер после работы",
    "Приходит с сыном",
)
_STAFF_NOTES = (
    "Постоянный клиент, всегда вовремя",
    "Просит напоминать за день",
    "Часто опаздывает на 10 минут",
    "Привёл друга",
    "Платит картой",
)
_CANCEL_REASONS = (
    "Заболел",
    "Изменились планы",
    "Задержали на работе",
    "Уехал в командировку",
    "Перенесу на другой день",
    "Семейные обстоятельства",
)
_VISIT_COMMENTS = (
    "Хочу покороче, чем в прошлый раз",
    "Как обычно",
    "Подровнять бороду тоже",
    "Буду с ребёнком",
    "Могу опоздать на 5 минут",
)
_LOW_RATING_COMMENTS = (
    "Пришлось ждать 20 минут",
    "Виски получились неровные",
    "Слишком коротко",
    "Мастер торопился",
    "Порезали при бритье",
    "Грязно на рабочем месте",
)
_RESOLUTIONS = (
    "Извинились, предложили бесплатную коррекцию",
    "Поговорили с мастером, скидка на следующий визит",
    "Клиент пришёл на исправление, доволен",
)
# How popular each service of the demo barbershop is; other keys weigh 10.
_SERVICE_WEIGHTS = {"haircut": 40, "fade": 20, "combo": 15, "beard": 12, "kids": 7, "shave": 6}
# Fridays and Saturdays are the busiest days.
_WEEKDAY_WEIGHTS = (0.8, 1.0, 1.0, 1.0, 1.3, 1.5, 0.9)
# Day shifts tried when the wanted slot is taken: the same day first, then nearby days.
_REGULAR_SHIFTS = (0, 1, -1, 2, -2, 3, -3, 7)
_OTHER_MASTER_SHIFTS = (0, 1, -1)
_OTHER_MASTERS = 3  # how many other masters a client would accept when theirs is busy


class Archetype(StrEnum):
    regular = "regular"  # every 3–5 weeks, same master, usual weekday and hour
    occasional = "occasional"  # every 2–4 months
    one_timer = "one_timer"  # came once
    lapsed = "lapsed"  # was a regular, last visit 5–12 months ago
    newcomer = "newcomer"  # first visit (or booking) in the last month


_ARCHETYPE_SHARES = (
    (Archetype.regular, 0.30),
    (Archetype.occasional, 0.25),
    (Archetype.one_timer, 0.20),
    (Archetype.lapsed, 0.17),
    (Archetype.newcomer, 0.08),
)


@dataclass(frozen=True)
class HistoryStats:
    """What `seed_history` wrote; `upcoming` counts booked/confirmed visits after `now`."""

    clients: int
    visits: int
    completed: int
    upcoming: int


@dataclass(slots=True)
class _Span:
    """One working interval of a master, in minutes since the epoch, on the slot grid."""

    start: int
    end: int
    taken: int = 0  # bit i set: grid slot i (start + i * step) is busy


@dataclass(frozen=True, slots=True)
class _Wish:
    """When a client would like to come: a local day, a local minute of day, what, with whom."""

    day: date
    minute: int
    service_id: int
    masters: tuple[int, ...]  # preferred first
    shifts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Placed:
    master_id: int
    service_id: int
    start: int  # minutes since the epoch
    end: int


@dataclass(slots=True)
class _Person:
    archetype: Archetype
    visits: list[_Placed] = field(default_factory=list)
    favourite_master_id: int | None = None
    usual_minute: int | None = None


class _Diary:
    """Every master's working days split into grid slots, with the slots already taken.

    A visit takes ceil(duration / step) slots from a grid start, so visits that share no
    slot cannot overlap in time.
    """

    def __init__(self, catalog: Catalog, tz: ZoneInfo, step: int) -> None:
        self._masters = catalog.masters
        self._tz = tz
        self._step = step
        self._days: dict[tuple[int, date], list[_Span]] = {}

    def spans(self, master_id: int, day: date) -> list[_Span]:
        key = (master_id, day)
        spans = self._days.get(key)
        if spans is None:
            hours = self._masters[master_id].hours
            spans = [
                _Span(_minutes(iv.start), _minutes(iv.end))
                for iv in working_intervals(day, hours, self._tz)
            ]
            self._days[key] = spans
        return spans

    def take(
        self, master_id: int, day: date, wanted: int, duration: int, earliest: int, latest: int
    ) -> int | None:
        """Book the free grid start on `day` nearest to `wanted` such that the visit lies in
        [earliest, latest]; return its start, or None when the day has no room."""
        step = self._step
        slots = -(-duration // step)
        best: tuple[int, int, _Span, int] | None = None  # distance, start, span, index
        for span in self.spans(master_id, day):
            lo = max(0, -(-(earliest - span.start) // step))
            hi = (min(span.end, latest) - duration - span.start) // step
            if lo > hi:
                continue
            starts = _free_starts(span.taken, slots, lo, hi)
            if not starts:
                continue
            index = _nearest_bit(starts, min(max(round((wanted - span.start) / step), lo), hi))
            start = span.start + index * step
            if best is None or abs(start - wanted) < best[0]:
                best = (abs(start - wanted), start, span, index)
        if best is None:
            return None
        _, start, span, index = best
        span.taken |= ((1 << slots) - 1) << index
        return start


def _free_starts(taken: int, slots: int, lo: int, hi: int) -> int:
    """Bit i set: slots i … i + slots - 1 are all free, and lo <= i <= hi."""
    starts = ((1 << (hi + 1)) - 1) ^ ((1 << lo) - 1)
    for shift in range(slots):
        starts &= ~(taken >> shift)
    return starts


def _nearest_bit(bits: int, centre: int) -> int:
    """The set bit nearest to `centre` (the lower one on a tie); `bits` is not zero."""
    below = bits & ((1 << (centre + 1)) - 1)
    above = bits >> centre
    down = below.bit_length() - 1 if below else None
    up = centre + (above & -above).bit_length() - 1 if above else None
    if up is None or (down is not None and centre - down <= up - centre):
        assert down is not None
        return down
    return up


def _minutes(moment: datetime) -> int:
    return int(moment.timestamp()) // 60


def _instant(minutes: int) -> datetime:
    return _EPOCH + timedelta(minutes=minutes)


@dataclass
class _World:
    """What every client's plan draws from: the catalog, the clock and the random source."""

    rng: random.Random
    catalog: Catalog
    config: BusinessConfig
    tz: ZoneInfo
    diary: _Diary
    now: int
    first_day: date
    today: date
    period_start: int
    upcoming_earliest: int
    upcoming_latest: int
    masters_of: dict[int, tuple[int, ...]]  # service id -> masters who do it and have hours
    service_ids: tuple[int, ...]
    service_weights: tuple[float, ...]

    @property
    def days(self) -> int:
        return (self.today - self.first_day).days

    def service(self, among: Sequence[int] | None = None) -> int:
        ids = [s for s in self.service_ids if among is None or s in among]
        weights = [self.service_weights[self.service_ids.index(s)] for s in ids]
        return self.rng.choices(ids, weights)[0]

    def day_at(self, fraction: float) -> date:
        return self.first_day + timedelta(days=int(fraction * self.days))

    def any_minute(self) -> int:
        return self.rng.randrange(10 * 60, 20 * 60, 15)

    def masters_for(self, service_id: int, favourite: int | None = None) -> tuple[int, ...]:
        """Masters to try for a service: the favourite (if they do it) and a few others."""
        masters = self.masters_of[service_id]
        first = (favourite,) if favourite in masters else ()
        others = [m for m in masters if m != favourite]
        count = min(_OTHER_MASTERS + 1 - len(first), len(others))
        return (*first, *self.rng.sample(others, count))

    def place(self, wish: _Wish, *, upcoming: bool) -> _Placed | None:
        earliest, latest = (
            (self.upcoming_earliest, self.upcoming_latest)
            if upcoming
            else (self.period_start, self.now)
        )
        duration = self.catalog.services[wish.service_id].minutes
        for rank, master_id in enumerate(wish.masters):
            for shift in wish.shifts if rank == 0 else _OTHER_MASTER_SHIFTS:
                day = wish.day + timedelta(days=shift)
                wanted = _local_minutes(day, wish.minute, self.tz)
                start = self.diary.take(master_id, day, wanted, duration, earliest, latest)
                if start is not None:
                    return _Placed(master_id, wish.service_id, start, start + duration)
        return None


def _local_minutes(day: date, minute: int, tz: ZoneInfo) -> int:
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
    return _minutes(local)


# ------------------------------------------------------------------------------ plans


def _plan(world: _World, archetype: Archetype) -> _Person:
    planners = {
        Archetype.regular: _plan_regular,
        Archetype.occasional: _plan_occasional,
        Archetype.one_timer: _plan_one_timer,
        Archetype.lapsed: _plan_lapsed,
        Archetype.newcomer: _plan_newcomer,
    }
    return planners[archetype](world)


def _habit(world: _World) -> tuple[int, int, int, int]:
    """A regular's main service, master, usual weekday and usual local minute of day."""
    rng = world.rng
    service_id = world.service()
    master_id = rng.choice(world.masters_of[service_id])
    hours = world.catalog.masters[master_id].hours
    weekdays = sorted({h.weekday for h in hours})
    weekday = rng.choices(weekdays, [_WEEKDAY_WEIGHTS[w] for w in weekdays])[0]
    entry = rng.choice([h for h in hours if h.weekday == weekday])
    opens = entry.opens.hour * 60 + entry.opens.minute
    closes = entry.closes.hour * 60 + entry.closes.minute
    duration = world.catalog.services[service_id].minutes
    minute = rng.randrange(opens, max(opens + 1, closes - duration + 1), 15)
    return service_id, master_id, weekday, minute


def _habitual_visits(
    world: _World, person: _Person, days: list[date], *, upcoming_share: float
) -> None:
    """Visits near `days` on the usual weekday and hour, mostly the usual service and master."""
    rng = world.rng
    service_id, master_id, weekday, minute = _habit(world)
    person.favourite_master_id, person.usual_minute = master_id, minute
    offered = world.catalog.masters[master_id].service_ids
    for day in days:
        if rng.random() < 0.7:  # drift to the usual weekday
            day += timedelta(days=(weekday - day.weekday() + 3) % 7 - 3)
        upcoming = day > world.today or (day == world.today and rng.random() < 0.5)
        if upcoming and rng.random() >= upcoming_share:
            continue
        service = service_id if rng.random() < 0.8 else world.service(tuple(offered))
        masters = world.masters_for(service, master_id if rng.random() < 0.9 else None)
        jitter = rng.choice((0, 0, 0, 15, -15, 30, -30, 60, -60))
        wish = _Wish(day, minute + jitter, service, masters, _REGULAR_SHIFTS)
        placed = world.place(wish, upcoming=upcoming)
        if placed is not None:
            person.visits.append(placed)


def _rhythm(world: _World, first: date, until: date, low: int, high: int) -> list[date]:
    """Dates from `first` to `until` with a personal gap of `low`–`high` days, jittered."""
    gap = world.rng.randint(low, high)
    days, day = [], first
    while day <= until:
        days.append(day)
        day += timedelta(days=max(7, gap + world.rng.randint(-4, 4)))
    return days


def _plan_regular(world: _World) -> _Person:
    person = _Person(Archetype.regular)
    first = world.day_at(world.rng.uniform(0.0, 0.8))
    horizon = world.today + timedelta(days=world.config.booking.horizon_days)
    days = _rhythm(world, first, horizon, 21, 35)
    _habitual_visits(world, person, days, upcoming_share=0.6)
    return person


def _plan_lapsed(world: _World) -> _Person:
    person = _Person(Archetype.lapsed)
    rng = world.rng
    latest_back = min(365, int(world.days * 0.95))
    back = rng.randint(min(150, latest_back), latest_back)
    last = world.today - timedelta(days=back)
    gap = rng.randint(21, 35)
    days = [last - timedelta(days=gap * i) for i in range(rng.randint(3, 12))]
    days = sorted(d for d in days if d >= world.first_day) or [last]
    _habitual_visits(world, person, days, upcoming_share=0.0)
    return person


def _plan_occasional(world: _World) -> _Person:
    person = _Person(Archetype.occasional)
    first = world.day_at(world.rng.uniform(0.0, 0.8))
    for day in _rhythm(world, first, world.today - timedelta(days=1), 60, 120):
        _add_random_visit(world, person, day)
    return person


def _plan_one_timer(world: _World) -> _Person:
    person = _Person(Archetype.one_timer)
    _add_random_visit(world, person, world.day_at(world.rng.uniform(0.0, 0.97)))
    return person


def _plan_newcomer(world: _World) -> _Person:
    person = _Person(Archetype.newcomer)
    rng = world.rng
    if rng.random() < 0.25:  # booked for the first time, has not come yet
        _add_random_visit(world, person, _soon(world), upcoming=True)
        return person
    first = world.today - timedelta(days=rng.randint(1, 30))
    _add_random_visit(world, person, first)
    if person.visits and rng.random() < 0.3:  # liked it and booked again
        _add_random_visit(world, person, _soon(world), upcoming=True, same_as=person.visits[0])
    return person


def _soon(world: _World) -> date:
    days = max(1, world.config.booking.horizon_days - 1)
    return world.today + timedelta(days=world.rng.randint(1, days))


def _add_random_visit(
    world: _World,
    person: _Person,
    day: date,
    *,
    upcoming: bool = False,
    same_as: _Placed | None = None,
) -> None:
    if same_as is not None:
        service_id = same_as.service_id
        masters = world.masters_for(service_id, same_as.master_id)
    else:
        service_id = world.service()
        masters = world.masters_for(service_id)
    wish = _Wish(day, world.any_minute(), service_id, masters, _REGULAR_SHIFTS[:5])
    placed = world.place(wish, upcoming=upcoming)
    if placed is not None:
        person.visits.append(placed)


# ------------------------------------------------------------------------------- rows


@dataclass
class _Rows:
    clients: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    loyalty: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Identities:
    """Unique phones and Telegram ids."""

    rng: random.Random
    phones: set[str] = field(default_factory=set)
    telegram_ids: set[int] = field(default_factory=set)

    def phone(self) -> str:
        while True:
            phone = f"+79{self.rng.randrange(10**9):09d}"
            if phone in self.phones:
                continue
            if phonenumbers.is_valid_number(phonenumbers.parse(phone)):
                self.phones.add(phone)
                return phone

    def telegram_id(self) -> int:
        while True:
            value = self.rng.randrange(100_000_000, 8_000_000_000)
            if value not in self.telegram_ids:
                self.telegram_ids.add(value)
                return value


def _name(rng: random.Random) -> str:
    female = rng.random() < 0.08
    first = rng.choice(_FEMALE_NAMES if female else _MALE_NAMES)
    if rng.random() < 0.3:
        return first
    surname = rng.choice(_SURNAMES)
    if female:
        surname = surname[:-2] + "ая" if surname.endswith("ий") else surname + "а"
        if surname.endswith("оа"):  # Шевченко and the like do not change
            surname = surname[:-1]
    return f"{first} {surname}"


def _birthday(rng: random.Random, today: date) -> date:
    day_of_year = rng.randrange(365)
    year = YEAR_UNKNOWN if rng.random() < 0.1 else today.year - rng.randint(18, 62)
    return date(year, 1, 1) + timedelta(days=day_of_year)


def _time_of_day(minute: int) -> str:
    return "morning" if minute < 12 * 60 else "afternoon" if minute < 17 * 60 else "evening"


def _client_row(world: _World, ids: _Identities, person: _Person) -> dict[str, Any]:
    """Everything about a client except when they appeared (see `_stamp_created`)."""
    rng = world.rng
    phone = ids.phone()
    telegram_id = ids.telegram_id() if rng.random() < 0.85 else None
    whatsapp_id = phone[1:] if telegram_id is None and rng.random() < 0.6 else None
    channel = "telegram" if telegram_id else "whatsapp" if whatsapp_id else None
    habitual = person.archetype in (Archetype.regular, Archetype.lapsed)
    favourite = person.favourite_master_id if habitual and rng.random() < 0.6 else None
    time_of_day = (
        _time_of_day(person.usual_minute)
        if person.usual_minute is not None and rng.random() < 0.5
        else None
    )
    chats = {"telegram": str(telegram_id) if telegram_id else None, "whatsapp": whatsapp_id}
    return {
        "chats": {channel: chat for channel, chat in chats.items() if chat},
        "name": _name(rng),
        "phone": phone,
        "phone_verified": True,  # the shop knows its clients' numbers
        "preferred_channel": channel,
        "locale": "ru",
        "birthday": _birthday(rng, world.today) if rng.random() < 0.7 else None,
        "source": channel or rng.choice(("walk-in", "staff")),
        "staff_notes": rng.choice(_STAFF_NOTES) if habitual and rng.random() < 0.15 else "",
        "favourite_master_id": favourite,
        "preferred_time_of_day": time_of_day,
        "preference_note": rng.choice(_PREFERENCE_NOTES) if rng.random() < 0.2 else "",
        "consent_at": None,
        "marketing_opt_in_at": None,
        "holdout": in_holdout(phone, world.config.retention.holdout_share),
        "created_at": None,
    }


def _stamp_created(rng: random.Random, client: dict[str, Any], created: int) -> None:
    """Clients appear with their first booking, giving consent (and often marketing opt-in)."""
    client["created_at"] = client["consent_at"] = _instant(created)
    client["marketing_opt_in_at"] = client["created_at"] if rng.random() < 0.6 else None


def _booked_at(world: _World, visit: _Placed, source: str) -> int:
    """When the visit was booked: walk-ins on the spot, others hours to days ahead."""
    if source == "walk-in":
        return visit.start
    ahead = world.rng.choice((2 * 60, 6 * 60, 20 * 60, 2 * 1440, 5 * 1440, 12 * 1440))
    return min(visit.start - ahead + world.rng.randrange(60), world.now - 5)


def _visit_source(rng: random.Random, channel: str | None, *, upcoming: bool) -> str:
    if channel is not None and rng.random() < 0.85:
        return channel
    walk_in = channel is None and not upcoming and rng.random() < 0.5
    return "walk-in" if walk_in else "staff"


def _status(rng: random.Random, person: _Person, is_last_past: bool) -> VisitStatus:
    must_come = is_last_past and person.archetype in (
        Archetype.lapsed,
        Archetype.one_timer,
        Archetype.newcomer,
    )
    roll = rng.random()
    if must_come or roll >= 0.12:
        return VisitStatus.completed
    return VisitStatus.no_show if roll < 0.05 else VisitStatus.cancelled


def _visit_rows(
    world: _World, person: _Person, client: dict[str, Any]
) -> list[tuple[int, dict[str, Any]]]:
    """(booked-at minute, row) for every visit of one client; statuses and money filled."""
    rng = world.rng
    visits = sorted(person.visits, key=lambda v: v.start)
    last_past = max((i for i, v in enumerate(visits) if v.start <= world.now), default=-1)
    result = []
    for i, visit in enumerate(visits):
        upcoming = visit.start > world.now
        source = _visit_source(rng, client["preferred_channel"], upcoming=upcoming)
        booked = _booked_at(world, visit, source)
        price = world.catalog.services[visit.service_id].price
        row: dict[str, Any] = {
            "client_id": 0,
            "master_id": visit.master_id,
            "service_id": visit.service_id,
            "starts_at": _instant(visit.start),
            "ends_at": _instant(visit.end),
            "status": VisitStatus.booked,
            "price": price,
            "paid_amount": None,
            "discount": None,
            "source": source,
            "created_at": _instant(booked),
            "confirmed_at": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "completed_at": None,
            "comment": rng.choice(_VISIT_COMMENTS) if rng.random() < 0.05 else "",
        }
        if upcoming:
            if visit.start - world.now < 2 * 1440 and rng.random() < 0.5:
                row["status"] = VisitStatus.confirmed
                row["confirmed_at"] = _instant(max(booked, world.now - rng.randrange(1, 600)))
        else:
            _settle(rng, row, _status(rng, person, i == last_past), booked, visit)
        result.append((booked, row))
    return result


def _settle(
    rng: random.Random, row: dict[str, Any], status: VisitStatus, booked: int, visit: _Placed
) -> None:
    row["status"] = status
    if status == VisitStatus.completed:
        row["completed_at"] = row["ends_at"]
        row["paid_amount"] = row["price"]
    elif status == VisitStatus.cancelled:
        lead = max(visit.start - booked, 1)
        row["cancelled_at"] = _instant(booked + int(lead * rng.uniform(0.3, 0.98)))
        row["cancel_reason"] = rng.choice(_CANCEL_REASONS)


def _feedback_row(world: _World, visit_id: int, visit: dict[str, Any]) -> dict[str, Any] | None:
    """A rating for some completed visits: mostly 5 and 4, a few complaints."""
    rng = world.rng
    if visit["status"] != VisitStatus.completed or rng.random() >= 0.35:
        return None
    created = _minutes(visit["ends_at"]) + 180 + rng.randrange(300)
    if created > world.now:
        return None
    rating = rng.choices((5, 4, 3, 2, 1), (70, 20, 5, 3, 2))[0]
    row: dict[str, Any] = {
        "id": 0,
        "visit_id": visit_id,
        "rating": rating,
        "comment": "",
        "status": "ok",
        "resolved_by_id": None,
        "resolved_at": None,
        "resolution": "",
        "created_at": _instant(created),
    }
    if rating <= 3:
        row["comment"] = rng.choice(_LOW_RATING_COMMENTS)
        resolved = created + rng.randrange(60, 3 * 1440)
        if resolved < world.now and rng.random() < 0.8:
            row["status"] = "resolved"
            row["resolved_by_id"] = _owner_id(world.catalog)
            row["resolved_at"] = _instant(resolved)
            row["resolution"] = rng.choice(_RESOLUTIONS)
        else:
            row["status"] = "open"
    return row


def _owner_id(catalog: Catalog) -> int:
    owners = [m.id for m in catalog.masters.values() if m.role == "owner"]
    return owners[0] if owners else next(iter(catalog.masters))


# ----------------------------------------------------------------------------- public


async def seed_history(
    *,
    db: Database,
    catalog: Catalog,
    config: BusinessConfig,
    now: datetime,
    clients: int = 300,
    months: int = 18,
    seed: int = 7,
) -> HistoryStats:
    """Fill an empty database (catalog synced) with `clients` clients and `months` months of
    visits up to `now`, plus bookings for the next days; the same seed gives the same rows."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    if clients < 0 or months < 1:
        raise ValueError("clients must be >= 0 and months >= 1")
    async with db.reading() as session:  # check before the planning, not after it
        await _require_empty(await session.connection())
    world = _world(random.Random(seed), catalog, config, now, months)
    persons = [_plan(world, archetype) for archetype in _archetypes(world.rng, clients)]
    rows = _rows(world, persons)
    async with db.transaction() as session:
        connection = await session.connection()
        for table, data in (
            (Client, rows.clients),
            (ClientIdentity, rows.identities),
            (Visit, rows.visits),
            (Feedback, rows.feedback),
            (LoyaltyEntry, rows.loyalty),
        ):
            for offset in range(0, len(data), _CHUNK):
                await connection.execute(insert(table), data[offset : offset + _CHUNK])
        await refresh_client_stats(
            session=session,
            tz=config.tz,
            return_days={s.id: s.return_interval_days for s in catalog.services.values()},
        )
    statuses = [row["status"] for row in rows.visits]
    return HistoryStats(
        clients=len(rows.clients),
        visits=len(rows.visits),
        completed=statuses.count(VisitStatus.completed),
        upcoming=sum(
            1 for row in rows.visits if row["starts_at"] > now and row["status"] in ACTIVE_VISIT
        ),
    )


def _world(
    rng: random.Random, catalog: Catalog, config: BusinessConfig, now: datetime, months: int
) -> _World:
    tz = config.tz
    working = {m.id for m in catalog.masters.values() if m.hours}
    masters_of = {
        s: tuple(m.id for m in catalog.masters_for(s) if m.id in working) for s in catalog.services
    }
    service_ids = tuple(s for s, masters in masters_of.items() if masters)
    if not service_ids:
        raise ValueError("no service has a master with working hours")
    now_minute = _minutes(now)
    period_start = now - timedelta(days=months * _DAYS_PER_MONTH)
    lead = config.booking.min_lead
    return _World(
        rng=rng,
        catalog=catalog,
        config=config,
        tz=tz,
        diary=_Diary(catalog, tz, config.booking.slot_step),
        now=now_minute,
        first_day=period_start.astimezone(tz).date(),
        today=now.astimezone(tz).date(),
        period_start=-(-int(period_start.timestamp()) // 60),
        upcoming_earliest=now_minute + 1 + lead,
        upcoming_latest=now_minute + config.booking.horizon_days * 1440,
        masters_of=masters_of,
        service_ids=service_ids,
        service_weights=tuple(
            float(_SERVICE_WEIGHTS.get(catalog.services[s].key, 10)) for s in service_ids
        ),
    )


def _archetypes(rng: random.Random, clients: int) -> list[Archetype]:
    kinds = [kind for kind, _ in _ARCHETYPE_SHARES]
    weights = [share for _, share in _ARCHETYPE_SHARES]
    return rng.choices(kinds, weights, k=clients)


def _rows(world: _World, persons: list[_Person]) -> _Rows:
    """Client, visit and feedback rows with ids in order of creation."""
    ids = _Identities(world.rng)
    people: list[tuple[int, dict[str, Any], list[tuple[int, dict[str, Any]]]]] = []
    for person in persons:
        client = _client_row(world, ids, person)
        visit_rows = _visit_rows(world, person, client)
        if visit_rows:
            created = min(booked for booked, _ in visit_rows)
            client["last_inbound_at"] = _instant(max(booked for booked, _ in visit_rows))
        else:  # no room left in the diary: a prospect who registered and never booked
            span = max(world.now - world.period_start, 1)
            created = world.period_start + world.rng.randrange(span)
        _stamp_created(world.rng, client, created)
        people.append((created, client, visit_rows))

    rows = _Rows()
    people.sort(key=lambda p: p[0])
    all_visits: list[tuple[int, int, dict[str, Any]]] = []
    for client_id, (_, client, visit_rows) in enumerate(people, start=1):
        rows.identities += _identity_rows(client_id, client)
        rows.clients.append({"id": client_id, **client})
        for booked, visit in visit_rows:
            visit["client_id"] = client_id
            all_visits.append((booked, client_id, visit))
    all_visits.sort(key=lambda v: (v[0], v[1], v[2]["starts_at"]))
    for visit_id, (_, _, visit) in enumerate(all_visits, start=1):
        rows.visits.append({"id": visit_id, **visit})
        feedback = _feedback_row(world, visit_id, visit)
        if feedback is not None:
            feedback["id"] = len(rows.feedback) + 1
            rows.feedback.append(feedback)
    rows.loyalty = _loyalty_rows(world, rows.visits)
    return rows


def _loyalty_rows(world: _World, visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the programme's ledger holds since it started (`_LOYALTY_SINCE`): each
    completed visit's stamp or points, as storage/loyalty.py writes them on completion
    (no rewards spent yet, so a regular may have one waiting)."""
    programme = world.config.loyalty
    if programme is None:
        return []
    since = _instant(world.now) - _LOYALTY_SINCE
    rows: list[dict[str, Any]] = []
    for visit in visits:
        if visit["status"] != VisitStatus.completed or visit["completed_at"] < since:
            continue
        paid = visit["paid_amount"] if visit["paid_amount"] is not None else visit["price"]
        earned = earned_by_visit(
            kind=programme.kind, paid=paid, points_percent=programme.points_percent
        )
        if earned <= 0:
            continue
        rows.append(
            {
                "id": len(rows) + 1,
                "client_id": visit["client_id"],
                "kind": LedgerKind.earn,
                "delta": earned,
                "reason": "visit",
                "visit_id": visit["id"],
                "created_at": visit["completed_at"],
                "expires_at": visit["completed_at"] + timedelta(days=programme.valid_days),
            }
        )
    return rows


def _identity_rows(client_id: int, client: dict[str, Any]) -> list[dict[str, Any]]:
    """The client's chats, taken out of their row; they last wrote when they last booked
    (on their main messenger)."""
    chats = client.pop("chats")
    last_inbound = client.pop("last_inbound_at", None)
    return [
        {
            "client_id": client_id,
            "channel": channel,
            "external_id": external_id,
            "verified": True,
            "last_inbound_at": last_inbound if n == 0 else None,
            "unreachable_since": None,
            "created_at": client["created_at"],
        }
        for n, (channel, external_id) in enumerate(chats.items())
    ]


async def _require_empty(connection: AsyncConnection) -> None:
    for table in (Client, Visit):
        count = (await connection.execute(select(func.count()).select_from(table))).scalar_one()
        if count:
            raise ValueError(f"seed_history needs an empty database; {table.__name__} has rows")


def with_more_masters(config: BusinessConfig, copies: int) -> BusinessConfig:
    """The configuration with every master repeated `copies` times (keys `artem-2`, …).

    Three masters cannot serve 100,000 visits in three years without double booking, so the
    benchmark seeds a bigger shop: 8 copies of the demo's masters give room for ~100,000.
    """
    masters = list(config.masters)
    for n in range(2, copies + 1):
        for master in config.masters:
            key = f"{master.key[:20]}-{n}"
            name = f"{master.name} {n}"
            masters.append(
                master.model_copy(update={"key": key, "name": name, "telegram_id": None})
            )
    return config.model_copy(update={"masters": masters})
