"""Outbox messages per second: the real Sender and Pacer draining due rows to a fake Bot API.

    .venv/bin/python -m bench.sender [--rows 3000] [--p429 0.02] [--batch 200]
        [--runs clean,429,ceiling]

1. A SQLite file database in a temporary directory (the schema by the migrations, the demo
   barbershop's catalog), `--rows` clients with Telegram ids and marketing consent, and one
   due `birthday` row each (a marketing kind: the clock is fixed inside the 10:00–20:00
   Moscow window, so nothing is held for quiet hours).
2. The fake Bot API (`testing.fake_bot_api`) on 127.0.0.1, aiogram's real HTTP session
   (`create_bot` + `TelegramDelivery`), the engine from `build_engine` with the REAL Pacer
   (`Pace()`: 25 messages a second, one a second per chat, real monotonic clock and
   `asyncio.sleep`) and the sender's real pause on flood waits. `engine.send()` is called in
   a loop until no row is pending; the engine's clock runs from NOW in real time.
3. Runs: "clean" (every request answered 200); "429" (the server answers 429 with
   retry_after=1 to `--p429` of the requests, seeded); and "ceiling" (no Pacer, no errors:
   how fast the sender could go, i.e. its own per-message cost).
   The baseline of the ceiling, measured in the same run: "bare", as many messages sent
   with aiogram to the same fake server in a plain loop (no outbox, no database, no Pacer):
   what the HTTP round trips alone allow.
4. Per run: messages delivered, wall seconds, msg/s sustained (messages / wall), msg/s
   without the flood-wait pauses, the ratio to the 25/s limit, the busiest second at the
   server, duplicates (chats that got more than one message), failures (rows not `sent`),
   and where the time went: HTTP round trips, Pacer sleeps, flood-wait pauses, and the rest
   (composing, the database, the event loop) per message, with SQL statements per message.
5. The goals, each with whether it is met: clean >= 24.5 msg/s; with 2 % of 429s >= 24
   msg/s outside the pauses; the ceiling >= 100 msg/s (and its share of "bare"); no
   duplicate and no failure in any run. The load average before and after each run is
   printed: others share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from aiogram import Bot
from sqlalchemy import func
from sqlmodel import col, select

from bench.sql import SqlCounter
from bot.adapters.telegram import create_bot
from bot.adapters.telegram_delivery import TelegramDelivery
from bot.composition import Core, build_core_on
from bot.config import load_business_config
from domain.replies import Reply
from scheduler.delivery import Delivery, Recipient
from scheduler.engine import build_engine
from scheduler.sender import Pace
from storage.db import Database, create_engine, sqlite_url_for
from storage.migrate import upgrade
from storage.tables import Client, ClientIdentity, Outbox, OutboxStatus
from testing.fake_bot_api import TOKEN, FakeBotAPI, serving

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "business.example.toml"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday, 12:00 in Moscow
FIRST_CHAT = 5_000_000_000
LIMIT = Pace().per_second
# The goals: (what is measured, at least this many msg/s).
GOALS = {
    "clean": ("sustained", 24.5),
    "429": ("outside the pauses", 24.0),
    "ceiling": ("sustained", 100.0),
}


@dataclass
class Timer:
    """Seconds spent in one kind of await, and how often."""

    seconds: float = 0.0
    count: int = 0
    requested: float = 0.0  # for sleeps: what was asked for

    async def sleep(self, seconds: float) -> None:
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        self.seconds += time.perf_counter() - started
        self.requested += seconds
        self.count += 1


@dataclass
class TimedDelivery:
    inner: Delivery
    timer: Timer = field(default_factory=Timer)

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        started = time.perf_counter()
        try:
            await self.inner.deliver(recipient, reply)
        finally:
            self.timer.seconds += time.perf_counter() - started
            self.timer.count += 1


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


@dataclass
class Result:
    name: str
    rows: int
    run: str = "clean"  # which goal applies: clean, 429, ceiling
    load: str = ""
    messages: int = 0
    requests: int = 0
    refused_429: int = 0
    wall: float = 0.0
    runs: int = 0
    duplicates: int = 0
    failures: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    busiest_second: int = 0
    http: Timer = field(default_factory=Timer)
    pacer: Timer = field(default_factory=Timer)
    pauses: Timer = field(default_factory=Timer)
    sql: SqlCounter = field(default_factory=lambda: SqlCounter(recording=True))

    @property
    def rate(self) -> float:
        return self.messages / self.wall if self.wall else 0.0

    @property
    def rate_without_pauses(self) -> float:
        busy = self.wall - self.pauses.seconds
        return self.messages / busy if busy > 0 else 0.0

    @property
    def goal(self) -> tuple[str, float, float]:
        """What the goal measures, its figure and this run's."""
        measure, least = GOALS[self.run]
        rate = self.rate_without_pauses if measure == "outside the pauses" else self.rate
        return measure, least, rate

    @property
    def met(self) -> bool:
        _, least, rate = self.goal
        return rate >= least and not self.duplicates and not self.failures

    @property
    def own_seconds(self) -> float:
        """Wall time not spent in HTTP, Pacer sleeps or flood-wait pauses."""
        return self.wall - self.http.seconds - self.pacer.seconds - self.pauses.seconds

    def print(self) -> None:
        per = max(self.messages, 1)
        print(f"\n[{self.name}] {self.rows} due rows, drained in {self.runs} engine.send() runs")
        print(f"  {self.load}")
        print(
            f"  messages {self.messages}, requests {self.requests} "
            f"(429: {self.refused_429}), seconds {self.wall:.2f}"
        )
        print(
            f"  msg/s sustained {self.rate:6.2f}  = {self.rate / LIMIT:6.1%} of the "
            f"{LIMIT:g}/s limit"
        )
        print(
            f"  msg/s without flood-wait pauses {self.rate_without_pauses:6.2f} "
            f"= {self.rate_without_pauses / LIMIT:6.1%}   "
            f"(pauses: {self.pauses.count} x, {self.pauses.seconds:.2f} s)"
        )
        print(
            f"  busiest second at the server: {self.busiest_second} requests; "
            f"duplicates {self.duplicates}; failures {self.failures}; "
            f"outcomes {dict(self.outcomes)}"
        )
        overshoot = (self.pacer.seconds - self.pacer.requested) / max(self.pacer.count, 1)
        print(
            f"  per message: HTTP {self.http.seconds / per * 1000:6.2f} ms, "
            f"Pacer sleep {self.pacer.seconds / per * 1000:6.2f} ms "
            f"(asked {self.pacer.requested / per * 1000:.2f} ms; {self.pacer.count} sleeps, "
            f"overshoot {overshoot * 1000:.2f} ms each), "
            f"sender+DB+loop {self.own_seconds / per * 1000:6.2f} ms"
        )
        print(f"  SQL per message: {self.sql.total / per:.1f} ({_kinds(self.sql.kinds, per)})")


