"""The next visit booked before the client leaves: when the master marks a visit came, the
client's thank-you offers the next visit at their rhythm with the same master, three times
on different days one tap away (beyond the booking horizon when the rhythm is longer); a
decline leaves the usual nudge for later, never in the same week."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.composition import Core
from domain import vocabulary as press
from scheduler.planner import Planner
from storage.stats import refresh_client_stats
from storage.tables import Client, Outbox, Visit, VisitStatus
from testing.chat import ChatClient, Clock, utc
from tests.helpers import (
    OWNER,
    RecordingDelivery,
    add_client,
    add_visit,
    register,
    send_due,
    staff_chat,
    utc_visit,
    visits,
)

CLIENT = "1001"


async def _refresh(core: Core) -> None:
    async with core.db.transaction() as session:
        await refresh_client_stats(
            session=session,
            tz=core.config.tz,
            return_days={s.id: s.return_interval_days for s in core.deps.catalog.services.values()},
        )


async def _came_today(shop: Core, clock: Clock, *, earlier: int = 0) -> tuple[ChatClient, Visit]:
    """Ivan (Telegram 1001, English) has a haircut with Artem today, Monday 23 November
    at 10:00 (`earlier` haircuts before it, four weeks apart); at 11:05 Artem marks it
    came from the visit's card."""
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT, language="en")
    await register(chat)
    async with shop.db.reading() as session:
        [client] = (await session.exec(select(Client))).all()
    assert client.id is not None
    for n in range(earlier, 0, -1):
        start = utc_visit(2026, 11, 23, 10) - timedelta(days=28 * n)
        await add_visit(shop, client_id=client.id, master="artem", service="haircut", start=start)
    await _refresh(shop)
    visit = await add_visit(
        shop,
        client_id=client.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 23, 10),
        status="booked",
    )
    clock.advance(hours=2, minutes=5)  # 11:05 in Moscow
    owner = staff_chat(shop, clock, OWNER)
    await owner.press(press.staff_visit(visit.id))
    await owner.click("Came, ₽1,800")
    assert owner.last.text == "Marked: came, ₽1,800."
    return chat, visit


async def test_a_first_time_client_is_offered_the_next_visit_at_once(
    shop: Core, clock: Clock
) -> None:
    chat, visit = await _came_today(shop, clock)
    inbox = RecordingDelivery()
    await send_due(shop, clock, inbox)  # enqueued by the mark: due at once
    [offer] = inbox.to(CLIENT)
    assert offer.kind == "next_visit_offer"
    # A haircut's rhythm is 28 days: around Monday 21 December, near his 10:00.
    assert offer.text == (
        "Ivan, thank you for your first visit! Your next Men's haircut with Artem will be "
        "due around December 21. Shall we keep a time for you now?\n"
        "One tap and it is booked:"
    )
    assert [b.label for b in offer.flat_buttons] == [
        "Book Sun, Dec 20, 11:00",
        "Book Mon, Dec 21, 10:00",
        "Book Tue, Dec 22, 10:00",
        "Other time",
        "No, thanks",
    ]
    await chat.click("Book Mon, Dec 21, 10:00", offer)
    assert chat.last.text.startswith("Done! You are booked.")
    assert "Men's haircut · Artem\nOn Monday, December 21, 10:00" in chat.last.text
    booked = [v for v in await visits(shop) if v.status == VisitStatus.booked]
    assert [(v.starts_at, v.master_id, v.price) for v in booked] == [
        (utc_visit(2026, 12, 21, 10), visit.master_id, visit.price)
    ]  # four weeks ahead: past the 14-day horizon of ordinary booking, by the offer's right
    await chat.click("Book Mon, Dec 21, 10:00", offer)
    assert chat.last.text.startswith("You are already booked for this time.")


async def test_a_regular_is_thanked_and_offered_the_same(shop: Core, clock: Clock) -> None:
    chat, _ = await _came_today(shop, clock, earlier=3)
    inbox = RecordingDelivery()
    await send_due(shop, clock, inbox)
    [offer] = inbox.to(CLIENT)
    assert offer.text.startswith(
        "Ivan, thank you for coming! Your next Men's haircut with Artem will be due around "
        "December 21. Shall we book it now?"
    )
    await chat.click("No, thanks", offer)
    assert chat.last.text == "All right. We will remind you when it is time for your next visit."
    assert [v.status for v in await visits(shop)].count(VisitStatus.booked) == 0


async def test_the_offer_is_not_sent_to_a_client_who_has_booked_already(
    shop: Core, clock: Clock
) -> None:
    _, visit = await _came_today(shop, clock)
    await add_visit(
        shop,
        client_id=visit.client_id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 12, 1, 12),
        status="booked",
    )
    await send_due(shop, clock, RecordingDelivery())
    async with shop.db.reading() as session:
        row = (await session.exec(select(Outbox).where(Outbox.kind == "next_visit_offer"))).one()
    assert (row.status, row.last_error) == (
        "skipped",
        "the client has booked the next visit already",
    )


async def test_a_forged_or_far_next_visit_button_books_nothing(shop: Core, clock: Clock) -> None:
    _, visit = await _came_today(shop, clock)
    other = ChatClient(shop.conversations, clock, external_id="1002", language="en")
    await register(other, phone="+7 912 000-00-02")
    [refused] = await other.press(press.book_next_visit(visit.id, utc_visit(2026, 12, 21, 10)))
    assert refused.text.startswith("That button is out of date.")
    mine = ChatClient(shop.conversations, clock, external_id=CLIENT, language="en")
    [refused] = await mine.press(press.book_next_visit(visit.id, utc_visit(2027, 6, 21, 10)))
    assert refused.text.startswith("That button is out of date.")
    assert [v.status for v in await visits(shop)] == [VisitStatus.completed]


async def test_a_return_nudge_never_follows_the_offer_in_the_same_week(
    core: Core, clock: Clock
) -> None:
    """Two clients due for a nudge (a royal shave 12 days ago, rhythm 14 days); one got
    the next-visit offer three days ago. The offer counts for the weekly cap."""
    now = utc(2026, 11, 23, 7, 0)  # Monday 10:00 in Moscow: offers are planned
    ids = []
    for n in (1, 2):
        client = await add_client(
            core,
            name=f"Client {n}",
            phone=f"+7916000000{n}",
            telegram_id=9000 + n,
            consent_at=now - timedelta(days=100),
            marketing_opt_in_at=now - timedelta(days=100),
        )
        assert client.id is not None
        ids.append(client.id)
        await add_visit(
            core,
            client_id=client.id,
            master="artem",
            service="shave",
            start=utc_visit(2026, 11, 11, 12),
        )
    await _refresh(core)
    async with core.db.transaction() as session:
        session.add(
            Outbox(
                kind="next_visit_offer",
                client_id=ids[0],
                due_at=now - timedelta(days=3),
                sent_at=now - timedelta(days=3),
                status="sent",
                dedupe_key="next_visit_offer:visit:test",
                created_at=now - timedelta(days=3),
            )
        )
    async with core.db.transaction() as session:
        await Planner(config=core.config, catalog=core.deps.catalog).plan(session, now)
    async with core.db.reading() as session:
        nudged = (
            await session.exec(select(Outbox.client_id).where(col(Outbox.kind) == "return_nudge"))
        ).all()
    assert nudged == [ids[1]]
