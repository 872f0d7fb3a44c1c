"""One planner pass at a busy moment, at 10,000, 100,000 and 1,000,000 clients.

    .venv/bin/python -m bench.planner [--sizes 10000,100000,1000000] [--keep DIR] [--explain]
        [--cold | --evict] [--baseline REF|none] [--workers 2] [--seed 7] [--postgres URL|none]
    .venv/bin/python -m bench.planner --pass-only DB [--explain] [--profile FILE]

1. Per size N, a SQLite file database: the schema by the migrations (`storage.migrate
   .upgrade`, so every index is the app's), the demo barbershop with `with_more_masters`
   (one copy of its three masters per 3,000 clients, at least 8; every master has a Telegram
   chat), N clients and about 10×N visits over three years up to NOW, and an outbox with the
   history a planner running every minute until NOW would have left: reminders, visit checks,
   feedback requests, day plans, care tips, return nudges (and warm offers after them),
   win-backs and birthday offers (about 24 rows per client). Rows are built in plain Python
   by `--workers` processes, each into a file of its own, and copied into the database in
   SQL (journal off during the load, WAL after; the app's indexes dropped for the load and
   made again after), in the formats SQLAlchemy writes (naive UTC `YYYY-MM-DD
   HH:MM:SS.ffffff`, money in kopecks, JSON payloads). The client figures (completed visits,
   last visit, rhythm, next_visit_due) are computed with `personal_rhythm_days` as
   `storage.stats.refresh_client_stats` does, and at N <= 20,000 compared with what it
   writes. Visit ids follow the booking order. 1,000,000 clients take 7-10 minutes and 12 GB.
2. NOW is Tuesday 24 November 2026, 10:00 Moscow: the marketing window opens, so this pass
   plans the day's offers; reminders and feedback around NOW are read (and, planned by the
   earlier passes, deduplicated) as in every minute. One pass, `async with db.transaction()
   as s: await planner.plan(s, NOW)`, is timed in a fresh process (`--pass-only DB`), as
   the first pass after a start, then a second at the same NOW (the dedupe path: nothing
   new). That process first reads the file once into the OS page cache, as a running bot's
   database would be, so the first pass does not depend on what ran before it; its own
   memory is unchanged (`--cold`: not read; `--evict`: the file's pages are dropped from
   the OS page cache first, so the pass reads from the disk). It reports wall seconds and
   the process's CPU seconds, `ru_maxrss` before the passes (imports, engine, catalog) and
   after each, the rows planned per kind and the slowest SQL statements of each pass
   (`--explain`: with their query plans; `--profile`: a cProfile of pass 1).
3. The baseline: the same two passes, on the same database, in a fresh process running the
   app's code of `--baseline REF` (default: the commit where this branch left main;
   exported with `git archive`; the database is this code's, so the baseline's tables must
   be a subset of it); the table gives its seconds and its time over this code's.
4. A table per size, the growth ratios, the goals (100,000 clients: every pass <= 0.7 s and
   <= 150 MB; 1,000,000: the first pass, cold, <= 7 s and <= 300 MB) with whether each is
   met, the load average before and after each run (others share the machine), and the
   commit of the app code measured (others may be editing it meanwhile).

5. With a PostgreSQL server (`--postgres URL`, or `REGULARS_BENCH_POSTGRES` /
   `REGULARS_TEST_POSTGRES`; bench/postgres.py): per size, the file's rows copied into a
   fresh database there (after the SQLite passes, which leave the file as seeded), read
   into the OS page cache (pg_prewarm), and the same two passes in a fresh process; then a
   table with both back-ends side by side and the goals (stated for SQLite). The peak RSS is
   the planner's process, the server's memory is not in it; no baseline there. Only the
   sizes of `--postgres-sizes` (10,000 and 100,000) run there: 1,000,000 clients only when
   asked (`--postgres-sizes 1000000`), the copy takes long too.

`--keep DIR` keeps the databases (`DIR/planner-N.db`) and reuses them on the next run; the
rows a pass planned are deleted afterwards, so a kept database stays as seeded (re-seed
after a schema change: the seeding copies the schema of its time). The visits ignore the
masters' diaries (two visits of one master may overlap): the planner does not look at that,
and it keeps the generator fast.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import multiprocessing
import os
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from bisect import bisect
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from bench import postgres
from bot.config import load_business_config
from bot.tools.demo_history import with_more_masters
from domain.business import BusinessConfig
from domain.people import YEAR_UNKNOWN
from domain.retention import birthday_in_year, in_holdout, personal_rhythm_days
from scheduler.planner import Planner
from storage.catalog import Catalog, load_catalog, sync_catalog
from storage.db import Database, create_engine, sqlite_url_for
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "business.example.toml"
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # Tuesday, 10:00 in Moscow
YEARS_DAYS = 3 * 365
CLIENTS_PER_COPY = 3_000
MIN_COPIES = 8
STAFF_CHAT = 7_000_000_000
CLIENT_CHAT = 1_000_000_000
UNIX_EPOCH_MINUTE = date(1970, 1, 1).toordinal() * 1440
CHUNK = 20_000  # clients generated and written at a time
# The goals: at 100,000 clients every pass (the first after a start included) within
# 0.7 s and 150 MB; at 1,000,000 the first pass, cold, within 7 s and 300 MB.
GOALS: dict[int, tuple[float, float, str]] = {
    100_000: (0.7, 150.0, "every pass"),
    1_000_000: (7.0, 300.0, "the first pass"),
}
VERIFY_UP_TO = 20_000
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)

_FIRST_NAMES = (
    "Александр", "Алексей", "Андрей", "Антон", "Артём", "Вадим", "Виктор", "Владимир",
    "Глеб", "Дмитрий", "Евгений", "Егор", "Иван", "Игорь", "Илья", "Кирилл", "Максим",
    "Михаил", "Никита", "Олег", "Павел", "Роман", "Сергей", "Тимур", "Анна", "Мария",
)  # fmt: skip
_SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
)  # fmt: skip
_NOTES = ("Не любит разговоры во время стрижки", "Виски машинкой на 3 мм", "Кофе без сахара")
_CANCEL_REASONS = ("Заболел", "Изменились планы", "Задержали на работе")
_SERVICE_WEIGHTS = {"haircut": 40, "fade": 20, "combo": 15, "beard": 12, "kids": 7, "shave": 6}
# How long before the start a visit was booked, in minutes (0: a walk-in).
_LEADS = (0, 0, 120, 360, 1200, 2880, 7200, 17280)

# The generated client rows still carry the chats as columns (_STAGE_CLIENT_COLUMNS); the
# load splits them into client and client_identity (_CLIENT_COLUMNS, _IDENTITY_INSERT).
_STAGE_CLIENT_COLUMNS = (
    "id", "name", "phone", "telegram_id", "whatsapp_id", "preferred_channel", "locale",
    "birthday", "source", "referral_code", "referred_by_id", "staff_notes",
    "favourite_master_id", "preferred_time_of_day", "preference_note", "consent_at",
    "marketing_opt_in_at", "marketing_opt_out_at", "unreachable_since",
    "telegram_unreachable_at", "whatsapp_unreachable_at", "last_inbound_telegram_at",
    "last_inbound_whatsapp_at", "holdout", "created_at", "deleted_at", "completed_visits",
    "last_visit_at", "last_service_id", "last_master_id", "rhythm_days", "next_visit_due",
    "nudge_snoozed_until",
)  # fmt: skip
_CHAT_COLUMNS = (
    "telegram_id", "whatsapp_id", "telegram_unreachable_at", "whatsapp_unreachable_at",
    "last_inbound_telegram_at", "last_inbound_whatsapp_at",
)  # fmt: skip
_CLIENT_COLUMNS = tuple(c for c in _STAGE_CLIENT_COLUMNS if c not in _CHAT_COLUMNS)
# The shop's list and the bot gave these numbers: all proven.
_CLIENT_INSERT = (
    f"INSERT INTO client ({', '.join(_CLIENT_COLUMNS)}, phone_verified) "
    f"SELECT {', '.join(_CLIENT_COLUMNS)}, 1 FROM ({{clients}}) ORDER BY id"
)
_IDENTITY_INSERT = (
    "INSERT INTO client_identity (client_id, channel, external_id, verified, last_inbound_at,"
    " unreachable_since, created_at) SELECT id, '{channel}', CAST({channel}_id AS TEXT), 1,"
    " last_inbound_{channel}_at, unreachable_since, created_at FROM ({clients})"
    " WHERE {channel}_id IS NOT NULL ORDER BY id"
)
_VISIT_COLUMNS = (
    "client_id", "master_id", "service_id", "starts_at", "ends_at", "status", "price",
    "paid_amount", "discount", "source", "created_at", "confirmed_at", "cancelled_at",
    "cancel_reason", "completed_at", "comment",
)  # fmt: skip
_OUTBOX_COLUMNS = (
    "id", "kind", "client_id", "staff_id", "channel", "due_at", "dedupe_key", "status",
    "attempts", "last_error", "claimed_at", "sent_at", "payload", "campaign", "created_at",
)  # fmt: skip


def bench_config(copies: int) -> BusinessConfig:
    """The demo barbershop with `copies` copies of its masters, each with a Telegram chat
    (so the staff kinds are planned too)."""
    config = with_more_masters(load_business_config(CONFIG), copies)
    masters = [
        master.model_copy(update={"telegram_id": STAFF_CHAT + n})
        for n, master in enumerate(config.masters)
    ]
    return config.model_copy(update={"masters": masters})


def copies_for(clients: int) -> int:
    return max(MIN_COPIES, math.ceil(clients / CLIENTS_PER_COPY))


# ----------------------------------------------------------------------------- time


class Clock:
    """Minutes since 0001-01-01 00:00 UTC (date ordinals × 1440) and their storage strings.

    Moscow has been UTC+3 all year since 2014: a local minute is the UTC one plus 180.
    """

    def __init__(self, config: BusinessConfig, first_day: int, last_day: int) -> None:
        offsets = {
            datetime.combine(date.fromordinal(day), datetime.min.time(), config.tz).utcoffset()
            for day in (first_day, last_day, NOW.date().toordinal())
        }
        if len(offsets) != 1:
            raise ValueError("the benchmark expects a time zone without daylight saving")
        offset = offsets.pop()
        assert offset is not None
        self.offset = int(offset.total_seconds()) // 60
        self.base = first_day - 40
        self.days = [date.fromordinal(day).isoformat() for day in range(self.base, last_day)]
        self.hours = [f" {m // 60:02d}:{m % 60:02d}:00.000000" for m in range(1440)]
        self.now = NOW.date().toordinal() * 1440 + NOW.hour * 60 + NOW.minute

    def utc(self, minute: int) -> str:
        """The stored form of a UTC minute."""
        day, rest = divmod(minute, 1440)
        return self.days[day - self.base] + self.hours[rest]

    def day(self, ordinal: int) -> str:
        return self.days[ordinal - self.base]

    def at_local(self, ordinal: int, local_minute: int) -> int:
        """The UTC minute of a local day and minute of day."""
        return ordinal * 1440 + local_minute - self.offset


# ----------------------------------------------------------------------------- generator


@dataclass
class World:
    """Everything a chunk of clients is generated from (picklable: workers get a copy)."""

    seed: int
    clients: int
    clock: Clock
    today: int  # local date ordinal of NOW
    first_day: int
    services: tuple[int, ...]
    cumulative: tuple[float, ...]  # service weights, summed up
    price: dict[int, int]  # kopecks
    duration: dict[int, int]
    return_days: dict[int, int]
    tips: frozenset[int]
    channels: dict[tuple[int, int], tuple[int, ...]]  # (service, weekday) -> masters
    starts: dict[tuple[int, int, int], tuple[int, ...]]  # (master, weekday, minutes) -> starts
    doers: dict[int, tuple[int, ...]]  # service -> masters
    holdout_share: float
    sleeping_after: int
    nudge_lead: int
    winbacks: int
    winback_gap: int


def build_world(catalog: Catalog, config: BusinessConfig, seed: int, clients: int) -> World:
    today = NOW.astimezone(config.tz).date().toordinal()
    first = today - YEARS_DAYS
    services = tuple(catalog.services)
    durations = {s.id: s.minutes for s in catalog.services.values()}
    channels: dict[tuple[int, int], list[int]] = {}
    starts: dict[tuple[int, int, int], tuple[int, ...]] = {}
    step = config.booking.slot_step
    for master in catalog.masters.values():
        for weekday in range(7):
            spans = [
                (h.opens.hour * 60 + h.opens.minute, h.closes.hour * 60 + h.closes.minute)
                for h in master.hours
                if h.weekday == weekday
            ]
            for service_id in master.service_ids:
                minutes = durations[service_id]
                grid = tuple(
                    start
                    for opens, closes in spans
                    for start in range(opens, closes - minutes + 1, step)
                )
                if grid:
                    starts[master.id, weekday, minutes] = grid
                    channels.setdefault((service_id, weekday), []).append(master.id)
    weights = [float(_SERVICE_WEIGHTS.get(catalog.services[s].key, 10)) for s in services]
    policy = config.retention
    clock = Clock(config, first, today + 400)
    earliest = min(min(grid) for grid in starts.values()) - clock.offset
    latest = max(max(grid) for grid in starts.values()) + max(durations.values()) - clock.offset
    if earliest < 120 or max(latest + 30, 23 * 60 - clock.offset) + 180 >= 1440:
        raise ValueError("the generator expects visits and their messages on one UTC day")
    return World(
        seed=seed,
        clients=clients,
        clock=clock,
        today=today,
        first_day=first,
        services=services,
        cumulative=tuple(accumulate(weights)),
        price={s.id: int(s.price * 100) for s in catalog.services.values()},
        duration=durations,
        return_days={s.id: s.return_interval_days for s in catalog.services.values()},
        tips=frozenset(s.id for s in catalog.services.values() if s.care_tip),
        channels={key: tuple(value) for key, value in channels.items()},
        starts=starts,
        doers={
            s: tuple(m.id for m in catalog.masters.values() if s in m.service_ids) for s in services
        },
        holdout_share=policy.holdout_share,
        sleeping_after=policy.sleeping_after_days,
        nudge_lead=policy.nudge_lead_days,
        winbacks=policy.winback_max_per_dormancy,
        winback_gap=policy.winback_gap_days,
    )


@dataclass
class Batch:
    """One chunk of clients: client rows, staged visits (the visit's columns, then the
    client's channel and when each history row of the visit was due) and offers."""

    clients: list[tuple[Any, ...]] = field(default_factory=list)
    visits: list[tuple[Any, ...]] = field(default_factory=list)
    offers: list[tuple[Any, ...]] = field(default_factory=list)


def chunk(w: World, number: int) -> Batch:
    """Clients number × CHUNK + 1 … (in the order they appeared), from a random generator
    of their own: the rows do not depend on how many workers generate them."""
    rng = random.Random(w.seed * 1_000_003 + number)
    batch = Batch()
    for client_id in range(number * CHUNK + 1, min(w.clients, (number + 1) * CHUNK) + 1):
        _client(w, rng, client_id, batch)
    return batch


def _schedule(rng: random.Random, join: int, today: int) -> list[int]:
    """The local days a client came, and at most one day they will come."""
    rand = rng.random
    since = today - join
    roll = rand()
    if roll < 0.03:
        return []  # registered, never booked
    if since < 30:  # a newcomer: the first visit, sometimes a second one
        days = [join, join + 21 + int(rand() * 20)] if rand() < 0.5 else [join]
    elif roll < 0.20:
        return [join]  # came once
    elif roll < 0.41 and since > 150:  # a regular who stopped coming
        stop = join + 30 + int(rand() * (since - 30))
        return [day for day in _rhythm(rand, join, 18 + int(rand() * 28), today) if day <= stop]
    else:
        every = 55 + int(rand() * 66) if roll < 0.54 else 16 + int(rand() * 21)
        days = _rhythm(rand, join, every, today)
    future = [day for day in days if day >= today]
    return [day for day in days if day < today] + future[:1]


def _rhythm(rand: Any, start: int, days: int, today: int) -> list[int]:
    result = [start]
    while result[-1] < today:
        result.append(result[-1] + max(7, round(days * (0.8 + 0.65 * rand()))))
    return result


def _place(
    w: World, rand: Any, day: int, service: int, favourite: int | None
) -> tuple[int, int, int] | None:
    """(day, master, UTC start) near `day`, in a master's hours; a future visit stays in the
    future and a past one in the past."""
    minutes = w.duration[service]
    today, now = w.today, w.clock.now
    for shift in (0, 1, 2, -1):
        when = day + shift
        if (when < today) != (day < today):
            continue
        weekday = (when - 1) % 7
        masters = w.channels.get((service, weekday))
        if not masters:
            continue
        # The favourite does this service (see _client): a grid that day means they work.
        grid = w.starts.get((favourite, weekday, minutes)) if favourite else None
        if favourite is not None and grid and rand() < 0.75:
            master = favourite
        else:
            master = masters[int(rand() * len(masters))]
            grid = w.starts[master, weekday, minutes]
        if when == today:
            grid = tuple(m for m in grid if w.clock.at_local(when, m) > now)
            if not grid:
                continue
        return when, master, w.clock.at_local(when, grid[int(rand() * len(grid))])
    return None


def _client(w: World, rng: random.Random, client_id: int, batch: Batch) -> None:
    rand, clock, now, today = rng.random, w.clock, w.clock.now, w.today
    utc = clock.utc
    # A growing shop: the join date's density rises over the years (CDF (x + x²) / 2).
    share = (client_id - 1 + rand()) / w.clients
    join = w.first_day + int((YEARS_DAYS + 7) * (math.sqrt(1 + 8 * share) - 1) / 2)
    telegram = rand() < 0.85
    phone = f"+7916{client_id:07d}"
    whatsapp = None if telegram or rand() >= 0.6 else phone[1:]
    channel = "telegram" if telegram else "whatsapp" if whatsapp else None
    consent = channel is not None and rand() < 0.96
    opted_in = consent and rand() < 0.65
    opted_out = opted_in and rand() < 0.04
    unreachable = rand() < 0.02
    deleted = rand() < 0.003
    reachable = consent and not unreachable and not deleted
    offers = reachable and opted_in and not opted_out

    main = w.services[bisect(w.cumulative, rand() * w.cumulative[-1])]
    doers = w.doers[main]
    favourite = doers[int(rand() * len(doers))] if doers else None
    placed: list[tuple[int, int, int, int, int, int, str]] = []
    for day in _schedule(rng, join, today):
        if day > today + 13:
            continue  # booked at most 12 days ahead: not yet
        service = main if rand() < 0.8 else w.services[int(rand() * len(w.services))]
        spot = _place(w, rand, day, service, favourite if service == main else None)
        if spot is None:
            continue
        when, master, start = spot
        lead = _LEADS[int(rand() * len(_LEADS))]
        created = start - lead - int(rand() * 10)
        if start > now:
            if created > now - 5:
                continue  # not booked yet
            status = "confirmed" if start - now < 2880 and rand() < 0.5 else "booked"
        else:
            roll = rand()
            status = "completed" if roll >= 0.11 else "no_show" if roll < 0.04 else "cancelled"
        placed.append((when, master, service, start, start + w.duration[service], created, status))

    created = (
        min(p[5] for p in placed)
        if placed
        else clock.at_local(min(join, today - 1), 600) + int(rand() * 600)
    )
    source = channel or "staff"
    days, hours, base, tips = clock.days, clock.hours, clock.base, w.tips
    for when, master, service, start, end, booked, status in placed:
        # A visit, its end, completion and history rows fall on its UTC day (build_world
        # checks), so their strings share the day's; "" stands for NULL in the stage.
        number, minute = divmod(start, 1440)
        ymd = days[number - base]
        midnight = number * 1440
        price = w.price[service]
        completed = cancelled = 0
        paid: int | str = ""
        completed_at = cancelled_at = confirmed_at = reason = ""
        if status == "completed":
            completed = end + int(rand() * 30) if rand() < 0.75 else clock.at_local(when, 1380)
            completed_at, paid = ymd + hours[completed - midnight], price
        elif status == "cancelled":
            cancelled = booked + int((start - booked) * (0.3 + 0.68 * rand()))
            cancelled_at, reason = utc(cancelled), _CANCEL_REASONS[client_id % 3]
        elif status == "confirmed":
            confirmed_at = utc(max(booked, now - 1 - int(rand() * 599)))
        # What the planner, running every minute until NOW, planned for this visit.
        r24 = r2 = feedback = check = tip = ""
        if reachable:
            due = start - 1440
            if booked <= due < now and (not cancelled or cancelled > due):
                r24 = days[number - 1 - base] + hours[minute]
            due = start - 120
            if booked <= due < now and (not cancelled or cancelled > due):
                r2 = ymd + hours[minute - 120]
            if completed and completed + 180 < now:
                feedback = ymd + hours[completed + 180 - midnight]
        if end + 60 < now and (status == "no_show" or completed > end + 60):
            check = ymd + hours[end + 60 - midnight]
        if offers and completed and service in tips and start + 10080 < now and rand() < 0.75:
            tip = days[number + 7 - base] + hours[minute]  # 25%: on a capped ymd, none
        batch.visits.append(
            (
                client_id,
                master,
                service,
                ymd + hours[minute],
                ymd + hours[end - midnight],
                status,
                price,
                paid,
                "walk-in" if booked > start - 10 else source,
                utc(booked),
                confirmed_at,
                cancelled_at,
                reason,
                completed_at,
                channel or "",
                r24,
                r2,
                feedback,
                check,
                tip,
                start - UNIX_EPOCH_MINUTE,  # the reminder keys name the visit's start
            )
        )

    # The figures, as storage.stats.refresh_client_stats computes them.
    done = [p for p in placed if p[6] == "completed"]
    figures: tuple[Any, ...] = (0, None, None, None, None, None)
    last_day = due_day = None
    if done:
        last = done[-1]
        rhythm = personal_rhythm_days(
            [date.fromordinal(p[0]) for p in done[-6:]], w.return_days.get(last[2], 30)
        )
        last_day, due_day = last[0], last[0] + rhythm
        figures = (len(done), utc(last[3]), last[2], last[1], rhythm, clock.day(due_day))
    sleeping = last_day is not None and last_day < today - w.sleeping_after
    snoozed = None
    if due_day is not None and not sleeping and rand() < 0.015:
        snoozed = clock.day(today + 1 + int(rand() * 14))
    holdout = in_holdout(phone, w.holdout_share)
    birthday = None
    if rand() < 0.7:
        year = YEAR_UNKNOWN if rand() < 0.1 else 2026 - 18 - int(rand() * 45)
        birthday = date.fromordinal(date(year, 1, 1).toordinal() + int(rand() * 365))
    later = created + int(rand() * max(1, now - created))
    last_inbound = utc(max(p[5] for p in placed)) if placed else utc(created)
    batch.clients.append(
        (
            client_id,
            _FIRST_NAMES[int(rand() * len(_FIRST_NAMES))]
            + ("" if rand() < 0.3 else " " + _SURNAMES[int(rand() * len(_SURNAMES))]),
            phone,
            CLIENT_CHAT + client_id if telegram else None,
            whatsapp,
            channel,
            "ru",
            None if birthday is None else birthday.isoformat(),
            source,
            None,
            None,
            "",
            favourite if rand() < 0.3 else None,
            None,
            _NOTES[client_id % 3] if rand() < 0.2 else "",
            utc(created) if consent else None,
            utc(created) if opted_in else None,
            utc(later) if opted_out else None,
            utc(later) if unreachable else None,
            None,
            None,
            last_inbound if telegram else None,
            last_inbound if whatsapp else None,
            int(holdout),
            utc(created),
            utc(later) if deleted else None,
            *figures,
            snoozed,
        )
    )
    if offers:
        _offers(w, rand, batch, client_id, channel, holdout, birthday, last_day, due_day)


def _offers(
    w: World,
    rand: Any,
    batch: Batch,
    client_id: int,
    channel: str | None,
    holdout: bool,
    birthday: date | None,
    last_day: int | None,
    due_day: int | None,
) -> None:
    """The offers the planner made to this client on earlier days (at 10:00 local); warm
    offers follow in SQL, as they depend on the nudge's id."""
    clock, today = w.clock, w.today

    def offer(kind: str, day: int, key: str, payload: str, *, held: bool = False) -> None:
        due = clock.at_local(day, 600) + int(rand() * 20)
        planned, sent = clock.utc(due), None if held else clock.utc(due + 1)
        status = "held_out" if held else "sent"
        attempts = 0 if held else 1
        head = (kind, client_id, None, None if held else channel, planned, key, status)
        batch.offers.append((*head, attempts, None, sent, sent, payload, kind, planned))

    if last_day is None or due_day is None:
        pass
    elif last_day >= today - w.sleeping_after:
        nudged = due_day - w.nudge_lead
        if today - 30 <= nudged < today and nudged > last_day and rand() < 0.85:
            predicted = clock.day(due_day)
            key = f"return_nudge:client:{client_id}:{predicted}"
            offer("return_nudge", nudged, key, f'{{"predicted": "{predicted}"}}')
    else:
        dormancy = clock.day(last_day)
        for number in range(1, w.winbacks + 1):
            day = last_day + w.sleeping_after + 1 + (number - 1) * w.winback_gap
            if day >= today:
                break
            key = f"winback:{number}:client:{client_id}:{dormancy}"
            offer("winback", day, key, f'{{"number": {number}}}', held=holdout)
    if birthday is not None:
        year = date.fromordinal(today).year
        day = birthday_in_year(birthday, year).toordinal()
        if today - 30 <= day < today:
            offer("birthday", day, f"birthday:{year}:client:{client_id}", "{}")


def _day_plans(w: World, catalog: Catalog, before: int) -> Iterator[tuple[Any, ...]]:
    """A day plan to every master with a chat, every working day up to today."""
    clock = w.clock
    for master in catalog.masters.values():
        opening: dict[int, int] = {}
        for h in master.hours:
            minute = h.opens.hour * 60 + h.opens.minute
            opening[h.weekday] = min(minute, opening.get(h.weekday, minute))
        for day in range(w.first_day, w.today + 1):
            opens = opening.get((day - 1) % 7)
            if opens is None or clock.at_local(day, opens - before) >= clock.now:
                continue
            planned = clock.utc(clock.at_local(day, opens - before))
            payload = f'{{"day": "{clock.day(day)}"}}'
            key = f"staff_day_plan:{clock.day(day)}:staff:{master.id}"
            head = ("staff_day_plan", None, master.id, "telegram", planned, key, "sent")
            yield (*head, 1, None, planned, planned, payload, None, planned)


def generate_into(w: World, path: Path, numbers: Sequence[int]) -> None:
    """Write the clients, staged visits and offers of these chunks into a database file of
    their own (one per worker process: SQLite takes one writer at a time)."""
    gc.disable()
    sqlite3.register_adapter(type(None), _none)  # binds NULL without the slow lookup
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(f"CREATE TABLE client ({', '.join(_STAGE_CLIENT_COLUMNS)})")
        db.execute(f"CREATE TABLE stage ({', '.join(_STAGE_COLUMNS)})")
        db.execute(f"CREATE TABLE offers ({', '.join(_OUTBOX_COLUMNS[1:])})")
        db.execute("BEGIN")
        for number in numbers:
            batch = chunk(w, number)
            db.executemany(_insert("client", _STAGE_CLIENT_COLUMNS), batch.clients)
            db.executemany(_insert("stage", _STAGE_COLUMNS), batch.visits)
            db.executemany(_insert("offers", _OUTBOX_COLUMNS[1:]), batch.offers)
            if (number + 1) * CHUNK % 100_000 == 0:
                log(f"    {(number + 1) * CHUNK:,} clients generated")
        db.execute("COMMIT")


def _none(_value: None) -> None:
    return None


def generate(w: World, paths: Sequence[Path]) -> None:
    """Chunk k goes to worker k mod len(paths); each worker is a process of its own."""
    count = math.ceil(w.clients / CHUNK)
    shares = [range(k, count, len(paths)) for k in range(len(paths))]
    if len(paths) == 1:
        generate_into(w, paths[0], shares[0])
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=generate_into, args=(w, path, share))
        for path, share in zip(paths, shares, strict=True)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    if any(process.exitcode for process in processes):
        raise RuntimeError("a generating process failed")


