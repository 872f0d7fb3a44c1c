"""The sender end to end over HTTP: outbox rows → `Messages.compose` → aiogram → a fake Bot
API server on 127.0.0.1, with a fake clock so pacing, pauses and backoff are exact.

`FakeTime` moves the wall clock (the engine's `now`) and the monotonic clock (the Pacer's
and the fake server's) together; every sleep is recorded and advances both, so what the
server saw arrive is what a real run would have spaced out."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiogram import Bot
from sqlmodel import col, select

from bot.adapters.telegram import create_bot
from bot.adapters.telegram_delivery import TelegramDelivery
from bot.composition import Core
from domain.replies import Reply
from scheduler.delivery import Delivery, Recipient
from scheduler.engine import Engine
from scheduler.sender import RECOVER_EVERY, RENEW_AFTER, STALE_AFTER, Pace, Pacer
from storage.outbox import claim_due, requeue_stale
from storage.tables import Client, Outbox, OutboxStatus, VisitStatus
from testing.fake_bot_api import (
    TOKEN,
    FakeBotAPI,
    blocked,
    proxy_error,
    server_error,
    serving,
    too_many,
)
from tests.helpers import add_client, add_visit, chats, utc_visit

START = utc_visit(2026, 11, 23, 9)  # Monday, 09:00 in Moscow
SERVICE = "Men's haircut"
MASTER = "Artem"  # the reminders go to English readers
INTERVAL = 1 / Pace().per_second


@dataclass
class FakeTime:
    now: datetime = START
    mono: float = 1_000.0
    pacer_sleeps: list[float] = field(default_factory=list)
    sender_sleeps: list[float] = field(default_factory=list)

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds

    def to(self, moment: datetime) -> None:
        self.advance((moment - self.now).total_seconds())

    async def pacer_sleep(self, seconds: float) -> None:
        self.pacer_sleeps.append(seconds)
        self.advance(seconds)

    async def sender_sleep(self, seconds: float) -> None:
        self.sender_sleeps.append(seconds)
        self.advance(seconds)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def api(fake: FakeTime) -> AsyncIterator[tuple[FakeBotAPI, str]]:
    server = FakeBotAPI(clock=fake.monotonic)
    async with serving(server) as url:
        yield server, url


@pytest.fixture
async def bot(api: tuple[FakeBotAPI, str]) -> AsyncIterator[Bot]:
    _, url = api
    telegram = create_bot(TOKEN, api_url=url)
    try:
        yield telegram
    finally:
        await telegram.session.close()


@pytest.fixture
def server(api: tuple[FakeBotAPI, str]) -> FakeBotAPI:
    return api[0]


def engine_for(core: Core, fake: FakeTime, delivery: Delivery, **options: Any) -> Engine:
    """A fresh engine (as after a restart): the real Sender and Pacer on fake time."""
    engine = core.engine(
        channels={"telegram": delivery},
        clock=fake.wall,
        paces=None,
        sleep=fake.sender_sleep,
        **options,
    )
    engine.sender.pacers = {
        "telegram": Pacer(Pace(), monotonic=fake.monotonic, sleep=fake.pacer_sleep)
    }
    return engine


@pytest.fixture
def engine(core: Core, fake: FakeTime, bot: Bot) -> Engine:
    return engine_for(core, fake, TelegramDelivery(bot))


FIRST_CHAT = 700_000


async def a_client(core: Core, n: int, **fields: Any) -> Client:
    values: dict[str, Any] = {
        "name": f"Client {n}",
        "telegram_id": FIRST_CHAT + n,
        "consent_at": START - timedelta(days=30),
        "locale": "en",
        **fields,
    }
    return await add_client(core, **values)


async def a_reminder(
    core: Core, client: Client, *, visit_at: datetime, due_at: datetime, key: str = ""
) -> Outbox:
    """A 24-hour reminder for a booked visit of `client`, due at `due_at`."""
    assert client.id is not None
    visit = await add_visit(
        core,
        client_id=client.id,
        master="artem",
        service="haircut",
        start=visit_at,
        status=VisitStatus.booked,
    )
    async with core.db.transaction() as session:
        row = Outbox(
            kind="reminder",
            client_id=client.id,
            due_at=due_at,
            created_at=due_at,
            dedupe_key=key or f"reminder:{visit.id}:24",
            payload={"visit_id": visit.id, "hours": 24},
        )
        session.add(row)
        await session.flush()
        return row


async def clients_with_reminders(core: Core, count: int) -> list[tuple[Client, Outbox]]:
    made = []
    for n in range(1, count + 1):
        client = await a_client(core, n)
        row = await a_reminder(
            core, client, visit_at=utc_visit(2026, 11, 24, 10) + timedelta(minutes=n), due_at=START
        )
        made.append((client, row))
    return made


async def outbox(core: Core, row: Outbox) -> Outbox:
    async with core.db.reading() as session:
        found = await session.get(Outbox, row.id)
        assert found is not None
        return found


async def client_of(core: Core, client: Client) -> Client:
    async with core.db.reading() as session:
        found = await session.get(Client, client.id)
        assert found is not None
        return found


async def statuses(core: Core) -> dict[int, str]:
    async with core.db.reading() as session:
        rows = (await session.exec(select(Outbox))).all()
        return {row.id or 0: row.status for row in rows}


def chat(client: Client) -> int:
    """The Telegram chat `a_client` gave this client."""
    return FIRST_CHAT + int(client.name.removeprefix("Client "))


def assert_reminder(text: str) -> None:
    when = r"on Tuesday, November 24, 1[01]:\d\d"
    assert re.fullmatch(f"Reminder: {SERVICE} with {MASTER}, {when}\\.\nAddress: .+", text), text
    assert "Address: 12 Pokrovka Street, Moscow" in text


# --- pacing ------------------------------------------------------------------------------


async def test_sixty_messages_go_out_no_faster_than_25_a_second(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    made = await clients_with_reminders(core, 60)

    stats = await engine.send()

    assert stats["sent"] == 60
    assert sorted(r.chat_id for r in server.requests) == sorted(chat(c) for c, _ in made)
    for request in server.requests:
        assert_reminder(request.text)
        assert request.buttons == ["I'll be there", "Reschedule", "Cancel visit"]
    # The Pacer asked for 59 gaps of 1/25 s: 60 messages take 60/25 s minus the first slot.
    assert sum(fake.pacer_sleeps) == pytest.approx(59 * INTERVAL, abs=1e-6)
    arrivals = [r.at for r in server.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= INTERVAL - 1e-9
    # At most 25 in any second (less a hair for float rounding of the fake clock).
    busiest_second = max(sum(1 for t in arrivals if s <= t < s + 1 - 1e-6) for s in arrivals)
    assert busiest_second == 25
    assert set((await statuses(core)).values()) == {OutboxStatus.sent}
    assert not fake.sender_sleeps


async def test_late_wake_ups_keep_the_pace_and_a_second_holds_at_most_one_more() -> None:
    """On a busy machine every sleep wakes late; the Pacer keeps to its schedule instead
    of adding each delay to every gap."""
    clock = FakeTime()
    sent: list[float] = []

    async def late_sleep(seconds: float) -> None:
        clock.advance(seconds + 0.012)  # every sleep overshoots by 12 ms

    pacer = Pacer(Pace(), monotonic=clock.monotonic, sleep=late_sleep)
    for n in range(250):
        await pacer.take(f"chat {n}")
        sent.append(clock.mono)
        clock.advance(0.003)  # the work of sending

    seconds = sent[-1] - sent[0]
    assert 249 / seconds == pytest.approx(Pace().per_second, rel=0.01)
    busiest = max(sum(1 for t in sent if s <= t < s + 1) for s in sent)
    assert busiest <= Pace().per_second + 1


async def test_a_second_message_to_the_same_chat_waits_a_second(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    client = await a_client(core, 1)
    first = await a_reminder(core, client, visit_at=utc_visit(2026, 11, 24, 10), due_at=START)
    second = await a_reminder(core, client, visit_at=utc_visit(2026, 11, 25, 10), due_at=START)

    stats = await engine.send()

    assert (stats["sent"], stats["held"]) == (1, 1)
    assert len(server.requests) == 1
    held = await outbox(core, second)
    assert held.status == OutboxStatus.pending and held.attempts == 0
    assert held.due_at == START + timedelta(seconds=1)
    assert (await outbox(core, first)).status == OutboxStatus.sent

    fake.advance(0.5)
    assert sum((await engine.send()).outcomes.values()) == 0  # not due yet
    assert len(server.requests) == 1

    fake.advance(0.5)
    assert (await engine.send())["sent"] == 1
    one, two = server.to_chat(chat(client))
    assert two.at - one.at >= 1.0
    assert "November 25" in two.text
    assert (await outbox(core, second)).status == OutboxStatus.sent


# --- flood wait ----------------------------------------------------------------------------


async def test_a_flood_wait_pauses_everything_and_the_message_goes_out_once(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    (anna, first), (boris, second) = await clients_with_reminders(core, 2)
    server.script(too_many(7))  # the very first sendMessage

    stats = await engine.send()

    # The sender sleeps out the pause and hands the rest of its batch back to the outbox,
    # so nothing sits claimed while it waits.
    assert (stats["paused"], stats["sent"]) == (1, 0)
    assert fake.sender_sleeps == [7]
    for row in (first, second):
        waiting = await outbox(core, row)
        assert (waiting.status, waiting.attempts, waiting.last_error) == (
            OutboxStatus.pending,
            0,
            None,
        )
    [refused] = server.requests
    assert (refused.chat_id, refused.status) == (chat(anna), 429)

    assert (await engine.send())["sent"] == 2
    assert (await outbox(core, first)).status == OutboxStatus.sent
    assert (await outbox(core, second)).status == OutboxStatus.sent
    assert [r.chat_id for r in server.delivered] == [chat(anna), chat(boris)]
    assert server.delivered[0].at - refused.at >= 7  # nothing went out during the pause
    assert not server.duplicates()
    assert sum((await engine.send()).outcomes.values()) == 0


async def test_after_a_flood_wait_the_rest_of_the_batch_waits_unclaimed_and_goes_out_once(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    made = await clients_with_reminders(core, 6)
    third, _ = made[2]
    server.script_chat(chat(third), too_many(3), times=1)
    seen_during_the_pause: list[list[tuple[str, int]]] = []

    async def sleep(seconds: float) -> None:
        async with core.db.reading() as session:
            rows = (await session.exec(select(Outbox).order_by(col(Outbox.id)))).all()
        seen_during_the_pause.append([(row.status, row.attempts) for row in rows])
        await fake.sender_sleep(seconds)

    engine.sender.sleep = sleep
    stats = await engine.send()

    assert (stats["sent"], stats["paused"]) == (2, 1)
    assert fake.sender_sleeps == [3]
    # Given back before the pause: the refused row and the three after it are due again,
    # unclaimed and with their attempt not counted, while the sender waits.
    assert seen_during_the_pause == [[("sent", 1)] * 2 + [("pending", 0)] * 4]
    for _, row in made[2:]:
        waiting = await outbox(core, row)
        assert waiting.due_at <= fake.now and waiting.last_error is None

    assert (await engine.send())["sent"] == 4
    assert sorted(r.chat_id for r in server.delivered) == sorted(chat(c) for c, _ in made)
    assert not server.duplicates()
    assert [(await outbox(core, row)).attempts for _, row in made] == [1] * 6
    assert sum((await engine.send()).outcomes.values()) == 0


async def test_a_row_another_sender_took_over_meanwhile_is_left_to_it(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    """A batch that outlives STALE_AFTER (a slow messenger): before its next delivery the
    sender renews its claims and finds the rows another sender took back as stale."""
    made = await clients_with_reminders(core, 4)
    last = made[3][1].id
    taken: list[Outbox] = []

    async def slow_then_taken_over(row: Outbox, recipient: Recipient, now: datetime) -> None:
        if taken:
            return
        fake.advance(STALE_AFTER.total_seconds() + 1)  # the rest of the batch grows stale
        # Another sender recovers it, keeps the last row and gives the other two back.
        async with core.db.transaction() as session:
            await requeue_stale(session=session, now=fake.now, after=STALE_AFTER, max_attempts=5)
        async with core.db.transaction() as session:
            for other in await claim_due(session=session, now=fake.now, limit=100):
                if other.id == last:
                    taken.append(other)
                else:
                    other.status, other.attempts = OutboxStatus.pending, other.attempts - 1
                    session.add(other)

    engine.sender.on_sent = slow_then_taken_over
    stats = await engine.send()

    assert len(taken) == 1
    # None of the three is ours any more: the last row is the other sender's, the two
    # before it are pending again, and the next run sends them.
    assert (stats["sent"], stats["lost"]) == (1, 3)
    assert (await outbox(core, made[3][1])).status == OutboxStatus.sending
    assert [(await outbox(core, row)).status for _, row in made[1:3]] == ["pending"] * 2
    assert (await engine.send())["sent"] == 2
    assert [r.chat_id for r in server.delivered] == [chat(c) for c, _ in made[:3]]
    assert not server.duplicates()


async def test_a_claimed_row_cancelled_meanwhile_is_not_sent(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    """Rows a client's erasure (or anything else) settles while they wait in the batch."""
    made = await clients_with_reminders(core, 3)

    async def cancel_the_next(row: Outbox, recipient: Recipient, now: datetime) -> None:
        async with core.db.transaction() as session:
            later = await session.get(Outbox, made[1][1].id)
            assert later is not None
            if later.status == OutboxStatus.sending:
                later.status, later.last_error = OutboxStatus.skipped, "erased"
                session.add(later)

    engine.sender.on_sent = cancel_the_next
    stats = await engine.send()

    assert (stats["sent"], stats["lost"]) == (2, 1)
    assert [r.chat_id for r in server.delivered] == [chat(made[0][0]), chat(made[2][0])]
    cancelled = await outbox(core, made[1][1])
    assert (cancelled.status, cancelled.last_error) == (OutboxStatus.skipped, "erased")


