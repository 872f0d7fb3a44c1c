"""Telegram updates per second: the Regulars dispatcher against a bare aiogram echo bot.

    .venv/bin/python -m bench.updates [--updates 5000] [--clients 500] [--db-clients 10000]

1. A SQLite file database in a temporary directory: the schema by the migrations, the demo
   barbershop with 8 copies of its masters (24) and about three years of history
   (`bot.tools.demo_history.seed_history`, ~100,000 visits for 10,000 clients). `--reuse-db FILE`
   starts from a copy of FILE instead (saved there by the first run that names it).
2. New Telegram users (ids far from the seeded ones) go through the real flow — /start,
   name, phone, "I agree", "Yes, please", "Skip", then Book a visit → service → master →
   day → time → Confirm → My visits: 13 updates, more when a slot was taken meanwhile —
   through the Regulars dispatcher (`build_dispatcher`, clock fixed at NOW, so the offered
   slots are the same every run). Every button press takes its callback data from the
   keyboard the bot last showed in that chat (as `testing.telegram_fakes.RecordingSession`
   keeps it), like a person tapping. `--concurrent` chats are in progress at a time and take
   turns, so their updates interleave; a new person starts when one is done. Exactly
   `--updates` updates are fed, one at a time, each timed around `dp.feed_update`: 5,000
   updates let ~385 of the 500 people finish (6,500 would let all of them).
3. The same updates, in the same order, go through an echo bot on a plain aiogram
   `Dispatcher`: every message is echoed, every callback answered and its message edited.
4. Printed: updates per second (updates / time inside `feed_update`), p50 and p99 per
   update, the main thread's CPU per update, the ratio Regulars / echo against the goal
   (>= 0.5), SQL statements and Bot API calls per update, each kind of update, and the
   visits really booked. `--sql-top N` also times every SQL statement and lists the N
   costliest.

`--profile FILE` writes a cProfile of the Regulars `feed_update` calls only (not the seeding,
not the driver): `python -c "import pstats; pstats.Stats('FILE').sort_stats('tottime')
.print_stats(30)"`. SQLite itself runs in aiosqlite's thread, which cProfile does not see:
that time shows up as `select.epoll.poll` (the loop waiting for the thread).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import phonenumbers
from aiogram import Bot, Dispatcher, Router
from aiogram.methods import TelegramMethod
from aiogram.types import CallbackQuery, InlineKeyboardButton, Message, Update
from sqlalchemy import BigInteger, cast
from sqlmodel import col, func, select

from bench.sql import SqlCounter
from bot.adapters.telegram import build_dispatcher, create_bot
from bot.composition import Core, build_core_on
from bot.config import load_business_config
from bot.tools.demo_history import seed_history, with_more_masters
from domain.business import BusinessConfig
from domain.payloads import BadPayload, pack, unpack
from storage.db import Database, create_engine, sqlite_url_for
from storage.migrate import upgrade
from storage.tables import Channel, Client, ClientIdentity, Visit
from testing.telegram_fakes import RecordingSession, TelegramPerson, buttons_of, person

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "business.example.toml"
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Monday, 09:00 in Moscow
TOKEN = "123456:BENCH"
MASTER_COPIES = 8  # 3 masters x 8 = 24: room for ~100,000 visits in three years
FIRST_USER_ID = 9_000_000_000  # seeded Telegram ids lie in [1e8, 8e9)
GOAL = 0.5
MAX_STEPS = 30  # a visitor who needs more updates than this is stuck (reported)

# After registering, the button a visitor presses: the first action on this list that the
# keyboard offers ("Confirm" over "Change time", a time over "« Other day", …).
BOOKING_ORDER = ("ok", "tm", "dy", "ms", "xs", "sv", "bk")  # xs: "add a haircut?" yes or no
FIRST_NAMES = ("Иван", "Пётр", "Анна", "Олег", "Мария", "Денис", "Ольга", "Глеб", "Юлия", "Лев")
SURNAMES = ("Орлов", "Зуев", "Рыбин", "Котов", "Лисин", "Гусев", "Ершов", "Попов")


def fixed_clock() -> datetime:
    return NOW


def action_of(button: InlineKeyboardButton) -> str:
    """The action of a button's payload: "1:tm:n3.2:29385120" -> "tm"."""
    try:
        return unpack(button.callback_data or "")[0]
    except BadPayload:
        return ""


# --- measuring -------------------------------------------------------------------------