def _kinds(statements: Counter[str], per: int) -> str:
    return ", ".join(f"{kind} {n / per:.1f}" for kind, n in statements.most_common())


def busiest_second(times: Sequence[float]) -> int:
    """The most requests that arrived within any one second."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def seed(db: Database, rows: int) -> None:
    consent = NOW - timedelta(days=90)
    async with db.transaction() as session:
        session.add_all(
            Client(
                name=f"Client {n}",
                consent_at=consent,
                marketing_opt_in_at=consent,
                locale="en" if n % 2 else "ru",
                birthday=date(1990, 11, 23),
                source="import",
                created_at=consent,
            )
            for n in range(rows)
        )
    async with db.transaction() as session:
        ids = (await session.exec(select(Client.id).order_by(col(Client.id)))).all()
        session.add_all(
            ClientIdentity(
                client_id=client_id,
                channel="telegram",
                external_id=str(FIRST_CHAT + n),
                verified=True,
                created_at=consent,
            )
            for n, client_id in enumerate(ids)
            if client_id is not None
        )
        session.add_all(
            Outbox(
                kind="birthday",
                client_id=client_id,
                due_at=NOW - timedelta(minutes=1),
                dedupe_key=f"birthday:{client_id}:2026",
                created_at=NOW - timedelta(minutes=1),
                payload={},
            )
            for client_id in ids
        )


async def drain(
    name: str, run: str, *, rows: int, p429: float, paced: bool, batch: int, seed_value: int
) -> Result:
    before = load()
    result = Result(name=name, rows=rows, run=run)
    config = load_business_config(CONFIG)
    with tempfile.TemporaryDirectory(prefix="regulars-sender-bench-") as folder:
        url = sqlite_url_for(str(Path(folder) / "bench.db"))
        await upgrade(url)
        db = Database(create_engine(url))
        try:
            core = await build_core_on(db=db, config=config)
            await seed(db, rows)
            api = FakeBotAPI(p429=p429, retry_after=1, seed=seed_value)
            async with serving(api) as api_url:
                bot = create_bot(TOKEN, api_url=api_url)
                try:
                    await _drain(result, core, bot, paced=paced, batch=batch)
                finally:
                    await bot.session.close()
            result.messages = len(api.delivered)
            result.requests = len(api.requests)
            result.refused_429 = len(api.refused(429))
            per_chat = Counter(r.chat_id for r in api.delivered)
            result.duplicates = sum(1 for n in per_chat.values() if n > 1)
            result.busiest_second = busiest_second([r.at for r in api.requests])
            async with db.reading() as session:
                statuses = await session.exec(
                    select(Outbox.status, func.count()).group_by(col(Outbox.status))
                )
                counts = dict(statuses.all())
            result.failures = sum(n for s, n in counts.items() if s != OutboxStatus.sent)
        finally:
            await db.dispose()
    result.load = f"{before}; after: {load()}"
    return result


async def bare(messages: int) -> tuple[float, int]:
    """The ceiling's baseline: `messages` messages sent with aiogram to the fake Bot API
    in a plain loop, one after another, nothing else. Returns msg/s and what arrived."""
    api = FakeBotAPI()
    async with serving(api) as api_url:
        bot = create_bot(TOKEN, api_url=api_url)
        try:
            started = time.perf_counter()
            for n in range(messages):
                await bot.send_message(FIRST_CHAT + n, f"Message {n}")
            seconds = time.perf_counter() - started
        finally:
            await bot.session.close()
    return messages / seconds, len(api.delivered)


async def _drain(result: Result, core: Core, bot: Bot, *, paced: bool, batch: int) -> None:
    db = core.db
    delivery = TimedDelivery(TelegramDelivery(bot), result.http)
    started = time.monotonic()

    def clock() -> datetime:
        return NOW + timedelta(seconds=time.monotonic() - started)

    engine = build_engine(
        db=db,
        config=core.config,
        catalog=core.deps.catalog,
        translators=core.deps.translators,
        channels={"telegram": delivery},
        clock=clock,
        paces={"telegram": Pace()} if paced else None,
        sleep=result.pauses.sleep,
        batch=batch,
    )
    for pacer in engine.sender.pacers.values():
        pacer.sleep = result.pacer.sleep
    result.sql.attach(db)
    t0 = time.perf_counter()
    while True:
        stats = await engine.send()
        result.runs += 1
        result.outcomes.update(stats.outcomes)
        if not sum(stats.outcomes.values()) and not await _pending(db):
            break
        if not sum(stats.outcomes.values()):
            await asyncio.sleep(0.05)  # rows held for a moment (a chat's second message)
    result.wall = time.perf_counter() - t0


async def _pending(db: Database) -> int:
    async with db.reading() as session:
        found = await session.exec(
            select(func.count()).where(
                col(Outbox.status).in_([OutboxStatus.pending, OutboxStatus.sending])
            )
        )
        return int(found.one())


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.ERROR)  # the sender warns on every flood wait
    wanted = set(args.runs.split(","))
    runs: list[tuple[str, str, float, bool]] = []
    if "clean" in wanted:
        runs.append(("clean", "clean", 0.0, True))
    if "429" in wanted and args.p429 > 0:
        runs.append((f"429 on {args.p429:.0%}", "429", args.p429, True))
    if "ceiling" in wanted:
        runs.append(("ceiling: no Pacer", "ceiling", 0.0, False))
    print(
        f"Sender benchmark: {args.rows} due rows per run, Pace {LIMIT:g}/s, batch {args.batch}; "
        f"expect ~{args.rows / LIMIT:.0f} s per paced run; {load()}"
    )
    results = []
    for name, run, p429, paced in runs:
        result = await drain(
            name,
            run,
            rows=args.rows,
            p429=p429,
            paced=paced,
            batch=args.batch,
            seed_value=args.seed,
        )
        result.print()
        results.append(result)
    bare_rate = None
    if "ceiling" in wanted:
        bare_rate, arrived = await bare(args.rows)
        print(f"\n[bare: aiogram alone] {arrived} messages, {bare_rate:.2f} msg/s; {load()}")
    print()
    for result in results:
        measure, least, rate = result.goal
        versus = ""
        if result.run == "ceiling" and bare_rate:
            versus = f" = {rate / bare_rate:.0%} of bare aiogram ({bare_rate:.0f} msg/s)"
        print(
            f"  {result.name:<18} {result.rate:7.2f} msg/s ({result.rate / LIMIT:6.1%} of "
            f"{LIMIT:g}/s), {result.rate_without_pauses:7.2f} without pauses{versus}, "
            f"duplicates {result.duplicates}, failures {result.failures}; goal: {measure} "
            f">= {least:g} msg/s, no duplicates, no failures: {'met' if result.met else 'NOT met'}"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=3000, help="due outbox rows (3000)")
    parser.add_argument(
        "--p429", type=float, default=0.02, help="share of requests answered 429 (0.02; 0: skip)"
    )
    parser.add_argument("--batch", type=int, default=200, help="rows claimed per run (200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the 429s (1)")
    parser.add_argument(
        "--runs", default="clean,429,ceiling", help="which runs (clean,429,ceiling: all)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