# The visit's columns but discount and comment (always NULL and ""), then the client's
# channel and when each history row of the visit was due; "" stands for NULL.
_STAGE_COLUMNS = (
    *(c for c in _VISIT_COLUMNS if c not in ("discount", "comment")),
    *("channel", "r24", "r2", "feedback", "checked", "tip", "unix_minute"),
)
_STAGE_TO_VISIT = ", ".join(
    "NULL" if c == "discount" else "''" if c == "comment" else f"NULLIF({c}, '')"
    for c in _VISIT_COLUMNS
)
_OUTBOX_INSERT = (
    "INSERT INTO outbox (kind, client_id, staff_id, channel, due_at, dedupe_key, status, "
    "attempts, last_error, claimed_at, sent_at, payload, campaign, created_at) "
)
# The history rows of the visits. `st.sorted` holds the staged visits in booking order: its
# rowid is the visit's id.
_HISTORY = {
    "reminders 24 h": (
        "SELECT 'reminder', client_id, NULL, NULLIF(channel, ''), r24, "
        "'reminder:24h:visit:' || rowid || ':' || unix_minute, "
        "'sent', 1, NULL, r24, r24, '{\"visit_id\": ' || rowid || ', \"hours\": 24}', NULL, r24 "
        "FROM st.sorted WHERE r24 != ''"
    ),
    "reminders 2 h": (
        "SELECT 'reminder', client_id, NULL, NULLIF(channel, ''), r2, "
        "'reminder:2h:visit:' || rowid || ':' || unix_minute, "
        "'sent', 1, NULL, r2, r2, '{\"visit_id\": ' || rowid || ', \"hours\": 2}', NULL, r2 "
        "FROM st.sorted WHERE r2 != ''"
    ),
    "feedback requests": (
        "SELECT 'feedback_request', client_id, NULL, NULLIF(channel, ''), feedback, "
        "'feedback:visit:' || rowid, 'sent', 1, NULL, feedback, feedback, "
        "'{\"visit_id\": ' || rowid || '}', NULL, feedback FROM st.sorted "
        "WHERE feedback != ''"
    ),
    "visit checks": (
        "SELECT 'visit_check', NULL, master_id, 'telegram', checked, "
        "'visit_check:visit:' || rowid, 'sent', 1, NULL, checked, checked, "
        "'{\"visit_id\": ' || rowid || '}', NULL, checked FROM st.sorted "
        "WHERE checked != ''"
    ),
    "care tips": (
        "SELECT 'care_tip', client_id, NULL, NULLIF(channel, ''), tip, 'care_tip:visit:' || rowid, "
        "'sent', 1, NULL, tip, tip, '{\"visit_id\": ' || rowid || '}', 'care_tip', tip "
        "FROM st.sorted WHERE tip != ''"
    ),
}
# A warm offer went out ten days after a nudge that led to no booking (80%: the rest fell
# on a capped day).
_WARM_OFFERS = (
    _OUTBOX_INSERT + "SELECT 'warm_offer', n.client_id, NULL, n.channel, n.due, "
    "'warm_offer:client:' || n.client_id || ':nudge:' || n.id, 'sent', 1, NULL, n.due, n.due, "
    "'{}', 'warm_offer', n.due FROM (SELECT id, client_id, channel, sent_at, "
    "datetime(due_at, :after) || '.000000' AS due FROM outbox WHERE kind = 'return_nudge') n "
    "WHERE n.due < :now AND (n.id * 2654435761) % 100 < 80 AND NOT EXISTS (SELECT 1 FROM visit "
    "v WHERE v.client_id = n.client_id AND v.created_at > n.sent_at) ORDER BY n.due"
)


