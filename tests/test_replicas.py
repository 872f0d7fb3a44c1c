"""Two replicas on one database, as `regulars run` behind a load balancer runs them: two
engines of their own (own connection pools, own senders, own conversations) on the same
database. Each outbox row goes out once, the bot's pace holds for both together, a slot is
booked once, one chat's turns do not interleave, and two planners plan a message once.

The suite runs these on SQLite and again on PostgreSQL (`make test-postgres`), where they
are what the issue asks of replicas: the sender's `FOR UPDATE SKIP LOCKED`, the planner's
`ON CONFLICT DO NOTHING`, the master's and the conversation's row locks, the pace booked in
`send_pace`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bot.adapters.telegram import create_bot
from bot.adapters.telegram_delivery import TelegramDelivery
from bot.composition import Core, build_core_on
from domain.business import BusinessConfig
from domain.replies import Reply
from scheduler.delivery import Delivery, Recipient
from scheduler.engine import Engine
from scheduler.sender import Pace, PaceWait, SharedPacer
from storage.db import Database, create_engine, sqlite_url_for
from storage.pace import MAX_AHEAD_SECONDS
from storage.tables import Outbox, OutboxStatus, SendPace, Visit, VisitStatus
from testing.chat import ChatClient, Clock
from testing.fake_bot_api import TOKEN, FakeBotAPI, serving
from tests.helpers import add_visit, pick_time, register, utc_visit, visits
from tests.test_sender import START, a_client, chat, clients_with_reminders

PACE = Pace(per_second=20.0, per_chat_seconds=1.0)
MESSAGES = 60


@pytest.fixture
async def replicas(db: Database, config: BusinessConfig) -> AsyncIterator[tuple[Core, Core]]:
    """The test's database seen by two replicas: the `db` fixture's engine and a second
    engine on the same URL."""
    first = await build_core_on(db=db, config=config)
    other = Database(create_engine(db.engine.url.render_as_string(hide_password=False)))
    try:
        yield first, await build_core_on(db=other, config=config)
    finally:
        await other.dispose()


class Stamped(Delivery):
    """Notes when each replica hands a message to Telegram: the moment its pacer let it go."""

    def __init__(self, inner: Delivery, moments: list[float]) -> None:
        self.inner = inner
        self.moments = moments

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        self.moments.append(time.monotonic())
        await self.inner.deliver(recipient, reply)


async def drain(engine: Engine, core: Core) -> int:
    """Send until the outbox has nothing pending or sending; returns how many this replica
    sent."""
    sent = 0
    while True:
        stats = await engine.send()
        sent += stats["sent"]
        if not sum(stats.outcomes.values()):
            async with core.db.reading() as session:
                left = await session.scalar(
                    select(func.count())
                    .select_from(Outbox)
                    .where(col(Outbox.status).in_([OutboxStatus.pending, OutboxStatus.sending]))
                )
            if not left:
                return sent
            await asyncio.sleep(0.02)


async def test_two_replicas_send_each_row_once_at_the_bots_pace_together(
    replicas: tuple[Core, Core],
) -> None:
    first, second = replicas
    made = await clients_with_reminders(first, MESSAGES)
    api = FakeBotAPI()
    moments: list[float] = []
    started = time.monotonic()

    def clock() -> datetime:
        return START + timedelta(seconds=time.monotonic() - started)

    async with serving(api) as url:
        bots = [create_bot(TOKEN, api_url=url) for _ in replicas]
        try:
            engines = [
                core.engine(
                    channels={"telegram": Stamped(TelegramDelivery(bot), moments)},
                    clock=clock,
                    paces={"telegram": PACE},
                    batch=10,  # small batches, so both replicas keep claiming
                )
                for core, bot in zip(replicas, bots, strict=True)
            ]
            sent = await asyncio.gather(
                *(drain(e, c) for e, c in zip(engines, replicas, strict=True))
            )
        finally:
            for bot in bots:
                await bot.session.close()

    # Each row once: every client got their reminder, nobody got two.
    assert sorted(request.chat_id for request in api.requests) == sorted(chat(c) for c, _ in made)
    assert sum(sent) == MESSAGES and min(sent) > 0, sent  # both replicas sent
    async with second.db.reading() as session:
        statuses = (await session.exec(select(Outbox.status))).all()
        pace = await session.get(SendPace, "telegram")
    assert statuses == [OutboxStatus.sent] * MESSAGES
    assert pace is not None  # the slots were booked in the database
    # The pace of the bot, not of each replica: 20 a second for both together. A slot used
    # a little late (less than one interval) lets one more into a second, and each
    # replica's reading of the server's clock is off by its round trip: at most 22. Each
    # replica alone at 20 a second would have let 40 into a second.
    moments.sort()
    busiest = max(sum(1 for t in moments if s <= t < s + 1) for s in moments)
    assert busiest <= PACE.per_second + 2, busiest
    # 60 messages at 20 a second take about three seconds (at 40, one and a half).
    assert moments[-1] - moments[0] >= (MESSAGES - 1 - 2) / PACE.per_second


async def test_a_pause_telegram_asks_of_one_replica_holds_the_other_too(
    replicas: tuple[Core, Core],
) -> None:
    """A 429 counts the bot's messages: when one replica is told to wait, the other books
    no slot before the pause is over."""
    engines = [
        core.engine(channels={"telegram": Nowhere()}, clock=lambda: START) for core in replicas
    ]
    told, other = (engine.sender.pacers["telegram"] for engine in engines)
    await told.take("1")
    before = time.monotonic()
    await told.pause(0.5)

    await other.take("2")

    assert time.monotonic() - before >= 0.45


class Nowhere(Delivery):
    async def deliver(self, recipient: Recipient, reply: Reply) -> None:  # pragma: no cover
        raise AssertionError("nothing is delivered in this test")


async def test_two_clients_on_two_replicas_confirming_one_slot_only_one_gets_it(
    replicas: tuple[Core, Core], clock: Clock
) -> None:
    chats = [
        ChatClient(core.conversations, clock, external_id=str(n), language="en")
        for n, core in enumerate(replicas, start=1)
    ]
    for n, person in enumerate(chats):
        await register(person, phone=f"+7912000000{n}")
        await person.click("Book a visit")
        await person.click("Fade")
        await person.click("Ilya")
        await person.click("Thu, Nov 26")
        await pick_time(person, "16:00")
    confirm = [person.button("Confirm").payload for person in chats]

    answers = await asyncio.gather(
        *(person.press(payload) for person, payload in zip(chats, confirm, strict=True))
    )

    kinds = sorted(str(replies[-1].kind) for replies in answers)
    assert kinds == ["None", "booking_confirmation"]
    refused = next(replies[-1] for replies in answers if replies[-1].kind is None)
    assert "is no longer available" in refused.text
    [visit] = await visits(replicas[0])
    assert visit.starts_at == utc_visit(2026, 11, 26, 16)


async def test_one_chat_pressing_confirm_on_both_replicas_at_once_books_once(
    replicas: tuple[Core, Core], clock: Clock
) -> None:
    """A webhook retry, or a double tap, landing on the two replicas: the chat's turns
    wait for each other on its conversation row."""
    person, same_chat = (
        ChatClient(core.conversations, clock, external_id="42", language="en") for core in replicas
    )
    await register(person)
    await person.click("Book a visit")
    await person.click("Fade")
    await person.click("Ilya")
    await person.click("Thu, Nov 26")
    await pick_time(person, "16:00")
    confirm = person.button("Confirm").payload

    answers = await asyncio.gather(person.press(confirm), same_chat.press(confirm))

    texts = sorted(replies[-1].text.split("\n")[0] for replies in answers)
    assert texts == ["Done! You are booked.", "You are already booked for this time."]
    assert len(await visits(replicas[0])) == 1


async def test_two_planners_at_the_same_minute_plan_each_message_once(
    replicas: tuple[Core, Core],
) -> None:
    first, _ = replicas
    for n in range(1, 21):
        client = await a_client(first, n)
        assert client.id is not None
        await add_visit(
            first,
            client_id=client.id,
            master="artem",
            service="haircut",
            start=START + timedelta(hours=24, minutes=-30 * n),  # the 24-hour reminder is due
            status=VisitStatus.booked,
        )
    engines = [
        core.engine(channels={"telegram": Nowhere()}, clock=lambda: START, paces=None)
        for core in replicas
    ]

    results = await asyncio.gather(*(engine.plan() for engine in engines))

    async with first.db.reading() as session:
        rows = (await session.exec(select(Outbox))).all()
        booked = [visit.id or 0 for visit in (await session.exec(select(Visit))).all()]
    reminded = sorted(row.payload["visit_id"] for row in rows if row.kind == "reminder")
    assert reminded == sorted(booked)  # every visit's reminder, once
    assert len({row.dedupe_key for row in rows}) == len(rows)
    assert sum(result.total for result in results) == len(rows)  # nobody counted a twin


async def test_a_long_pause_of_the_other_replica_gives_the_batch_back_unsent(
    replicas: tuple[Core, Core],
) -> None:
    """Told to wait 30 s by the other replica's 429, a sender does not sit on its claimed
    rows: they go back to the outbox, pending, while it waits."""
    first, second = replicas
    await clients_with_reminders(first, 3)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    waiting = first.engine(channels={"telegram": Nowhere()}, clock=lambda: START, sleep=sleep)
    other = second.engine(channels={"telegram": Nowhere()}, clock=lambda: START)
    await other.sender.pacers["telegram"].pause(30)

    stats = await waiting.send()

    assert stats["paused"] == 1 and stats["sent"] == 0
    assert len(sleeps) == 1 and 29 <= sleeps[0] <= 30
    async with first.db.reading() as session:
        statuses = (await session.exec(select(Outbox.status))).all()
    assert statuses == [OutboxStatus.pending] * 3


async def test_a_clock_stepped_back_holds_sending_for_minutes_not_an_hour(
    replicas: tuple[Core, Core],
) -> None:
    first, _ = replicas
    before, after = (
        core.engine(channels={"telegram": Nowhere()}, clock=lambda: START).sender.pacers["telegram"]
        for core in replicas
    )
    await before.take("1")  # the row exists
    async with first.db.transaction() as session:  # as if the server's clock went back 1 h
        row = await session.get(SendPace, "telegram")
        assert row is not None
        row.next_at += 3600
        session.add(row)

    with pytest.raises(PaceWait) as wait:
        await after.take("2")

    assert 0 < wait.value.seconds <= MAX_AHEAD_SECONDS + 1


async def test_without_the_pace_table_a_replica_paces_alone_and_sends(
    tmp_path: Path, config: BusinessConfig
) -> None:
    """The booking fails (here: a database without the table); the sender goes on at the
    process's own pace instead of failing its batch."""
    empty = Database(create_engine(sqlite_url_for(str(tmp_path / "empty.db"))))
    try:
        pacer = SharedPacer(PACE, db=empty, channel="telegram")
        started = time.monotonic()
        for n in range(5):
            await pacer.take(str(n))
        assert time.monotonic() - started >= 4 / PACE.per_second - 0.01  # paced all the same
    finally:
        await empty.dispose()