@dataclass
class Run:
    """Per-update figures of one bot over the workload."""

    name: str
    latencies: list[float] = field(default_factory=list)  # seconds inside feed_update
    cpu: list[float] = field(default_factory=list)  # of them, CPU seconds of this thread
    labels: list[str] = field(default_factory=list)
    sql: list[int] = field(default_factory=list)
    api_calls: list[int] = field(default_factory=list)
    wall: float = 0.0  # the whole loop, the driver included

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
            f"inside feed_update ({self.wall:.2f} s loop): {self.per_second:8.1f} updates/s, "
            f"p50 {self.percentile(0.5) * 1000:6.2f} ms, p99 {self.percentile(0.99) * 1000:6.2f} ms"
        )
        if self.latencies:
            cpu = sum(self.cpu)
            print(
                f"  {'':<9} of it CPU in the event-loop thread {cpu / len(self.cpu) * 1000:.2f} ms "
                f"per update ({cpu / self.busy:.0%}); the rest is waiting (SQLite's thread, "
                f"other processes)"
            )


class Feeder:
    """Feeds one update to one dispatcher, timed (and profiled when asked)."""

    def __init__(
        self,
        run: Run,
        dp: Dispatcher,
        bot: Bot,
        session: RecordingSession,
        *,
        sql: SqlCounter | None = None,
        profiler: cProfile.Profile | None = None,
        premount: bool = False,
    ) -> None:
        self.run, self.dp, self.bot, self.session = run, dp, bot, session
        self.sql, self.profiler, self.premount = sql, profiler, premount

    async def feed(self, label: str, update: Update) -> None:
        if self.premount:  # what a polling bot gets: already parsed with the bot inside
            update = Update.model_validate(update.model_dump(), context={"bot": self.bot})
        statements = self.sql.total if self.sql else 0
        calls = len(self.session.requests)
        if self.sql is not None:
            self.sql.recording = True
        if self.profiler is not None:
            self.profiler.enable()
        cpu = time.thread_time()
        started = time.perf_counter()
        await self.dp.feed_update(self.bot, update)
        elapsed = time.perf_counter() - started
        self.run.cpu.append(time.thread_time() - cpu)
        if self.profiler is not None:
            self.profiler.disable()
        if self.sql is not None:
            self.sql.recording = False
        self.run.latencies.append(elapsed)
        self.run.labels.append(label)
        self.run.sql.append((self.sql.total if self.sql else 0) - statements)
        self.run.api_calls.append(len(self.session.requests) - calls)


# --- the people ------------------------------------------------------------------------


@dataclass
class Visitor(TelegramPerson):
    """A new client who registers, books one visit and looks at "My visits".

    The sending and pressing of `TelegramPerson` (real `Update` objects, the button data
    taken from the chat as the bot left it) with each update recorded and timed."""

    feeder: Feeder | None = None
    workload: list[tuple[str, Update]] = field(default_factory=list)
    name: str = ""
    phone: str = ""
    rng: random.Random = field(default_factory=random.Random)
    steps: int = 0
    pressed_confirm: bool = False
    booked: bool = False
    done: bool = False
    stuck: str = ""
    _label: str = ""

    async def _feed(self, update: Update) -> list[TelegramMethod[Any]]:
        assert self.feeder is not None
        self.workload.append((self._label, update))
        before = len(self.session.requests)
        await self.feeder.feed(self._label, update)
        return [method for _, method in self.session.requests[before:]]

    async def step(self) -> None:
        """Send the next update this person would send."""
        self.steps += 1
        registration = (
            ("/start", "/start"),
            ("name", self.name),
            ("phone", self.phone),
            ("rc", pack("rc", 1)),  # I agree
            ("rm", pack("rm", 1)),  # Yes, please
            ("rb", pack("rb")),  # Skip (the birthday)
        )
        if self.steps <= len(registration):
            label, content = registration[self.steps - 1]
            if self.steps <= 3:
                self._label = label
                await self.send(content)
            else:
                await self._press(lambda b: b.callback_data == content, label)
            return
        if self.pressed_confirm and not self.booked:
            self.booked = any(action_of(b) == "mv" for b in self._buttons())
            self.pressed_confirm = False
        if self.booked:  # the confirmation: look at "My visits", and that is all
            await self._press(lambda b: action_of(b) == "mv", "mv")
            self.done = True
            return
        offered = {action_of(b) for b in self._buttons()}
        wanted = next((a for a in BOOKING_ORDER if a in offered), None)
        if wanted is None or self.steps > MAX_STEPS:
            self.done, self.stuck = True, f"step {self.steps}: buttons {sorted(offered)}"
            return
        self.pressed_confirm = wanted == "ok"
        await self._press(lambda b: action_of(b) == wanted, wanted)

    def _buttons(self) -> list[InlineKeyboardButton]:
        with_buttons = [m for _, m in sorted(self.chat.items()) if buttons_of(m)]
        return buttons_of(with_buttons[-1]) if with_buttons else []

    async def _press(self, fits: Callable[[InlineKeyboardButton], bool], label: str) -> None:
        if not self._buttons():
            self.done, self.stuck = True, f"step {self.steps}: no keyboard for {label}"
            return
        message = self.keyboard_message()
        choices = [b for b in buttons_of(message) if fits(b)]
        if not choices:
            offered = sorted({action_of(b) for b in buttons_of(message)})
            self.done, self.stuck = True, f"step {self.steps}: no {label} among {offered}"
            return
        data = self.rng.choice(choices).callback_data
        assert data is not None
        self._label = label
        await self.press(data, message)


