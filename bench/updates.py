"""Telegram updates per second: Regulars against a bare aiogram echo bot and a typical
aiogram booking bot, fed in the same run.

    .venv/bin/python -m bench.updates [--updates 5000] [--clients 500] [--db-clients 10000]
        [--postgres URL|none]

1. A SQLite file database in a temporary directory: the schema by the migrations, the demo
   barbershop with 8 copies of its masters (24) and about three years of history
   (`bot.tools.demo_history.seed_history`, ~100,000 visits for 10,000 clients). `--reuse-db FILE`
   starts from a copy of FILE instead (saved there by the first run that names it). The
   tutorial bot gets its own copy of the same shop, clients and visits in its own tables
   (`bench/tutorial.py`).
2. Three contestants, each with its own fake Bot API session:
   - **Regulars**: the real dispatcher (`build_dispatcher`, clock fixed at NOW, so the offered
     slots are the same every run): conversation state in the database, the slot checked
     again at Confirm, one transaction per update;
   - **tutorial**: a typical aiogram booking bot (`bench/tutorial.py`): FSM in
     `MemoryStorage`, an `AsyncSession` per update on the stock aiosqlite driver;
   - **echo**: a bare aiogram `Dispatcher` that echoes every message and answers every
     callback by editing its message ("ok"), fed a copy of each update Regulars gets.
3. New Telegram users (ids far from the seeded ones) go through the same 13 steps on
   Regulars and on the tutorial bot: /start, name, phone, consent, offers, birthday, then
   Book a visit → service → master → day → time → Confirm → My visits (Regulars may add a
   part-of-day screen; a slot taken meanwhile adds steps). Every button press takes its
   callback data from the keyboard the bot last showed in that chat (as
   `testing.telegram_fakes.RecordingSession` keeps it), like a person tapping. The fake
   sessions count the Bot API calls without keeping them, and a person's chat goes once
   they are done: a process that kept every message of the run would make Python's
   garbage collector walk them all, a cost that belongs to no bot.
4. **Sequential** mode: `--concurrent` chats (50) are in progress at a time and take
   turns, one update each; exactly `--updates` updates go to each contestant, one at a time,
   each timed around `dp.feed_update`. The contestants are interleaved: for every update
   each one gets its next update, in an order that rotates, so the load of the machine hits
   them alike. Both modes run as `regulars run` serves: inside `bot.app.settled_heap`
   (what the process holds once built is frozen out of the garbage collector; one
   process, so for every contestant alike).
5. **Concurrent** mode (`--batch 10`, `--batch-updates 2000`): 10 chats at once, as
   polling runs them: each batch holds the next update of 10 chats and is handed to the
   dispatcher as 10 concurrent tasks (aiogram's `handle_as_tasks`), the next batch when all
   are answered. Each update's latency is timed inside its task, from the start of
   `feed_update` to its end: waits for another turn's write lock or for SQLite's busy
   handler count, the queue before the task first runs does not (printed apart: "from
   arrival", which the throughput bounds: 10 updates at 2 ms each take 20 ms whatever the
   design).
6. Printed: the machine's load average, updates per second (updates / time inside
   `feed_update`), p50 and p99 per update, the main thread's CPU per update, the ratios
   against the goals (Regulars / echo >= 0.3; Regulars / tutorial >= 1.5; concurrent p50 <= 5
   ms and p99 <= 15 ms) with met / NOT met, SQL statements (SQLAlchemy's and the prepared
   ones of `storage/prepared.py`) and Bot API calls per update,
   each kind of update, the visits really booked and the slots booked twice. `--sql-top N`
   also times every SQL statement of Regulars and lists the N costliest.

7. With a PostgreSQL server (`--postgres URL`, or `REGULARS_BENCH_POSTGRES` /
   `REGULARS_TEST_POSTGRES`; bench/postgres.py): a fourth contestant, **Regulars on
   PostgreSQL** ("Reg. PG"): the same seeded rows copied into a fresh database there, the
   same code and people, its own Bot API session, fed in the same rotation in both modes;
   then a table with Regulars' figures on each back-end and the goals (stated for SQLite,
   shown for both). The tutorial bot stays on SQLite; the echo bot has no database.

`--profile FILE` writes a cProfile of the Regulars `feed_update` calls only (sequential
mode; not the seeding, not the driver): `python -c "import pstats;
pstats.Stats('FILE').sort_stats('tottime').print_stats(30)"`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import phonenumbers
from aiogram import Bot, Dispatcher, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, Message, Update
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import func, select

from bench import postgres
from bench.sql import SqlCounter
from bench.tutorial import copy_shop, create_tables, tutorial_dispatcher
from bot.adapters.telegram import build_dispatcher, create_bot
from bot.app import keep_checkpointing, settled_heap
from bot.composition import Core, build_core_on
from bot.config import load_business_config
from bot.tools.demo_history import seed_history, with_more_masters
from domain.business import BusinessConfig
from domain.payloads import BadPayload, pack, unpack
from storage.db import Database, create_engine, sqlite_url_for
from storage.migrate import upgrade
from storage.tables import Client, Visit
from testing.telegram_fakes import (
    RecordingSession,
    TelegramPerson,
    buttons_of,
    callback_update,
    message_update,
    person,
)

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "business.example.toml"
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Monday, 09:00 in Moscow
TOKEN = "123456:BENCH"
MASTER_COPIES = 8  # 3 masters x 8 = 24: room for ~100,000 visits in three years
FIRST_USER_ID = 9_000_000_000  # seeded Telegram ids lie in [1e8, 8e9)
BATCH_USER_ID = 9_500_000_000  # the concurrent mode's people
GOAL_RATIO = 0.3  # Regulars / echo
GOAL_OVER_TUTORIAL = 1.5  # Regulars / tutorial
GOAL_P50, GOAL_P99 = 0.005, 0.015  # seconds, concurrent mode
MAX_STEPS = 30  # a visitor who needs more updates than this is stuck (reported)
FIRST_NAMES = ("Иван", "Пётр", "Анна", "Олег", "Мария", "Денис", "Ольга", "Глеб", "Юлия", "Лев")
SURNAMES = ("Орлов", "Зуев", "Рыбин", "Котов", "Лисин", "Гусев", "Ершов", "Попов")
T = TypeVar("T")


def fixed_clock() -> datetime:
    return NOW


# --- how a person goes through each bot ------------------------------------------------


@dataclass(frozen=True)
class Script:
    """The registration updates (a text to type, or the callback data of the button to
    press), then, after registering, the button a person presses: the first action on
    `order` that the keyboard offers ("Confirm" over "Change time", a time over "« Other
    day", a part of the day over the day list, …)."""

    registration: tuple[tuple[str, str | None, str | None], ...]  # label, text, data
    order: tuple[str, ...]
    confirm: str
    my_visits: str
    action: Callable[[str], str]  # callback data -> its action


def regulars_action(data: str) -> str:
    """The action of a Regulars payload: "1:tm:n3.2:29385120" -> "tm"."""
    try:
        return unpack(data)[0]
    except BadPayload:
        return ""


def tutorial_action(data: str) -> str:
    return data.split(":", 1)[0]


REGULARS = Script(
    registration=(
        ("/start", "/start", None),
        ("name", "{name}", None),
        ("phone", "{phone}", None),
        ("rc", None, pack("rc", 1)),  # I agree
        ("rm", None, pack("rm", 1)),  # Yes, please
        ("rb", None, pack("rb")),  # Skip (the birthday)
    ),
    order=("ok", "tm", "pd", "dy", "ms", "xs", "sv", "bk"),  # xs: "add a haircut?" yes or no
    confirm="ok",
    my_visits="mv",
    action=regulars_action,
)
TUTORIAL = Script(
    registration=(
        ("/start", "/start", None),
        ("name", "{name}", None),
        ("phone", "{phone}", None),
        ("rc", None, "consent"),
        ("rm", None, "mkt:yes"),
        ("rb", None, "bday:skip"),
    ),
    order=("ok", "tm", "dy", "ms", "sv", "book"),
    confirm="ok",
    my_visits="my",
    action=tutorial_action,
)


@dataclass
class Visitor(TelegramPerson):
    """A new client who registers, books one visit and looks at "My visits". Each update
    is planned from the chat as the bot left it (`plan`) and fed by the caller."""

    script: Script = REGULARS
    name: str = ""
    phone: str = ""
    rng: random.Random = field(default_factory=random.Random)
    steps: int = 0
    pressed_confirm: bool = False
    booked: bool = False
    done: bool = False
    stuck: str = ""

    def plan(self) -> tuple[str, Update] | None:
        """The next update this person sends, with its label; None when stuck."""
        self.steps += 1
        script = self.script
        if self.steps <= len(script.registration):
            label, text, data = script.registration[self.steps - 1]
            if text is not None:
                typed = text.format(name=self.name, phone=self.phone)
                return label, message_update(self.user, self.session.next_message_id(), text=typed)
            return self._tap(lambda d: d == data, label)
        if self.pressed_confirm and not self.booked:
            self.booked = script.my_visits in self._offered()
            self.pressed_confirm = False
        if self.booked:  # the confirmation: look at "My visits", and that is all
            self.done = True
            return self._tap(lambda d: script.action(d) == script.my_visits, script.my_visits)
        offered = self._offered()
        wanted = next((a for a in script.order if a in offered), None)
        if wanted is None or self.steps > MAX_STEPS:
            self.done, self.stuck = True, f"step {self.steps}: buttons {sorted(offered)}"
            return None
        self.pressed_confirm = wanted == script.confirm
        return self._tap(lambda d: script.action(d) == wanted, wanted)

    def _buttons(self) -> list[InlineKeyboardButton]:
        with_buttons = [m for _, m in sorted(self.chat.items()) if buttons_of(m)]
        return buttons_of(with_buttons[-1]) if with_buttons else []

    def _offered(self) -> set[str]:
        return {self.script.action(b.callback_data or "") for b in self._buttons()}

    def _tap(self, fits: Callable[[str], bool], label: str) -> tuple[str, Update] | None:
        if not self._buttons():
            self.done, self.stuck = True, f"step {self.steps}: no keyboard for {label}"
            return None
        message = self.keyboard_message()
        choices = [b.callback_data for b in buttons_of(message) if fits(b.callback_data or "")]
        if not choices:
            offered = sorted(self._offered())
            self.done, self.stuck = True, f"step {self.steps}: no {label} among {offered}"
            return None
        data = self.rng.choice(choices)
        assert data is not None
        return label, callback_update(self.user, data, message)


def new_phones(count: int, taken: set[str], rng: random.Random) -> list[str]:
    """Distinct valid Russian mobile numbers nobody has (`taken`, in E.164, gets them too),
    typed by hand."""
    phones: list[str] = []
    while len(phones) < count:
        e164 = f"+79{rng.randrange(10**9):09d}"
        if e164 in taken or not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            continue
        taken.add(e164)
        d = e164[2:]
        phones.append(f"+7 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}")
    return phones


@dataclass
class People:
    """The same people for every bot: names, phones, Telegram ids and their random seeds."""

    names: list[str]
    phones: list[str]
    first_id: int
    seed: int

    @classmethod
    def new(cls, count: int, *, taken: set[str], first_id: int, seed: int) -> People:
        rng = random.Random(seed + first_id)
        names = [f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}" for _ in range(count)]
        return cls(names, new_phones(count, taken, rng), first_id, seed)


class Crowd:
    """The people of one bot: `at_once` of them in conversation, taking turns one update
    each; a new person starts when one is done."""

    def __init__(
        self, people: People, script: Script, dp: Dispatcher, bot: Bot, session: RecordingSession
    ) -> None:
        self.visitors = [
            Visitor(
                dp,
                bot,
                session,
                person(people.first_id + n, name.split()[0], language="ru"),
                script=script,
                name=name,
                phone=people.phones[n],
                rng=random.Random(people.seed * 1_000_003 + n),
            )
            for n, name in enumerate(people.names)
        ]
        self._waiting = deque(self.visitors)
        self._active: deque[Visitor] = deque()
        self._finished: list[Visitor] = []

    def next(self, at_once: int, *, skip: Sequence[Visitor] = ()) -> tuple[str, Update] | None:
        """The next update of the next person in line (None when everyone is done or
        waits in `skip`, the batch being put together)."""
        # A person who is done (their last update answered by now) leaves no chat behind:
        # the fake Telegram would otherwise keep every message of the run.
        for visitor in self._finished:
            visitor.session.chats.pop(visitor.user.id, None)
        self._finished.clear()
        tried = 0
        while True:
            while self._waiting and len(self._active) < at_once:
                self._active.append(self._waiting.popleft())
            if not self._active or tried >= len(self._active):
                return None
            visitor = self._active.popleft()
            if visitor in skip:  # already has an update in this batch
                self._active.append(visitor)
                tried += 1
                continue
            planned = visitor.plan()
            if visitor.done:
                self._finished.append(visitor)
            else:
                self._active.append(visitor)
            if planned is not None:
                self.last = visitor
                return planned

    def batch(self, size: int) -> list[tuple[str, Update]]:
        """The next update of `size` different people."""
        taken: list[Visitor] = []
        updates: list[tuple[str, Update]] = []
        while len(updates) < size:
            planned = self.next(size, skip=taken)
            if planned is None:
                break
            taken.append(self.last)
            updates.append(planned)
        return updates

    @property
    def started(self) -> list[Visitor]:
        return [v for v in self.visitors if v.steps]


# --- measuring -------------------------------------------------------------------------


@dataclass
class Run:
    """Per-update figures of one bot over the workload."""

    name: str
    latencies: list[float] = field(default_factory=list)  # seconds inside feed_update
    waits: list[float] = field(default_factory=list)  # seconds from arrival (concurrent)
    cpu: list[float] = field(default_factory=list)  # of them, CPU seconds of this thread
    labels: list[str] = field(default_factory=list)
    sql: list[int] = field(default_factory=list)
    api_calls: list[int] = field(default_factory=list)

    @property
    def busy(self) -> float:
        return sum(self.latencies)

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.busy if self.busy else 0.0

    def percentile(self, share: float, values: Sequence[float] | None = None) -> float:
        data = sorted(self.latencies if values is None else values)
        if not data:
            return 0.0
        return data[min(len(data) - 1, round(share * (len(data) - 1)))]

    def print(self) -> None:
        print(
            f"  {self.name:<9} {len(self.latencies):>6} updates in {self.busy:7.2f} s "
            f"inside feed_update: {self.per_second:8.1f} updates/s, "
            f"p50 {self.percentile(0.5) * 1000:6.2f} ms, p99 {self.percentile(0.99) * 1000:6.2f} ms"
        )
        if self.cpu:
            cpu = sum(self.cpu)
            print(
                f"  {'':<9} CPU of the event-loop thread {cpu / len(self.cpu) * 1000:.2f} ms "
                f"per update ({cpu / self.busy:.0%} of the time; the rest: worker threads, "
                f"other processes)"
            )

    def print_concurrent(self) -> None:
        print(
            f"  {self.name:<9} {len(self.latencies):>6} updates: inside feed_update "
            f"p50 {self.percentile(0.5) * 1000:6.2f} ms, "
            f"p99 {self.percentile(0.99) * 1000:6.2f} ms; from arrival "
            f"p50 {self.percentile(0.5, self.waits) * 1000:6.2f} ms, "
            f"p99 {self.percentile(0.99, self.waits) * 1000:6.2f} ms"
        )


class Feeder:
    """Feeds updates to one dispatcher, timed (and profiled when asked)."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        session: RecordingSession,
        *,
        sql: SqlCounter | None = None,
        profiler: cProfile.Profile | None = None,
        premount: bool = False,
    ) -> None:
        self.dp, self.bot, self.session = dp, bot, session
        self.sql, self.profiler, self.premount = sql, profiler, premount

    def _mounted(self, update: Update) -> Update:
        if self.premount:  # what a polling bot gets: already parsed with the bot inside
            return Update.model_validate(update.model_dump(), context={"bot": self.bot})
        return update

    async def feed(self, run: Run, label: str, update: Update) -> None:
        update = self._mounted(update)
        statements = self.sql.total if self.sql else 0
        calls = self.session.calls
        if self.sql is not None:
            self.sql.recording = True
        if self.profiler is not None:
            self.profiler.enable()
        cpu = time.thread_time()
        started = time.perf_counter()
        await self.dp.feed_update(self.bot, update)
        elapsed = time.perf_counter() - started
        run.cpu.append(time.thread_time() - cpu)
        if self.profiler is not None:
            self.profiler.disable()
        if self.sql is not None:
            self.sql.recording = False
        run.latencies.append(elapsed)
        run.labels.append(label)
        run.sql.append((self.sql.total if self.sql else 0) - statements)
        run.api_calls.append(self.session.calls - calls)

    async def feed_batch(self, run: Run, updates: list[tuple[str, Update]]) -> None:
        """The updates as concurrent tasks, the way polling hands out a batch."""
        mounted = [(label, self._mounted(update)) for label, update in updates]
        arrived = time.perf_counter()

        async def one(label: str, update: Update) -> None:
            started = time.perf_counter()
            await self.dp.feed_update(self.bot, update)
            ended = time.perf_counter()
            run.latencies.append(ended - started)
            run.waits.append(ended - arrived)
            run.labels.append(label)

        await asyncio.gather(*(one(label, update) for label, update in mounted))


# --- the echo bot ----------------------------------------------------------------------


def echo_dispatcher() -> Dispatcher:
    router = Router(name="echo")

    @router.message()
    async def echo(message: Message) -> None:
        if message.text is not None:
            await message.answer(message.text)

    @router.callback_query()
    async def tapped(callback: CallbackQuery) -> None:
        await callback.answer()
        if isinstance(callback.message, Message):
            await callback.message.edit_text("ok")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


def echo_copy(update: Update) -> Update:
    """The same update for the echo bot (its own object: aiogram binds an update to a bot)."""
    return Update.model_validate(update.model_dump())


# --- the database ----------------------------------------------------------------------


async def build_shop(url: str, *, db_clients: int, months: int) -> Core:
    config = bigger_shop()
    started = time.perf_counter()
    await upgrade(url)
    migrated = time.perf_counter()
    core = await build_core_on(db=Database(regulars_engine(url)), config=config)
    built = time.perf_counter()
    stats = await seed_history(
        db=core.db,
        catalog=core.deps.catalog,
        config=config,
        now=NOW,
        clients=db_clients,
        months=months,
    )
    seeded = time.perf_counter()
    print(
        f"database: {len(core.deps.catalog.masters)} masters, {len(core.deps.catalog.services)} "
        f"services; {stats.clients:,} clients, {stats.visits:,} visits "
        f"({stats.completed:,} completed, {stats.upcoming:,} upcoming) over {months} months"
    )
    print(
        f"  schema {migrated - started:.2f} s, catalog {built - migrated:.2f} s, "
        f"seeding {seeded - built:.2f} s"
    )
    return core


def regulars_engine(url: str) -> AsyncEngine:
    """As `regulars run` makes it: WAL checkpoints in the background (`keep_checkpointing`
    runs beside the contestants), not in the turns' commits."""
    return create_engine(url, background_checkpoints=True)


def bigger_shop() -> BusinessConfig:
    return with_more_masters(load_business_config(CONFIG), MASTER_COPIES)


async def open_shop(url: str, source: Path) -> Core:
    """The database seeded by an earlier run (`--reuse-db`), brought up to date."""
    await upgrade(url)
    core = await build_core_on(db=Database(regulars_engine(url)), config=bigger_shop())
    async with core.db.reading() as session:
        clients = (await session.exec(select(func.count()).select_from(Client))).one()
        visits = (await session.exec(select(func.count()).select_from(Visit))).one()
    print(f"database: a copy of {source}: {clients:,} clients, {visits:,} visits (not seeded)")
    return core


def copy_if_saved(saved: Path, database: Path) -> bool:
    if not saved.exists():
        return False
    shutil.copyfile(saved, database)
    return True


def save_copy(database: Path, target: Path) -> None:
    """A consistent copy of the WAL database (committed rows only) for `--reuse-db`."""
    target.unlink(missing_ok=True)
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("VACUUM INTO ?", (str(target),))


# --- what the run left in the databases ------------------------------------------------

# Bookings of the run's people that overlap another active booking of the same master.
REGULARS_TWICE = f"""
SELECT count(*) FROM visit a
JOIN client_identity i ON i.client_id = a.client_id AND i.channel = 'telegram'
WHERE CAST(i.external_id AS BIGINT) >= {FIRST_USER_ID} AND a.status IN ('booked', 'confirmed')
  AND EXISTS (SELECT 1 FROM visit b WHERE b.master_id = a.master_id AND b.id != a.id
              AND b.status IN ('booked', 'confirmed')
              AND b.starts_at < a.ends_at AND a.starts_at < b.ends_at)
"""
TUTORIAL_TWICE = f"""
SELECT count(*) FROM bookings a JOIN users u ON u.id = a.user_id
WHERE u.tg_id >= {FIRST_USER_ID} AND a.status IN ('booked', 'confirmed')
  AND EXISTS (SELECT 1 FROM bookings b WHERE b.master_id = a.master_id AND b.id != a.id
              AND b.status IN ('booked', 'confirmed')
              AND b.starts_at < a.ends_at AND a.starts_at < b.ends_at)
"""


@dataclass
class Outcome:
    registered: int
    booked: int
    booked_twice: int
    conversations: int  # rows of conversation state in the database


REGULARS_MINE = (
    "SELECT client_id FROM client_identity WHERE channel = 'telegram' "
    f"AND CAST(external_id AS BIGINT) >= {FIRST_USER_ID}"
)
REGULARS_OUTCOME = (
    f"SELECT count(*) FROM client WHERE id IN ({REGULARS_MINE})",
    f"SELECT count(*) FROM visit WHERE client_id IN ({REGULARS_MINE})",
    REGULARS_TWICE,
    "SELECT count(*) FROM conversation WHERE channel = 'telegram' "
    f"AND CAST(external_id AS BIGINT) >= {FIRST_USER_ID}",
)


def regulars_outcome(path: Path) -> Outcome:
    with closing(sqlite3.connect(path)) as db:
        counts = [int(db.execute(query).fetchone()[0]) for query in REGULARS_OUTCOME]
    return Outcome(*counts)


async def regulars_outcome_on_postgres(url: str) -> Outcome:
    import asyncpg  # type: ignore[import-untyped]  # the PostgreSQL run only

    connection = await asyncpg.connect(postgres.dsn(url))
    try:
        counts = [int(await connection.fetchval(query)) for query in REGULARS_OUTCOME]
    finally:
        await connection.close()
    return Outcome(*counts)


def tutorial_outcome(path: Path) -> Outcome:
    with closing(sqlite3.connect(path)) as db:
        mine = f"SELECT id FROM users WHERE tg_id >= {FIRST_USER_ID}"
        registered = db.execute(f"SELECT count(*) FROM ({mine})").fetchone()
        booked = db.execute(f"SELECT count(*) FROM bookings WHERE user_id IN ({mine})").fetchone()
        twice = db.execute(TUTORIAL_TWICE).fetchone()
    return Outcome(int(registered[0]), int(booked[0]), int(twice[0]), 0)


# --- reporting -------------------------------------------------------------------------


class ErrorCount(logging.Handler):
    """Counts ERROR records: a failing update is logged by the bot and swallowed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = self.format(record)


def print_kinds(run: Run, echo: Run | None = None) -> None:
    """Mean latency, SQL statements and Bot API calls for each kind of update."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(run.labels):
        by_label[label].append(index)
    against = "; echo mean for comparison" if echo else ""
    print(f"  per kind of update ({run.name}{against}):")
    print(
        f"    {'kind':<7} {'count':>6} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'CPU ms':>7} {'SQL':>5} {'API':>4} {'share':>6}" + (f" {'echo ms':>8}" if echo else "")
    )

    def weight(item: tuple[str, list[int]]) -> float:
        return -sum(run.latencies[i] for i in item[1])

    for label, indices in sorted(by_label.items(), key=weight):
        times = [run.latencies[i] for i in indices]
        line = (
            f"    {label:<7} {len(indices):>6} {statistics.fmean(times) * 1000:>8.2f} "
            f"{run.percentile(0.5, times) * 1000:>7.2f} "
            f"{run.percentile(0.99, times) * 1000:>7.2f} "
            f"{statistics.fmean(run.cpu[i] for i in indices) * 1000:>7.2f} "
            f"{statistics.fmean(run.sql[i] for i in indices):>5.1f} "
            f"{statistics.fmean(run.api_calls[i] for i in indices):>4.1f} "
            f"{sum(times) / run.busy:>6.1%}"
        )
        if echo is not None:
            echo_times = [echo.latencies[i] for i in indices if i < len(echo.latencies)]
            line += f" {statistics.fmean(echo_times) * 1000 if echo_times else 0.0:>8.2f}"
        print(line)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


# --- the run ---------------------------------------------------------------------------


@dataclass
class Contestant:
    name: str
    feeder: Feeder
    crowd: Crowd | None  # None: the echo bot, fed copies of Regulars' updates
    batch_crowd: Crowd | None
    run: Run = field(init=False)
    batch_run: Run = field(init=False)

    def __post_init__(self) -> None:
        self.run, self.batch_run = Run(self.name), Run(self.name)


def rotated(items: list[T], turn: int) -> list[T]:
    if not items:
        return items
    turn %= len(items)
    return items[turn:] + items[:turn]


async def sequential(
    regulars: Contestant,
    tutorial: Contestant,
    echo: Contestant,
    *,
    updates: int,
    at_once: int,
    on_postgres: Contestant | None = None,
) -> None:
    """`updates` updates to each contestant, one at a time, in a rotating order."""
    assert regulars.crowd is not None and tutorial.crowd is not None
    for turn in range(updates):
        feeds: list[tuple[Contestant, tuple[str, Update]]] = []
        if (ours := regulars.crowd.next(at_once)) is not None:
            feeds += [(regulars, ours), (echo, (ours[0], echo_copy(ours[1])))]
        if (theirs := tutorial.crowd.next(at_once)) is not None:
            feeds.append((tutorial, theirs))
        on_pg = on_postgres.crowd.next(at_once) if on_postgres and on_postgres.crowd else None
        if on_postgres is not None and on_pg is not None:
            feeds.append((on_postgres, on_pg))
        if not feeds:
            break
        for contestant, (label, update) in rotated(feeds, turn):
            await contestant.feeder.feed(contestant.run, label, update)


async def concurrent(
    regulars: Contestant,
    tutorial: Contestant,
    echo: Contestant,
    *,
    updates: int,
    size: int,
    on_postgres: Contestant | None = None,
) -> None:
    """Batches of `size` chats, each batch as concurrent tasks, in a rotating order."""
    assert regulars.batch_crowd is not None and tutorial.batch_crowd is not None
    turn = 0
    while len(regulars.batch_run.latencies) < updates:
        ours = regulars.batch_crowd.batch(size)
        theirs = tutorial.batch_crowd.batch(size)
        on_pg = (
            on_postgres.batch_crowd.batch(size)
            if on_postgres is not None and on_postgres.batch_crowd is not None
            else []
        )
        if not ours and not theirs and not on_pg:
            break
        batches = [
            (regulars, ours),
            (echo, [(label, echo_copy(update)) for label, update in ours]),
            (tutorial, theirs),
        ]
        if on_postgres is not None:
            batches.append((on_postgres, on_pg))
        for contestant, batch in rotated(batches, turn):
            if batch:
                await contestant.feeder.feed_batch(contestant.batch_run, batch)
        turn += 1


async def tutorial_engine(folder: Path, regulars_db: Path) -> tuple[AsyncEngine, Path, str]:
    """The tutorial bot's own database: its tables, the same shop copied in. The same
    SQLite settings as Regulars (WAL, synchronous=NORMAL), so only the code differs."""
    path = folder / "tutorial.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

    @sqlalchemy_event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    await create_tables(engine)
    counts = await asyncio.to_thread(copy_shop, regulars_db, path)
    shown = ", ".join(f"{count:,} {table}" for table, count in counts.items())
    return engine, path, shown


async def main(args: argparse.Namespace) -> None:
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    try:
        await _run(args, errors)
    finally:
        logging.getLogger().removeHandler(errors)


async def _run(args: argparse.Namespace, errors: ErrorCount) -> None:
    print(f"load average at the start: {load()}")
    server = postgres.server(args.postgres)
    with tempfile.TemporaryDirectory(prefix="regulars-bench-") as name:
        folder = Path(name)
        database = folder / "bench.db"
        url = sqlite_url_for(str(database))
        reuse: Path | None = args.reuse_db
        if reuse is not None and await asyncio.to_thread(copy_if_saved, reuse, database):
            core = await open_shop(url, reuse)
        else:
            core = await build_shop(url, db_clients=args.db_clients, months=args.months)
            if reuse is not None:
                await asyncio.to_thread(save_copy, database, reuse)
                print(f"  saved a copy for --reuse-db: {reuse}")
        engine, tutorial_db, copied = await tutorial_engine(folder, database)
        print(f"  the tutorial bot's copy: {copied}")
        async with AsyncExitStack() as stack:
            pg_core: Core | None = None
            pg_url = None
            if server is not None:
                print(f"  Regulars on PostgreSQL: {postgres.shown(server)}, a fresh database")
                pg_url = await stack.enter_async_context(postgres.fresh_database(server))
                await postgres.copy_sqlite_to_postgres(database, pg_url)
                pg_core = await build_core_on(
                    db=Database(create_engine(pg_url)), config=bigger_shop()
                )
            try:
                regulars, tutorial, echo, on_pg = await contestants(core, engine, args, pg_core)
                # The counting stops with the run (the tests run it in their own process).
                for each in (regulars, tutorial, on_pg):
                    if each is not None and each.feeder.sql is not None:
                        stack.callback(each.feeder.sql.detach)
                # As `regulars run` serves (bot.app.settled_heap, keep_checkpointing); one
                # process, so for every contestant alike.
                checkpoints_stop = asyncio.Event()
                checkpoints = asyncio.create_task(
                    keep_checkpointing(core.db, stop=checkpoints_stop)
                )
                stack.push_async_callback(_stopped, checkpoints, checkpoints_stop)
                with settled_heap():
                    await sequential(
                        regulars,
                        tutorial,
                        echo,
                        updates=args.updates,
                        at_once=args.concurrent,
                        on_postgres=on_pg,
                    )
                regulars_errors = errors.count
                if args.batch_updates > 0:
                    with settled_heap():
                        await concurrent(
                            regulars,
                            tutorial,
                            echo,
                            updates=args.batch_updates,
                            size=args.batch,
                            on_postgres=on_pg,
                        )
            finally:
                await core.close()
                await engine.dispose()
                if pg_core is not None:
                    await pg_core.close()
            pg_outcome = None if pg_url is None else await regulars_outcome_on_postgres(pg_url)
        ours, theirs = regulars_outcome(database), tutorial_outcome(tutorial_db)
    report(args, regulars, tutorial, echo, ours, theirs, errors, regulars_errors)
    if on_pg is not None and pg_outcome is not None:
        report_backends(args, regulars, on_pg, tutorial, echo, ours, pg_outcome)


async def _stopped(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    await task


async def contestants(
    core: Core, engine: AsyncEngine, args: argparse.Namespace, pg_core: Core | None = None
) -> tuple[Contestant, Contestant, Contestant, Contestant | None]:
    async with core.db.reading() as reading:
        taken = {phone for phone in (await reading.exec(select(Client.phone))).all() if phone}
    people = People.new(args.clients, taken=taken, first_id=FIRST_USER_ID, seed=args.seed)
    in_batches = People.new(
        args.batch_updates // 10 + 2 * args.batch,
        taken=taken,
        first_id=BATCH_USER_ID,
        seed=args.seed,
    )

    def bot_with_session() -> tuple[Bot, RecordingSession]:
        session = RecordingSession(record=False)
        return create_bot(TOKEN, session=session), session

    bot, session = bot_with_session()
    dp = build_dispatcher(core.conversations, clock=fixed_clock)
    sql = SqlCounter(timed=args.sql_top > 0)
    sql.attach(core.db.engine)
    profiler = cProfile.Profile() if args.profile else None
    regulars = Contestant(
        "Regulars",
        Feeder(dp, bot, session, sql=sql, profiler=profiler, premount=args.premount),
        Crowd(people, REGULARS, dp, bot, session),
        Crowd(in_batches, REGULARS, dp, bot, session),
    )
    on_pg = None
    if pg_core is not None:  # the same people, the same shop, its own database and bot
        pg_bot, pg_session = bot_with_session()
        pg_dp = build_dispatcher(pg_core.conversations, clock=fixed_clock)
        pg_sql = SqlCounter()
        pg_sql.attach(pg_core.db.engine)
        on_pg = Contestant(
            "Reg. PG",
            Feeder(pg_dp, pg_bot, pg_session, sql=pg_sql, premount=args.premount),
            Crowd(people, REGULARS, pg_dp, pg_bot, pg_session),
            Crowd(in_batches, REGULARS, pg_dp, pg_bot, pg_session),
        )
    tutorial_bot, tutorial_session = bot_with_session()
    tutorial_dp = tutorial_dispatcher(engine, now=NOW)
    tutorial_sql = SqlCounter()
    tutorial_sql.attach(engine)
    tutorial = Contestant(
        "tutorial",
        Feeder(
            tutorial_dp, tutorial_bot, tutorial_session, sql=tutorial_sql, premount=args.premount
        ),
        Crowd(people, TUTORIAL, tutorial_dp, tutorial_bot, tutorial_session),
        Crowd(in_batches, TUTORIAL, tutorial_dp, tutorial_bot, tutorial_session),
    )
    echo_bot, echo_session = bot_with_session()
    echo = Contestant(
        "echo",
        Feeder(echo_dispatcher(), echo_bot, echo_session, premount=args.premount),
        None,
        None,
    )
    return regulars, tutorial, echo, on_pg


def report(
    args: argparse.Namespace,
    regulars: Contestant,
    tutorial: Contestant,
    echo: Contestant,
    ours: Outcome,
    theirs: Outcome,
    errors: ErrorCount,
    regulars_errors: int,
) -> None:
    assert regulars.crowd is not None and tutorial.crowd is not None
    for contestant, outcome in ((regulars, ours), (tutorial, theirs)):
        crowd = contestant.crowd
        assert crowd is not None
        stuck = [v for v in crowd.visitors if v.stuck]
        print(
            f"{contestant.name}: {len(contestant.run.latencies):,} updates from "
            f"{len(crowd.started)} new Telegram users ({args.concurrent} chats at a time, "
            f"round robin); {sum(v.booked for v in crowd.visitors)} reached the confirmation; "
            f"in the database: {outcome.registered} registered, {outcome.booked} visits booked "
            f"(both modes), {outcome.booked_twice} of them on a slot booked twice; "
            f"conversation state in the database: {outcome.conversations} chats; "
            f"stuck users: {len(stuck)}"
        )
        for visitor in stuck[:3]:
            print(f"  stuck: user {visitor.user.id} at {visitor.stuck}")
    print(
        f"errors logged: Regulars {regulars_errors}, the others and the concurrent mode "
        f"{errors.count - regulars_errors}"
    )
    if errors.first:
        print(f"  first error: {errors.first.splitlines()[0]}")
    mode = "pre-mounted updates" if args.premount else "updates re-mounted inside feed_update"
    print(f"sequential: one update at a time, contestants interleaved ({mode}):")
    for contestant in (regulars, tutorial, echo):
        contestant.run.print()
    for contestant in (regulars, tutorial):
        run, sql = contestant.run, contestant.feeder.sql
        assert sql is not None
        count = max(1, len(run.latencies))
        kinds = ", ".join(f"{k} {v / count:.1f}" for k, v in sql.kinds.most_common())
        print(
            f"  {contestant.name}: {sum(run.sql) / count:.1f} SQL statements per update "
            f"({kinds}), {sum(run.api_calls) / count:.2f} Bot API calls per update"
        )
    print_kinds(regulars.run, echo.run)
    print_kinds(tutorial.run)
    if args.sql_top > 0 and regulars.feeder.sql is not None:
        regulars.feeder.sql.print_top(args.sql_top, regulars.run.busy, len(regulars.run.latencies))
    ratio = regulars.run.per_second / echo.run.per_second if echo.run.per_second else 0.0
    over = regulars.run.per_second / tutorial.run.per_second if tutorial.run.per_second else 0.0
    print(f"ratio = regulars_updates_per_s / echo_updates_per_s = {ratio:.3f}")
    print(f"goal ratio >= {GOAL_RATIO}: {verdict(ratio >= GOAL_RATIO)}")
    print(f"regulars_updates_per_s / tutorial_updates_per_s = {over:.2f}")
    print(f"goal >= {GOAL_OVER_TUTORIAL}: {verdict(over >= GOAL_OVER_TUTORIAL)}")
    if regulars.batch_run.latencies:
        print(
            f"concurrent: {args.batch} chats at once, each batch handled as concurrent tasks "
            "(as polling does), contestants interleaved:"
        )
        for contestant in (regulars, tutorial, echo):
            contestant.batch_run.print_concurrent()
        run = regulars.batch_run
        p50, p99 = run.percentile(0.5), run.percentile(0.99)
        met = p50 <= GOAL_P50 and p99 <= GOAL_P99
        print(
            f"goal Regulars p50 <= {GOAL_P50 * 1000:.0f} ms and p99 <= {GOAL_P99 * 1000:.0f} ms "
            f"inside feed_update: {verdict(met)}"
        )
    print(f"load average at the end: {load()}")
    if regulars.feeder.profiler is not None:
        regulars.feeder.profiler.dump_stats(args.profile)
        print(f"profile of the Regulars feed_update calls: {args.profile}")


def report_backends(
    args: argparse.Namespace,
    regulars: Contestant,
    on_pg: Contestant,
    tutorial: Contestant,
    echo: Contestant,
    ours: Outcome,
    on_pg_outcome: Outcome,
) -> None:
    """Regulars on SQLite and on PostgreSQL side by side (fed interleaved with the others,
    the same people, the same shop); the goals are SQLite's."""
    assert on_pg.crowd is not None
    print("Regulars on PostgreSQL (the same people and shop, fed interleaved with the others):")
    on_pg.run.print()
    print_kinds(on_pg.run)
    if on_pg.batch_run.latencies:
        on_pg.batch_run.print_concurrent()
    both = (regulars, on_pg)
    outcomes = (ours, on_pg_outcome)

    def each(figure: Callable[[Contestant], str]) -> list[str]:
        return [figure(contestant) for contestant in both]

    def ratio(contestant: Contestant, other: Contestant) -> float:
        theirs = other.run.per_second
        return contestant.run.per_second / theirs if theirs else 0.0

    def per_update(contestant: Contestant, values: Sequence[float]) -> float:
        return sum(values) / max(1, len(contestant.run.latencies))

    rows: list[tuple[str, list[str]]] = [
        ("updates (sequential)", each(lambda c: f"{len(c.run.latencies):,}")),
        ("updates/s inside feed_update", each(lambda c: f"{c.run.per_second:.1f}")),
        (
            "p50 / p99",
            each(
                lambda c: (
                    f"{c.run.percentile(0.5) * 1000:.2f} / {c.run.percentile(0.99) * 1000:.2f} ms"
                )
            ),
        ),
        (
            "CPU of the loop's thread / update",
            each(lambda c: f"{per_update(c, c.run.cpu) * 1000:.2f} ms"),
        ),
        ("SQL statements / update", each(lambda c: f"{per_update(c, c.run.sql):.1f}")),
        (
            f"ratio to echo (goal >= {GOAL_RATIO})",
            each(
                lambda c: f"{ratio(c, echo):.3f}: " + postgres.verdict(ratio(c, echo) >= GOAL_RATIO)
            ),
        ),
        (
            f"× the tutorial bot (goal >= {GOAL_OVER_TUTORIAL})",
            each(
                lambda c: (
                    f"{ratio(c, tutorial):.2f}: "
                    + postgres.verdict(ratio(c, tutorial) >= GOAL_OVER_TUTORIAL)
                )
            ),
        ),
    ]
    if regulars.batch_run.latencies and on_pg.batch_run.latencies:

        def at_once(c: Contestant) -> str:
            p50, p99 = c.batch_run.percentile(0.5), c.batch_run.percentile(0.99)
            met = p50 <= GOAL_P50 and p99 <= GOAL_P99
            return f"{p50 * 1000:.2f} / {p99 * 1000:.2f} ms: {postgres.verdict(met)}"

        def from_arrival(c: Contestant) -> str:
            run = c.batch_run
            p50, p99 = run.percentile(0.5, run.waits), run.percentile(0.99, run.waits)
            return f"{p50 * 1000:.2f} / {p99 * 1000:.2f} ms"

        rows += [
            (
                f"{args.batch} chats at once p50 / p99 (goal <= {GOAL_P50 * 1000:.0f} / "
                f"{GOAL_P99 * 1000:.0f} ms)",
                each(at_once),
            ),
            # On PostgreSQL every statement awaits the server, so the batch's turns take
            # turns on the event loop and each one's time holds the others' CPU; SQLite's
            # inline turns run through. The time from arrival compares the two fairly.
            ("  from arrival p50 / p99", each(from_arrival)),
        ]
    rows += [
        ("registered", [f"{o.registered:,}" for o in outcomes]),
        ("visits booked (both modes)", [f"{o.booked:,}" for o in outcomes]),
        ("of them on a slot booked twice", [f"{o.booked_twice:,}" for o in outcomes]),
        (
            "stuck users",
            each(lambda c: str(sum(1 for v in c.crowd.visitors if v.stuck) if c.crowd else 0)),
        ),
    ]
    postgres.side_by_side(
        "Regulars on both back-ends (the tutorial and echo bots: SQLite and no database)", rows
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--updates", type=int, default=5000, help="updates to each bot, sequential (5000)"
    )
    parser.add_argument("--clients", type=int, default=500, help="new Telegram users (500)")
    parser.add_argument(
        "--db-clients", type=int, default=10_000, help="clients in the seeded history (10000)"
    )
    parser.add_argument("--months", type=int, default=36, help="months of history (36)")
    parser.add_argument(
        "--concurrent",
        type=int,
        default=50,
        help="conversations in progress at a time, sequential mode (50)",
    )
    parser.add_argument(
        "--batch", type=int, default=10, help="chats at once in the concurrent mode (10)"
    )
    parser.add_argument(
        "--batch-updates",
        type=int,
        default=2000,
        help="updates to each bot in the concurrent mode; 0 skips it (2000)",
    )
    parser.add_argument(
        "--reuse-db",
        type=Path,
        metavar="FILE",
        help="start from a copy of FILE instead of seeding; seed and save FILE when missing "
        "(bench/bench.db is git-ignored). Delete it after changing the seeding or the schema",
    )
    parser.add_argument("--seed", type=int, default=1, help="the workload's random seed")
    parser.add_argument(
        "--premount",
        action="store_true",
        help="give feed_update updates already bound to the bot (no model round trip inside)",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the Regulars feed_update")
    parser.add_argument(
        "--sql-top",
        type=int,
        default=0,
        metavar="N",
        help="time every SQL statement and list the N that take the longest in all",
    )
    postgres.add_argument(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