async def test_claims_renew_for_the_whole_batch_once_they_are_renew_after_old(
    core: Core, server: FakeBotAPI, fake: FakeTime, bot: Bot
) -> None:
    await clients_with_reminders(core, 3)

    @dataclass
    class Slow:
        inner: Delivery

        async def deliver(self, recipient: Recipient, reply: Reply) -> None:
            await self.inner.deliver(recipient, reply)
            fake.advance(RENEW_AFTER.total_seconds())

    engine = engine_for(core, fake, Slow(TelegramDelivery(bot)))
    claimed_at: list[list[datetime | None]] = []

    async def look(row: Outbox, recipient: Recipient, now: datetime) -> None:
        async with core.db.reading() as session:
            rows = (await session.exec(select(Outbox).order_by(col(Outbox.id)))).all()
        claimed_at.append([row.claimed_at for row in rows])

    engine.sender.on_sent = look
    assert (await engine.send())["sent"] == 3

    renewed = START + RENEW_AFTER
    # The first message went on the claim; before the second the whole batch was renewed
    # in one statement, and again before the third.
    assert claimed_at == [
        [START] * 3,
        [START, renewed, renewed],
        [START, renewed, renewed + RENEW_AFTER],
    ]
    assert len(server.delivered) == 3 and not server.duplicates()
    assert set((await statuses(core)).values()) == {OutboxStatus.sent}