def new_phones(count: int, taken: set[str], rng: random.Random) -> list[str]:
    """Distinct valid Russian mobile numbers nobody in the database has, typed by hand."""
    phones: list[str] = []
    seen = set(taken)
    while len(phones) < count:
        e164 = f"+79{rng.randrange(10**9):09d}"
        if e164 in seen or not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            continue
        seen.add(e164)
        d = e164[2:]
        phones.append(f"+7 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}")
    return phones


async def drive_regulars(
    core: Core,
    feeder: Feeder,
    *,
    updates: int,
    clients: int,
    concurrent: int,
    seed: int,
) -> tuple[list[tuple[str, Update]], list[Visitor]]:
    """Feed exactly `updates` updates from up to `clients` new people, `concurrent` of them
    in conversation at a time, taking turns one update each."""
    rng = random.Random(seed)
    async with core.db.reading() as session:
        taken = set((await session.exec(select(Client.phone))).all())
    phones = new_phones(clients, {p for p in taken if p}, rng)
    workload: list[tuple[str, Update]] = []
    waiting: list[Visitor] = []
    for n in range(clients):
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        user = person(FIRST_USER_ID + n, first, language="ru")
        waiting.append(
            Visitor(
                feeder.dp,
                feeder.bot,
                feeder.session,
                user,
                feeder=feeder,
                workload=workload,
                name=f"{first} {last}",
                phone=phones[n],
                rng=random.Random(seed * 1_000_003 + n),
            )
        )
    everyone = list(waiting)
    waiting.reverse()
    active: list[Visitor] = []
    while len(workload) < updates and (active or waiting):
        while waiting and len(active) < concurrent:
            active.append(waiting.pop())
        for visitor in list(active):
            if len(workload) >= updates:
                break
            await visitor.step()
            if visitor.done:
                active.remove(visitor)
    return workload, everyone


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


async def replay(feeder: Feeder, workload: list[tuple[str, Update]]) -> None:
    for label, update in workload:
        await feeder.feed(label, update)


# --- the database ----------------------------------------------------------------------


async def build_shop(url: str, *, db_clients: int, months: int) -> Core:
    config = bigger_shop()
    started = time.perf_counter()
    await upgrade(url)
    migrated = time.perf_counter()
    core = await build_core_on(db=Database(create_engine(url)), config=config)
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


def bigger_shop() -> BusinessConfig:
    return with_more_masters(load_business_config(CONFIG), MASTER_COPIES)


async def open_shop(url: str, source: Path) -> Core:
    """The database seeded by an earlier run (`--reuse-db`), brought up to date."""
    await upgrade(url)
    core = await build_core_on(db=Database(create_engine(url)), config=bigger_shop())
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


async def booked_in_run(core: Core) -> tuple[int, int]:
    """(clients registered, visits booked) by the benchmark's Telegram users."""
    mine = select(ClientIdentity.client_id).where(
        ClientIdentity.channel == Channel.telegram,
        cast(col(ClientIdentity.external_id), BigInteger) >= FIRST_USER_ID,
    )
    async with core.db.reading() as session:
        clients = (
            await session.exec(
                select(func.count()).select_from(Client).where(col(Client.id).in_(mine))
            )
        ).one()
        visits = (
            await session.exec(
                select(func.count()).select_from(Visit).where(col(Visit.client_id).in_(mine))
            )
        ).one()
    return int(clients), int(visits)


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