# ----------------------------------------------------------------------------- seeding


@dataclass
class Seeded:
    clients: int
    visits: int
    outbox: int
    copies: int
    seconds: float
    megabytes: float
    mix: dict[str, int] = field(default_factory=dict)
    indexes: list[str] = field(default_factory=list)  # on client, visit, outbox: the app's


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _prepare(path: Path, config: BusinessConfig) -> Catalog:
    url = sqlite_url_for(str(path))
    await upgrade(url)
    db = Database(create_engine(url))
    try:
        async with db.transaction() as session:
            await sync_catalog(session, config)
        async with db.reading() as session:
            return await load_catalog(session, config)
    finally:
        await db.dispose()


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def seed(path: Path, clients: int, seed_value: int = 7, workers: int = 2) -> Seeded:
    started = time.perf_counter()
    copies = copies_for(clients)
    config = bench_config(copies)
    catalog = asyncio.run(_prepare(path, config))
    world = build_world(catalog, config, seed_value, clients)
    parts = [path.with_name(f"{path.name}.part{k}") for k in range(max(1, workers))]
    scratch = path.with_name(path.name + ".sorted")
    for stale in (*parts, scratch):
        stale.unlink(missing_ok=True)
    try:
        generate(world, parts)
        _phase(started, f"{clients:,} clients generated")
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            visits = _load(db, world, catalog, config, parts, scratch, started)
            mix = _mix(db, world)
            outbox = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            indexes = [
                f"{table}({name})"
                for table, name in db.execute(
                    "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS "
                    "NOT NULL AND tbl_name IN ('client', 'visit', 'outbox') ORDER BY 1, 2"
                )
            ]
            if clients <= VERIFY_UP_TO:
                problems = db.execute("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise RuntimeError(f"foreign key problems: {problems[:5]}")
            db.execute("PRAGMA locking_mode=NORMAL")
            db.execute("PRAGMA journal_mode=WAL")
    finally:
        for stale in (*parts, scratch):
            stale.unlink(missing_ok=True)
    if clients <= VERIFY_UP_TO:
        checked = asyncio.run(_verify_figures(path, config, catalog))
        log(f"  figures match storage.stats.refresh_client_stats for {checked:,} clients")
    return Seeded(
        clients=clients,
        visits=visits,
        outbox=outbox,
        copies=copies,
        seconds=time.perf_counter() - started,
        megabytes=path.stat().st_size / 2**20,
        mix=mix,
        indexes=indexes,
    )


def _load(
    db: sqlite3.Connection,
    world: World,
    catalog: Catalog,
    config: BusinessConfig,
    parts: Sequence[Path],
    scratch: Path,
    started: float,
) -> int:
    """Copy the workers' rows into the app's tables, visits in booking order, then write
    the outbox history; the app's indexes are dropped for the load and made again after."""
    names = [f"p{k}" for k in range(len(parts))]
    for name, part in zip(names, parts, strict=True):
        db.execute(f"ATTACH DATABASE ? AS {name}", (str(part),))
    db.execute("ATTACH DATABASE ? AS st", (str(scratch),))
    for pragma in (
        "journal_mode=OFF",
        "st.journal_mode=OFF",
        "synchronous=OFF",
        "st.synchronous=OFF",
        "locking_mode=EXCLUSIVE",
        "cache_size=-1000000",
        "secure_delete=OFF",
        "threads=2",
        "foreign_keys=OFF",
    ):
        db.execute(f"PRAGMA {pragma}")
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('client', 'client_identity', 'visit', 'outbox')"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')

    def union(table: str) -> str:
        return " UNION ALL ".join(f"SELECT * FROM {name}.{table}" for name in names)

    db.execute("BEGIN")
    db.execute(_CLIENT_INSERT.format(clients=union("client")))
    for channel in ("telegram", "whatsapp"):
        db.execute(_IDENTITY_INSERT.format(channel=channel, clients=union("client")))
    outbox_columns = ", ".join(_OUTBOX_COLUMNS[1:])
    db.execute(
        f"INSERT INTO outbox ({outbox_columns}) SELECT * FROM ({union('offers')}) ORDER BY due_at"
    )
    before = config.retention.day_plan_before_opening_minutes
    db.executemany(_insert("outbox", _OUTBOX_COLUMNS[1:]), _day_plans(world, catalog, before))
    db.execute("COMMIT")
    _phase(started, "clients, offers and day plans written")
    db.execute(
        f"CREATE TABLE st.sorted AS SELECT * FROM ({union('stage')}) "
        "ORDER BY created_at, client_id, starts_at"
    )
    for name in names:
        db.execute(f"DETACH DATABASE {name}")
    for part in parts:
        part.unlink()
    _phase(started, "visits sorted in booking order")
    columns = ", ".join(_VISIT_COLUMNS)
    db.execute("BEGIN")
    db.execute(f"INSERT INTO visit (id, {columns}) SELECT rowid, {_STAGE_TO_VISIT} FROM st.sorted")
    db.execute("COMMIT")
    visits = int(db.execute("SELECT max(id) FROM visit").fetchone()[0] or 0)
    _phase(started, "visits written")
    for name, sql in indexes:
        if not name.startswith("ix_outbox"):
            db.execute(sql)
    _phase(started, "client and visit indexes")
    db.execute("BEGIN")
    db.execute(  # while the outbox holds the offers and day plans only: a short scan
        _WARM_OFFERS,
        {
            "after": f"+{config.retention.warm_offer_after_days} days",
            "now": world.clock.utc(world.clock.now),
        },
    )
    _phase(started, "outbox: warm offers")
    for label, select in _HISTORY.items():
        db.execute(_OUTBOX_INSERT + select)
        _phase(started, f"outbox: {label}")
    db.execute("COMMIT")
    db.execute("DETACH DATABASE st")
    for name, sql in indexes:
        if name.startswith("ix_outbox"):
            db.execute(sql)
    _phase(started, "outbox indexes")
    return visits


def _phase(started: float, what: str) -> None:
    log(f"  {time.perf_counter() - started:7.1f} s  {what}")


def _mix(db: sqlite3.Connection, w: World) -> dict[str, int]:
    """What the seeded database holds that the planner looks at."""
    clock, today, lead = w.clock, w.today, w.nudge_lead
    now = clock.utc(clock.now)
    sleeping_since = clock.utc(clock.at_local(today - w.sleeping_after, 0))
    md = date.fromordinal(today).strftime("%m-%d")
    queries = {
        "marketing allowed": (
            "SELECT count(*) FROM client WHERE deleted_at IS NULL AND unreachable_since IS "
            "NULL AND consent_at IS NOT NULL AND EXISTS (SELECT 1 FROM client_identity i "
            "WHERE i.client_id = client.id AND i.unreachable_since IS NULL) "
            "AND marketing_opt_in_at IS NOT NULL AND (marketing_opt_out_at IS NULL "
            "OR marketing_opt_out_at < marketing_opt_in_at)"
        ),
        "sleeping": f"SELECT count(*) FROM client WHERE last_visit_at < '{sleeping_since}'",
        "nudge window (due -14..+3 d)": (
            "SELECT count(*) FROM client WHERE next_visit_due > "
            f"'{clock.day(today - 14)}' AND next_visit_due <= '{clock.day(today + lead)}'"
        ),
        "next visit due in 3 days": (
            f"SELECT count(*) FROM client WHERE next_visit_due = '{clock.day(today + lead)}'"
        ),
        "birthday today": (
            f"SELECT count(*) FROM client WHERE strftime('%m-%d', birthday) = '{md}'"
        ),
        "booked in the next 24 h": (
            "SELECT count(*) FROM visit WHERE status IN ('booked', 'confirmed') "
            f"AND starts_at > '{now}' AND starts_at <= '{clock.utc(clock.now + 1440)}'"
        ),
        "booked later": (
            "SELECT count(*) FROM visit WHERE status IN ('booked', 'confirmed') "
            f"AND starts_at > '{clock.utc(clock.now + 1440)}'"
        ),
        "completed in the last day": (
            "SELECT count(*) FROM visit WHERE status = 'completed' "
            f"AND completed_at > '{clock.utc(clock.now - 1440)}'"
        ),
        "outbox marketing last 30 d": (
            "SELECT count(*) FROM outbox WHERE campaign IS NOT NULL "
            f"AND due_at > '{clock.utc(clock.now - 30 * 1440)}'"
        ),
        "return nudges sent 10-17 d ago": (
            "SELECT count(*) FROM outbox WHERE kind = 'return_nudge' AND sent_at > "
            f"'{clock.utc(clock.now - 17 * 1440)}' AND sent_at <= "
            f"'{clock.utc(clock.now - 10 * 1440)}'"
        ),
    }
    return {label: db.execute(sql).fetchone()[0] for label, sql in queries.items()}


class _RollBack(Exception):
    pass


async def _verify_figures(path: Path, config: BusinessConfig, catalog: Catalog) -> int:
    """Recompute the figures with the app's own code and compare (then roll back)."""
    from storage.stats import refresh_client_stats

    columns = (
        "id, completed_visits, last_visit_at, last_service_id, last_master_id, rhythm_days, "
        "next_visit_due"
    )
    db = Database(create_engine(sqlite_url_for(str(path))))
    try:
        async with db.transaction() as session:
            connection = await session.connection()
            before = (await connection.execute(text(f"SELECT {columns} FROM client"))).all()
            await refresh_client_stats(
                session=session,
                tz=config.tz,
                return_days={s.id: s.return_interval_days for s in catalog.services.values()},
            )
            after = (await connection.execute(text(f"SELECT {columns} FROM client"))).all()
            raise _RollBack
    except _RollBack:
        pass
    finally:
        await db.dispose()
    differ = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    if differ:
        raise RuntimeError(f"{len(differ)} clients' figures differ, e.g. {differ[:3]}")
    return len(before)


# ----------------------------------------------------------------------------- the pass


# An IN list's placeholders, SQLite's (?, ?, …) and asyncpg's ($1::INTEGER, $2::INTEGER, …).
_FOLD = re.compile(r"\?(, \?)+|\$\d+(::\w+)?(, \$\d+(::\w+)?)+")


@dataclass
class SqlLog:
    """Time and count per statement (IN lists folded), with one set of parameters each."""

    seconds: dict[str, float] = field(default_factory=dict)
    count: Counter[str] = field(default_factory=Counter)
    sample: dict[str, tuple[str, Any]] = field(default_factory=dict)
    _started: float = 0.0

    def attach(self, db: Database) -> None:
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(db.engine.sync_engine, "after_cursor_execute", self._after)

    def reset(self) -> None:
        self.seconds.clear()
        self.count.clear()

    def _before(self, *_args: Any) -> None:
        self._started = time.perf_counter()

    def _after(
        self,
        _conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        key = _FOLD.sub("?…", " ".join(statement.split()))
        self.seconds[key] = self.seconds.get(key, 0.0) + elapsed
        self.count[key] += 1
        self.sample.setdefault(key, (statement, parameters))

    def top(self, n: int) -> list[tuple[str, float, int]]:
        ranked = sorted(self.seconds.items(), key=lambda item: -item[1])[:n]
        return [(key, seconds, self.count[key]) for key, seconds in ranked]


def maxrss_mb() -> float:
    """The process's peak RSS. Linux keeps the larger of the parent's across fork and exec,
    so the benchmark starts its passes from a parent that seeds nothing itself."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hwm_mb() -> float:
    """The peak RSS of this process image alone (VmHWM: reset by exec), as a check."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return float("nan")
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else float("nan")


def warm_os_cache(path: Path) -> float:
    """Read the database file once, so the pass finds its pages in the OS page cache as a
    running bot's would (not in this process's memory: its peak RSS is unchanged).
    Otherwise the first pass's time depends on what ran before it. Returns the seconds."""
    started = time.perf_counter()
    buffer = bytearray(1 << 20)
    for part in (path, path.with_name(path.name + "-wal")):
        if part.exists():
            with part.open("rb", buffering=0) as file:
                while file.readinto(buffer):
                    pass
    return time.perf_counter() - started


def evict_os_cache(path: Path) -> None:
    """Drop the database file's pages from the OS page cache (this file's only, no other
    process's), so the next pass reads what it needs from the disk: a cold start."""
    for part in (path, path.with_name(path.name + "-wal")):
        if part.exists():
            with part.open("rb+") as file:
                os.fsync(file.fileno())  # only clean pages can be dropped
                os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


async def run_passes(
    path: Path,
    copies: int,
    *,
    explain: bool,
    restore: bool,
    profile: Path | None = None,
    warm: bool = True,
    database_url: str | None = None,
) -> dict[str, Any]:
    """The two passes on the SQLite file, or on the PostgreSQL database at `database_url`
    (a copy of the file, dropped afterwards: nothing to restore)."""
    on_postgres = database_url is not None
    warmed: float | None = None
    report: dict[str, Any] = {}
    if warm and database_url is not None:
        report["prewarm"] = await postgres.prewarm(database_url)
    elif warm:
        warmed = warm_os_cache(path)
    config = bench_config(copies)
    # As `regulars run` makes it: WAL checkpoints in the background, not in the commits.
    db = Database(
        create_engine(database_url or sqlite_url_for(str(path)), background_checkpoints=True)
    )
    sql = SqlLog()
    try:
        async with db.reading() as session:
            catalog = await load_catalog(session, config)
            connection = await session.connection()
            outbox = await connection.execute(text("SELECT coalesce(max(id), 0) FROM outbox"))
            last_id = outbox.scalar_one()
        planner = Planner(config=config, catalog=catalog)
        sql.attach(db)
        report |= {"baseline_mb": maxrss_mb(), "baseline_hwm_mb": hwm_mb()}
        report["warmed_seconds"] = warmed
        report["passes"] = []
        for number in range(2):
            sql.reset()
            profiler = cProfile.Profile() if profile and number == 0 else None
            started, cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            async with db.transaction() as session:
                result = await planner.plan(session, NOW)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            if profiler:
                profiler.disable()
                profiler.dump_stats(str(profile))
            # The bot's background checkpoint, after the pass (off its path), timed apart.
            checkpoint_started = time.perf_counter()
            checkpointed = await db.checkpoint()
            checkpoint_seconds = time.perf_counter() - checkpoint_started
            report["passes"].append(
                {
                    "seconds": seconds,
                    "cpu_seconds": cpu,
                    "checkpoint": None
                    if checkpointed is None
                    else {"seconds": checkpoint_seconds, "pages": checkpointed[0]},
                    "maxrss_mb": maxrss_mb(),
                    "hwm_mb": hwm_mb(),
                    "planned": dict(result.planned),
                    "held_out": result.held_out,
                    "completed_visits": result.completed_visits,
                    "statements": sum(sql.count.values()),
                    "sql_seconds": sum(sql.seconds.values()),
                    "top": sql.top(8),
                }
            )
        if explain and database_url is not None:
            report["plans"] = await _postgres_plans(database_url, sql)
        elif explain:
            report["plans"] = _plans(path, sql)
    finally:
        await db.dispose()
    if restore and not on_postgres:
        with closing(sqlite3.connect(path, isolation_level=None)) as raw:
            raw.execute("DELETE FROM outbox WHERE id > ?", (last_id,))
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if any(p["completed_visits"] for p in report["passes"]):
            report["warning"] = "the pass completed visits: the kept database has changed"
    return report


def _plans(path: Path, sql: SqlLog) -> list[tuple[str, float, list[str]]]:
    plans = []
    with closing(sqlite3.connect(path)) as raw:
        for key, seconds, _ in sql.top(12):
            statement, parameters = sql.sample[key]
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            rows = raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plans.append((key, seconds, [f"{'  ' * _depth(rows, r)}{r[3]}" for r in rows]))
    return plans


async def _postgres_plans(url: str, sql: SqlLog) -> list[tuple[str, float, list[str]]]:
    """PostgreSQL's plans of the slowest SELECTs, as run (EXPLAIN ANALYZE)."""
    import asyncpg  # type: ignore[import-untyped]  # the PostgreSQL run only

    plans = []
    connection = await asyncpg.connect(postgres.dsn(url))
    try:
        for key, seconds, _ in sql.top(12):
            statement, parameters = sql.sample[key]
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            rows = await connection.fetch(f"EXPLAIN ANALYZE {statement}", *(parameters or ()))
            plans.append((key, seconds, [row[0] for row in rows]))
    finally:
        await connection.close()
    return plans


def _depth(rows: list[tuple[Any, ...]], row: tuple[Any, ...]) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent:
        depth += 1
        parent = parents.get(parent, 0)
    return depth


def print_pass_report(report: dict[str, Any], *, top: int = 6) -> None:
    warmed = report.get("warmed_seconds")
    cache = "not warmed" if warmed is None else f"warmed by reading the file in {warmed:.1f} s"
    if "prewarm" in report:
        cache = report["prewarm"]
    print(
        f"  maxrss before the passes: {report['baseline_mb']:.0f} MB "
        f"(VmHWM {report['baseline_hwm_mb']:.0f} MB); OS page cache {cache}"
    )
    for number, item in enumerate(report["passes"], start=1):
        planned = ", ".join(f"{k} {v}" for k, v in sorted(item["planned"].items())) or "nothing"
        cpu = f" (CPU {item['cpu_seconds']:.3f} s)" if "cpu_seconds" in item else ""
        print(
            f"  pass {number}: {item['seconds']:.3f} s{cpu}, maxrss {item['maxrss_mb']:.0f} MB "
            f"(VmHWM {item['hwm_mb']:.0f} MB), "
            f"{item['statements']} statements ({item['sql_seconds']:.3f} s in SQL); "
            f"planned: {planned}; held out {item['held_out']}, "
            f"visits completed {item['completed_visits']}"
        )
        if done := item.get("checkpoint"):
            print(
                f"      then the background WAL checkpoint (not in the pass): "
                f"{done['seconds']:.3f} s, {done['pages']} pages"
            )
        for key, seconds, count in item["top"][:top]:
            print(f"      {seconds:7.3f} s {count:4d}×  {key[:150]}")
    for key, seconds, lines in report.get("plans", []):
        print(f"\n  {seconds:.3f} s  {key[:400]}")
        for line in lines:
            print(f"      {line}")
    if "warning" in report:
        print(f"  WARNING: {report['warning']}")


# ----------------------------------------------------------------------------- main


_SELF = (sys.executable, "-m", "bench.planner")


def _run(command: list[str], seed_value: int) -> None:
    """Seeding runs in a process of its own, so this one (whose peak RSS the pass process
    inherits, see `maxrss_mb`) stays small."""
    subprocess.run([*command, "--seed", str(seed_value)], cwd=ROOT, check=True)


def _run_child(
    path: Path,
    copies: int,
    *,
    explain: bool,
    restore: bool,
    cold: bool,
    evict: bool = False,
    code: Path = ROOT,
    database_url: str | None = None,
) -> dict[str, Any]:
    """The two passes in a fresh process, with the app's code in `code` (this checkout,
    or a baseline's export); on the PostgreSQL database at `database_url` when given (a
    copy of the file)."""
    command = [*_SELF, "--pass-only", str(path), "--copies", str(copies), "--json"]
    if database_url is not None:
        command += ["--database-url", database_url]
        evict = False  # the server's files are not ours to drop from the cache
    for flag, wanted in (
        ("--explain", explain),
        ("--restore", restore),
        ("--cold", cold or evict),
    ):
        if wanted:
            command.append(flag)
    if evict:
        evict_os_cache(path)
    before = load()
    done = subprocess.run(command, cwd=code, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the pass failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = f"{before}; after: {load()}"
    return result


def export_baseline(ref: str, into: Path) -> str:
    """The app's code at `ref` (a commit, branch or tag; "merge-base": where this branch
    left main), exported into `into` with `git archive` (the repository is not changed).
    It runs on this code's database, so its tables must be a subset of this code's.
    Returns the commit's short id."""
    asked = ["merge-base", "HEAD", "main"] if ref == "merge-base" else ["rev-parse", ref]
    commit = subprocess.run(
        ["git", *asked], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()[:9]
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def _fmt_counts(planned: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in sorted(planned.items())) or "none"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.planner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default=",".join(str(n) for n in DEFAULT_SIZES))
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the databases here")
    parser.add_argument("--explain", action="store_true", help="query plans of slow statements")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="do not read the database file into the OS page cache before the passes",
    )
    parser.add_argument(
        "--evict",
        action="store_true",
        help="drop the database file from the OS page cache before each run (a cold start)",
    )
    parser.add_argument(
        "--baseline",
        default="merge-base",
        metavar="REF",
        help="also run the passes with the app's code at this git ref, on the same database "
        "(default: where this branch left main; 'none' to skip)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="processes generating rows")
    postgres.add_argument(parser)
    parser.add_argument(
        "--postgres-sizes",
        default="10000,100000",
        help="of the sizes, those that run on PostgreSQL too (10000,100000)",
    )
    parser.add_argument("--pass-only", type=Path, metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--copies", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--restore", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed-only", type=Path, metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", type=Path, metavar="FILE", help="with --pass-only: cProfile of pass 1"
    )
    args = parser.parse_args(argv)

    if args.seed_only is not None:
        seeded = seed(args.seed_only, args.clients, args.seed, args.workers)
        args.seed_only.with_suffix(".json").write_text(json.dumps(seeded.__dict__))
        return

    if args.pass_only is not None:
        copies = args.copies
        if copies is None:
            with closing(sqlite3.connect(args.pass_only)) as raw:
                copies = copies_for(raw.execute("SELECT count(*) FROM client").fetchone()[0])
        report = asyncio.run(
            run_passes(
                args.pass_only,
                copies,
                explain=args.explain,
                restore=args.restore,
                profile=args.profile,
                warm=not args.cold,
                database_url=args.database_url,
            )
        )
        if args.json:
            print(json.dumps(report, ensure_ascii=False))
        else:
            print_pass_report(report)
        return

    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench-planner-"))
    workdir.mkdir(parents=True, exist_ok=True)
    baseline: tuple[str, Path] | None = None
    if args.baseline != "none":
        folder = Path(tempfile.mkdtemp(prefix="bench-planner-baseline-"))
        baseline = (f"{args.baseline} ({export_baseline(args.baseline, folder)})", folder)
    server = postgres.server(args.postgres)
    on_postgres_sizes = {int(n.replace("_", "")) for n in args.postgres_sizes.split(",") if n}
    cache = "evicted" if args.evict else "not warmed" if args.cold else "warmed"
    print(f"OS page cache before each run: {cache}; {load()}")
    if server is not None:
        print(
            f"PostgreSQL: {postgres.shown(server)}, a fresh database per size with the file's "
            "rows (no baseline there; --evict does not apply)"
        )
    rows: list[tuple[Seeded, dict[str, Any], dict[str, Any] | None]] = []
    on_postgres: dict[int, dict[str, Any]] = {}
    try:
        for size in sizes:
            path = workdir / f"planner-{size}.db"
            meta = path.with_suffix(".json")
            if args.keep and path.exists() and meta.exists():
                seeded = Seeded(**json.loads(meta.read_text()))
                print(f"\n{size:,} clients: reusing {path} (seeded in {seeded.seconds:.0f} s)")
            else:
                for stale in (path, meta, path.with_name(path.name + "-wal")):
                    stale.unlink(missing_ok=True)
                print(f"\n{size:,} clients: seeding {path}", flush=True)
                command = [*_SELF, "--seed-only", str(path), "--clients", str(size)]
                _run([*command, "--workers", str(args.workers)], args.seed)
                seeded = Seeded(**json.loads(meta.read_text()))
            print(
                f"  {seeded.clients:,} clients, {seeded.visits:,} visits, "
                f"{seeded.outbox:,} outbox rows, {seeded.copies * 3} masters, "
                f"{seeded.megabytes:,.0f} MB, seeded in {seeded.seconds:.1f} s"
            )
            for label, value in seeded.mix.items():
                print(f"    {label}: {value:,} ({value / seeded.clients:.2%} of clients)")
            print(f"    indexes: {', '.join(seeded.indexes)}")
            # Each run leaves the database as seeded, for the next one.
            options = {
                "explain": args.explain,
                # PostgreSQL gets a copy of the file after the passes.
                "restore": bool(args.keep) or baseline is not None or server is not None,
                "cold": args.cold,
                "evict": args.evict,
            }
            report = _run_child(path, seeded.copies, **options)
            print(f"  this code, {code_state()}: {report['load']}")
            print_pass_report(report)
            base = None
            if baseline is not None:
                base = _run_child(path, seeded.copies, **options | {"code": baseline[1]})
                print(f"  baseline, {baseline[0]}: {base['load']}")
                print_pass_report(base, top=0)
            rows.append((seeded, report, base))
            if server is not None and size in on_postgres_sizes:
                pg = asyncio.run(_on_postgres(server, path, seeded.copies, options))
                on_postgres[seeded.clients] = pg
                print(f"  PostgreSQL ({pg['megabytes']:,.0f} MB), this code: {pg['load']}")
                print_pass_report(pg)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        if baseline is not None:
            shutil.rmtree(baseline[1], ignore_errors=True)
    print_table(rows, cache=cache, baseline=baseline[0] if baseline else None)
    if on_postgres:
        print_backends(rows, on_postgres)
    print(f"app code: {code_state()}; {load()}")


async def _on_postgres(
    server: str, path: Path, copies: int, options: dict[str, Any]
) -> dict[str, Any]:
    """The file's rows in a fresh PostgreSQL database, the same two passes on it in a
    fresh process."""
    async with postgres.fresh_database(server) as url:
        await postgres.copy_in_a_process(path, url)
        megabytes = await postgres.database_megabytes(url)
        report = await asyncio.to_thread(
            _run_child, path, copies, **options | {"database_url": url}
        )
    report["megabytes"] = megabytes
    return report


def _goal_met(clients: int, report: dict[str, Any]) -> str:
    if clients not in GOALS:
        return "-"
    limit, megabytes, which = GOALS[clients]
    passes = report["passes"]
    seconds = max(p["seconds"] for p in passes) if which == "every pass" else passes[0]["seconds"]
    peak = max(p["maxrss_mb"] for p in passes)
    met = postgres.verdict(seconds <= limit and peak <= megabytes)
    return f"{seconds:.3f} s, {peak:.0f} MB: {met}"


def print_backends(
    rows: list[tuple[Seeded, dict[str, Any], dict[str, Any] | None]],
    on_postgres: dict[int, dict[str, Any]],
) -> None:
    """Both back-ends side by side, per size."""
    table: list[tuple[str, list[str]]] = []
    for seeded, report, _ in rows:
        pg = on_postgres.get(seeded.clients)
        if pg is None:
            continue
        both = (report, pg)
        size = f"{seeded.clients:,} clients"
        table += [
            (f"{size}: pass 1", [f"{r['passes'][0]['seconds']:.3f} s" for r in both]),
            ("  pass 2", [f"{r['passes'][1]['seconds']:.3f} s" for r in both]),
            ("  CPU 1 + 2", [f"{sum(p['cpu_seconds'] for p in r['passes']):.3f} s" for r in both]),
            ("  peak RSS", [f"{max(p['maxrss_mb'] for p in r['passes']):.0f} MB" for r in both]),
            ("  planned", [f"{sum(r['passes'][0]['planned'].values()):,}" for r in both]),
            ("  database", [f"{seeded.megabytes:,.0f} MB", f"{pg['megabytes']:,.0f} MB"]),
        ]
        if seeded.clients in GOALS:
            limit, megabytes, which = GOALS[seeded.clients]
            table.append(
                (
                    f"  goal: {which} <= {limit:g} s, <= {megabytes:.0f} MB",
                    [_goal_met(seeded.clients, r) for r in both],
                )
            )
        if report["passes"][0]["planned"] != pg["passes"][0]["planned"]:
            table.append(("  (the back-ends planned otherwise!)", ["", ""]))
    postgres.side_by_side(
        "planner passes, a fresh process each, both back-ends (PostgreSQL's RSS: the bot's "
        "process, not the server's)",
        table,
    )


def code_state() -> str:
    """The commit of the app's code and its files that differ from it (other people edit
    the planner while this runs: a number belongs to the code it measured)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "scheduler", "storage", "domain"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
    except OSError:
        return "unknown"
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return (head or "unknown") + (f" + uncommitted {', '.join(changed)}" if changed else "")


def print_table(
    rows: list[tuple[Seeded, dict[str, Any], dict[str, Any] | None]],
    *,
    cache: str,
    baseline: str | None,
) -> None:
    print()
    header = (
        f"{'clients':>10} {'visits':>11} {'outbox':>11} {'DB MB':>7} {'seed s':>7} "
        f"{'pass 1 s':>9} {'pass 2 s':>9} {'base MB':>8} {'peak MB':>8} {'Δ MB':>6}"
        f"{'  baseline 1 s   2 s   ×1   ×2' if baseline else ''}  planned"
    )
    print(header)
    print("-" * len(header))
    by_size: dict[int, tuple[float, float]] = {}
    for seeded, report, base in rows:
        first, second = report["passes"]
        peak = max(first["maxrss_mb"], second["maxrss_mb"])
        baseline_mb = report["baseline_mb"]
        by_size[seeded.clients] = (first["seconds"], peak)
        total = sum(first["planned"].values())
        versus = ""
        if base is not None:
            one, two = base["passes"]
            times = (one["seconds"] / first["seconds"], two["seconds"] / second["seconds"])
            versus = (
                f"  {one['seconds']:>10.3f} {two['seconds']:>5.3f} "
                f"{times[0]:>4.1f} {times[1]:>4.1f}"
            )
            if one["planned"] != first["planned"]:
                versus += " (the baseline planned otherwise!)"
        print(
            f"{seeded.clients:>10,} {seeded.visits:>11,} {seeded.outbox:>11,} "
            f"{seeded.megabytes:>7,.0f} {seeded.seconds:>7.1f} {first['seconds']:>9.3f} "
            f"{second['seconds']:>9.3f} {baseline_mb:>8.0f} {peak:>8.0f} "
            f"{peak - baseline_mb:>6.0f}{versus}  "
            f"{total:,} ({_fmt_counts(first['planned'])}); pass 2: "
            f"{sum(second['planned'].values())}"
        )
    if baseline:
        print(f"baseline: the passes with the app's code at {baseline}; ×: its time / this code's")
    sizes = sorted(by_size)
    for smaller, larger in pairwise(sizes):
        ratio = by_size[larger][0] / by_size[smaller][0]
        print(
            f"pass({larger:,}) / pass({smaller:,}) = {ratio:.1f} "
            f"(clients ×{larger / smaller:.0f}; linear would be ≈{larger / smaller:.0f})"
        )
    for seeded, report, _ in rows:
        if seeded.clients not in GOALS:
            continue
        limit, megabytes, which = GOALS[seeded.clients]
        passes = report["passes"]
        seconds = (
            max(p["seconds"] for p in passes) if which == "every pass" else passes[0]["seconds"]
        )
        peak = max(p["maxrss_mb"] for p in passes)
        met = seconds <= limit and peak <= megabytes
        note = ""
        if which == "the first pass" and cache != "evicted":
            note = " (the first pass of a fresh process; --evict: from the disk, too)"
        print(
            f"goal at {seeded.clients:,} clients ({which} <= {limit:g} s, <= {megabytes:.0f} MB; "
            f"OS page cache {cache}): {seconds:.3f} s, {peak:.0f} MB peak -> "
            f"{'MET' if met else 'NOT MET'}{note}"
        )


if __name__ == "__main__":
    main()