async def test_a_stop_gives_the_rest_of_the_batch_back_and_a_held_row_keeps_its_time(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    anna = await a_client(core, 10)
    first = await a_reminder(core, anna, visit_at=utc_visit(2026, 11, 24, 10), due_at=START)
    second = await a_reminder(core, anna, visit_at=utc_visit(2026, 11, 25, 10), due_at=START)
    others = [row for _, row in await clients_with_reminders(core, 3)]  # after Anna's
    sender = engine.sender
    original = sender.on_sent

    async def stop_after_two(row: Outbox, recipient: Recipient, now: datetime) -> None:
        if len(server.delivered) == 2:
            sender.stop()
        if original is not None:
            await original(row, recipient, now)

    sender.on_sent = stop_after_two
    stats = await engine.send()

    assert (stats["sent"], stats["held"]) == (2, 1)
    assert (await outbox(core, first)).status == OutboxStatus.sent
    held = await outbox(core, second)  # Anna's second message: a second after her first
    assert (held.status, held.attempts, held.due_at) == (
        OutboxStatus.pending,
        0,
        START + timedelta(seconds=1),
    )
    untried = [await outbox(core, row) for row in others[1:]]
    assert [(row.status, row.attempts) for row in untried] == [(OutboxStatus.pending, 0)] * 2
    assert await sender.release_held(fake.now) == 0  # nothing left in our hands


# --- blocked -------------------------------------------------------------------------------


async def test_a_client_who_blocked_the_bot_is_unreachable_and_gets_nothing_more(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    client = await a_client(core, 1)
    first = await a_reminder(core, client, visit_at=utc_visit(2026, 11, 24, 10), due_at=START)
    later = START + timedelta(hours=1)
    second = await a_reminder(core, client, visit_at=utc_visit(2026, 11, 25, 10), due_at=later)
    server.script_chat(chat(client), blocked())

    assert (await engine.send())["failed"] == 1

    failed = await outbox(core, first)
    assert failed.status == OutboxStatus.failed
    assert failed.last_error is not None and "unreachable" in failed.last_error
    assert "bot was blocked by the user" in failed.last_error
    gone = await client_of(core, client)
    assert (await chats(core, client.id))["telegram"].unreachable_since == START
    assert gone.unreachable_since == START  # Telegram was the client's only messenger

    fake.to(later)
    assert (await engine.send())["skipped"] == 1
    skipped = await outbox(core, second)
    assert skipped.status == OutboxStatus.skipped
    assert skipped.last_error == "the client is unreachable"
    assert len(server.requests) == 1  # the second one was never tried


async def test_blocked_on_telegram_with_whatsapp_left_only_closes_telegram(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    client = await a_client(core, 1, whatsapp_id="79120000001")
    first = await a_reminder(core, client, visit_at=utc_visit(2026, 11, 24, 10), due_at=START)
    second = await a_reminder(core, client, visit_at=utc_visit(2026, 11, 25, 10), due_at=START)
    server.script_chat(chat(client), blocked())

    stats = await engine.send()

    gone = await client_of(core, client)
    assert (await chats(core, client.id))["telegram"].unreachable_since == START
    assert gone.unreachable_since is None
    assert (await outbox(core, first)).status == OutboxStatus.failed
    # The next message would go by WhatsApp, which this bot is not connected to.
    skipped = await outbox(core, second)
    assert (skipped.status, skipped.last_error) == (
        OutboxStatus.skipped,
        "the client has no messenger the bot can reach",
    )
    assert (stats["failed"], stats["skipped"]) == (1, 1)
    assert len(server.requests) == 1


# --- server errors -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502])
async def test_server_errors_are_retried_with_backoff_then_fail(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime, status: int
) -> None:
    [(client, row)] = await clients_with_reminders(core, 1)
    server.script_chat(chat(client), server_error(status))
    max_attempts = engine.sender.max_attempts
    description = {500: "Internal Server Error", 502: "Bad Gateway"}[status]

    for attempt in range(1, max_attempts):
        assert (await engine.send())["retry"] == 1
        retried = await outbox(core, row)
        assert (retried.status, retried.attempts) == (OutboxStatus.pending, attempt)
        backoff = timedelta(seconds=5 * 2 ** (attempt - 1))
        assert retried.due_at == fake.now + backoff  # moves forward: 5, 10, 20, 40 s
        assert retried.last_error is not None and description in retried.last_error
        fake.advance(backoff.total_seconds() - 0.1)
        assert sum((await engine.send()).outcomes.values()) == 0  # not before the backoff
        fake.advance(0.1)

    assert (await engine.send())["failed"] == 1
    failed = await outbox(core, row)
    assert (failed.status, failed.attempts) == (OutboxStatus.failed, max_attempts)
    assert len(server.to_chat(chat(client))) == max_attempts
    assert not server.delivered
    fake.advance(3600)
    assert sum((await engine.send()).outcomes.values()) == 0
    assert (await client_of(core, client)).unreachable_since is None


async def test_a_server_error_that_passes_is_retried_until_sent(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    [(client, row)] = await clients_with_reminders(core, 1)
    server.script_chat(chat(client), server_error(502), times=2)

    assert (await engine.send())["retry"] == 1
    fake.advance(5)
    assert (await engine.send())["retry"] == 1
    fake.advance(10)
    assert (await engine.send())["sent"] == 1

    sent = await outbox(core, row)
    assert (sent.status, sent.attempts, sent.last_error) == (OutboxStatus.sent, 3, None)
    assert [r.status for r in server.to_chat(chat(client))] == [502, 502, 200]
    assert_reminder(server.texts(chat(client))[0])


async def test_a_proxy_error_page_is_a_transient_error(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    (anna, first), (_, second) = await clients_with_reminders(core, 2)
    server.script_chat(chat(anna), proxy_error(502), times=1)

    stats = await engine.send()

    assert (stats["retry"], stats["sent"]) == (1, 1)
    assert (await outbox(core, first)).status == OutboxStatus.pending
    assert (await outbox(core, second)).status == OutboxStatus.sent


# --- quiet hours ---------------------------------------------------------------------------


async def test_a_reminder_due_at_night_waits_for_the_morning(
    core: Core, engine: Engine, server: FakeBotAPI, fake: FakeTime
) -> None:
    night = utc_visit(2026, 11, 23, 23, 30)
    morning = utc_visit(2026, 11, 24, 8)
    fake.to(night)
    anna = await a_client(core, 1)
    boris = await a_client(core, 2)
    later_today = await a_reminder(
        core, anna, visit_at=utc_visit(2026, 11, 24, 10, 15), due_at=night
    )
    already_begun = await a_reminder(
        core, boris, visit_at=utc_visit(2026, 11, 24, 7, 45), due_at=night
    )

    assert (await engine.send())["held"] == 2

    assert not server.requests
    for row in (later_today, already_begun):
        held = await outbox(core, row)
        assert (held.status, held.attempts, held.due_at) == (OutboxStatus.pending, 0, morning)

    fake.to(morning - timedelta(minutes=1))
    assert sum((await engine.send()).outcomes.values()) == 0
    fake.to(morning)
    stats = await engine.send()

    assert (stats["sent"], stats["skipped"]) == (1, 1)
    [request] = server.requests
    assert request.chat_id == chat(anna)
    assert request.text.startswith(f"Reminder: {SERVICE} with {MASTER}, on Tuesday")
    assert "10:15" in request.text
    assert request.at == fake.mono  # sent at 08:00, not at 23:30
    sent = await outbox(core, later_today)
    assert (sent.status, sent.sent_at) == (OutboxStatus.sent, morning)
    skipped = await outbox(core, already_begun)
    assert (skipped.status, skipped.last_error) == (OutboxStatus.skipped, "the visit has begun")


# --- restarts ------------------------------------------------------------------------------


class Crash(BaseException):
    """The process dies (a kill, a power cut) at this point."""


@dataclass
class CrashAfterDelivering:
    """Telegram has the message, then the process dies before the outbox is updated."""

    inner: Delivery
    crash_after: int = 1
    delivered: int = 0

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        await self.inner.deliver(recipient, reply)
        self.delivered += 1
        if self.delivered >= self.crash_after:
            raise Crash


def assert_each_sent_once(server: FakeBotAPI, made: Sequence[tuple[Client, Outbox]]) -> None:
    for client, _ in made:
        [text] = server.texts(chat(client))
        assert_reminder(text)


async def claimed_by_a_dead_sender(core: Core, fake: FakeTime, count: int) -> list[Outbox]:
    """`count` due rows, claimed (`sending`) by a sender that died before sending them."""
    await clients_with_reminders(core, count)
    async with core.db.transaction() as session:
        claimed = await claim_due(session=session, now=fake.now, limit=100)
    assert len(claimed) == count
    return claimed


async def test_rows_claimed_by_a_sender_that_died_go_out_once_after_a_restart(
    core: Core, server: FakeBotAPI, fake: FakeTime, bot: Bot
) -> None:
    claimed = await claimed_by_a_dead_sender(core, fake, 5)

    fake.advance(180)  # three minutes after the claim: STALE_AFTER has passed
    restarted = engine_for(core, fake, TelegramDelivery(bot))
    assert (await restarted.send())["sent"] == 5

    assert len(server.requests) == 5
    assert sorted(r.chat_id for r in server.requests) == [700_001 + n for n in range(5)]
    for text in server.texts():
        assert_reminder(text)
    assert set((await statuses(core)).values()) == {OutboxStatus.sent}
    assert [(await outbox(core, row)).attempts for row in claimed] == [2] * 5
    fake.advance(3600)
    assert sum((await restarted.send()).outcomes.values()) == 0
    assert len(server.requests) == 5


async def test_rows_of_a_dead_sender_wait_at_most_until_the_next_recovery(
    core: Core, server: FakeBotAPI, fake: FakeTime, bot: Bot
) -> None:
    await claimed_by_a_dead_sender(core, fake, 3)
    fake.advance(60)  # restarted at once: the rows might still be in another sender's hands
    restarted = engine_for(core, fake, TelegramDelivery(bot))
    assert sum((await restarted.send()).outcomes.values()) == 0
    assert set((await statuses(core)).values()) == {OutboxStatus.sending}

    fake.advance(RECOVER_EVERY.total_seconds() - 1)  # stale, but not looked for yet
    assert sum((await restarted.send()).outcomes.values()) == 0
    fake.advance(1)
    assert fake.now - START == timedelta(seconds=60) + RECOVER_EVERY >= STALE_AFTER
    assert (await restarted.send())["sent"] == 3

    assert len(server.requests) == 3 and not server.duplicates()
    assert set((await statuses(core)).values()) == {OutboxStatus.sent}


async def test_a_message_delivered_just_before_a_crash_repeats_at_most_once(
    core: Core, server: FakeBotAPI, fake: FakeTime, bot: Bot
) -> None:
    made = await clients_with_reminders(core, 5)
    dying = engine_for(core, fake, CrashAfterDelivering(TelegramDelivery(bot)))

    with pytest.raises(Crash):
        await dying.send()

    assert len(server.delivered) == 1
    assert set((await statuses(core)).values()) == {OutboxStatus.sending}

    fake.advance(180)
    restarted = engine_for(core, fake, TelegramDelivery(bot))
    assert (await restarted.send())["sent"] == 5

    assert len(server.requests) <= len(made) + 1
    assert set((await statuses(core)).values()) == {OutboxStatus.sent}  # none lost
    first_chat = chat(made[0][0])
    assert server.duplicates() == {(first_chat, server.texts(first_chat)[0]): 2}
    assert_each_sent_once(server, made[1:])
    for _, row in made:
        assert (await outbox(core, row)).attempts == 2