def print_kinds(regulars: Run, echo: Run) -> None:
    """Mean latency, SQL statements and Bot API calls for each kind of update."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(regulars.labels):
        by_label[label].append(index)
    print("  per kind of update (Regulars; echo mean for comparison):")
    print(
        f"    {'kind':<7} {'count':>6} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'SQL':>5} {'API':>4} {'share':>6} {'echo ms':>8}"
    )

    def weight(item: tuple[str, list[int]]) -> float:
        return -sum(regulars.latencies[i] for i in item[1])

    ordered = sorted(by_label.items(), key=weight)
    for label, indices in ordered:
        times = [regulars.latencies[i] for i in indices]
        echo_times = [echo.latencies[i] for i in indices if i < len(echo.latencies)]
        print(
            f"    {label:<7} {len(indices):>6} {statistics.fmean(times) * 1000:>8.2f} "
            f"{regulars.percentile(0.5, times) * 1000:>7.2f} "
            f"{regulars.percentile(0.99, times) * 1000:>7.2f} "
            f"{statistics.fmean(regulars.sql[i] for i in indices):>5.1f} "
            f"{statistics.fmean(regulars.api_calls[i] for i in indices):>4.1f} "
            f"{sum(times) / regulars.busy:>6.1%} "
            f"{statistics.fmean(echo_times) * 1000 if echo_times else 0.0:>8.2f}"
        )


async def main(args: argparse.Namespace) -> None:
    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    with tempfile.TemporaryDirectory(prefix="regulars-bench-") as folder:
        database = Path(folder) / "bench.db"
        url = sqlite_url_for(str(database))
        reuse: Path | None = args.reuse_db
        if reuse is not None and await asyncio.to_thread(copy_if_saved, reuse, database):
            core = await open_shop(url, reuse)
        else:
            core = await build_shop(url, db_clients=args.db_clients, months=args.months)
            if reuse is not None:
                await asyncio.to_thread(save_copy, database, reuse)
                print(f"  saved a copy for --reuse-db: {reuse}")
        try:
            sql = SqlCounter(timed=args.sql_top > 0)
            sql.attach(core.db)
            profiler = cProfile.Profile() if args.profile else None

            session = RecordingSession()
            bot = create_bot(TOKEN, session=session)
            dp = build_dispatcher(core.conversations, clock=fixed_clock)
            regulars = Run("Regulars")
            feeder = Feeder(
                regulars, dp, bot, session, sql=sql, profiler=profiler, premount=args.premount
            )
            gc.collect()
            started = time.perf_counter()
            workload, visitors = await drive_regulars(
                core,
                feeder,
                updates=args.updates,
                clients=args.clients,
                concurrent=args.concurrent,
                seed=args.seed,
            )
            regulars.wall = time.perf_counter() - started
            regulars_errors = errors.count

            echo_session = RecordingSession()
            echo_bot = create_bot(TOKEN, session=echo_session)
            echo = Run("echo")
            echo_feeder = Feeder(
                echo, echo_dispatcher(), echo_bot, echo_session, premount=args.premount
            )
            gc.collect()
            started = time.perf_counter()
            await replay(echo_feeder, workload)
            echo.wall = time.perf_counter() - started

            registered, booked = await booked_in_run(core)
        finally:
            await core.close()

    started_people = [v for v in visitors if v.steps]
    stuck = [v for v in visitors if v.stuck]
    print(
        f"workload: {len(workload):,} updates from {len(started_people)} new Telegram users "
        f"({args.concurrent} chats at a time, round robin); "
        f"{sum(v.booked for v in visitors)} reached the confirmation, "
        f"{sum(v.done and not v.stuck for v in visitors)} finished with My visits"
    )
    print(
        f"  booked in the database during the run: {booked} visits by {registered} "
        f"registered users; errors logged: Regulars {regulars_errors}, "
        f"echo {errors.count - regulars_errors}; stuck users: {len(stuck)}"
    )
    if errors.first:
        print(f"  first error: {errors.first.splitlines()[0]}")
    for visitor in stuck[:3]:
        print(f"  stuck: user {visitor.user.id} at {visitor.stuck}")
    mode = "pre-mounted updates" if args.premount else "updates re-mounted inside feed_update"
    print(f"throughput ({mode}):")
    regulars.print()
    echo.print()
    statements = sum(regulars.sql)
    print(
        f"  Regulars: {statements / len(workload):.1f} SQL statements per update + COMMIT "
        f"({', '.join(f'{k} {v / len(workload):.1f}' for k, v in sql.kinds.most_common())}), "
        f"{sum(regulars.api_calls) / len(workload):.2f} Bot API calls per update "
        f"(echo {sum(echo.api_calls) / len(workload):.2f})"
    )
    print_kinds(regulars, echo)
    if args.sql_top > 0:
        sql.print_top(args.sql_top, regulars.busy, len(workload))
    ratio = regulars.per_second / echo.per_second if echo.per_second else 0.0
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"ratio = regulars_updates_per_s / echo_updates_per_s = {ratio:.3f}")
    print(f"goal ratio >= {GOAL}: {verdict}")
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the Regulars feed_update calls: {args.profile}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=5000, help="updates to feed (5000)")
    parser.add_argument("--clients", type=int, default=500, help="new Telegram users (500)")
    parser.add_argument(
        "--db-clients", type=int, default=10_000, help="clients in the seeded history (10000)"
    )
    parser.add_argument("--months", type=int, default=36, help="months of history (36)")
    parser.add_argument(
        "--concurrent", type=int, default=50, help="conversations in progress at a time (50)"
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
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
