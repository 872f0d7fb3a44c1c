"""Staff book for a caller (/book), record a walk-in (/walkin) and take time off (/off),
driven like a person in the staff chat; the client's side is checked in what they are
sent and what the database holds. Monday 23 November 2026, 09:00 in Moscow."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlmodel import select

from bot.adapters.console import ConsoleChat
from bot.composition import Core
from domain import vocabulary as press
from domain.agenda import read_days
from domain.replies import Reply
from domain.vocabulary import NewVisit
from handlers.conversation import CONSOLE_STAFF
from handlers.events import Inbound, Text
from handlers.staff_booking import book_for_client
from storage.availability import openings
from storage.tables import Client, Outbox, TimeOff, Visit, VisitStatus
from testing.chat import ChatClient, Clock
from tests.helpers import (
    MASTER,
    OWNER,
    RecordingDelivery,
    add_client,
    add_visit,
    clients,
    pick_time,
    staff_chat,
    utc_visit,
    visits,
)

PETR, ANNA = "+79990000001", "+79990000002"


async def _petr(core: Core, **fields: object) -> Client:
    """A regular of Ilya's who reads English and has Telegram (chat 5005)."""
    petr = await add_client(
        core,
        name="Пётр",
        phone=PETR,
        locale="en",
        telegram_id=5005,
        consent_at=utc_visit(2026, 1, 10, 12),
        **fields,
    )
    assert petr.id is not None
    await add_visit(
        core, client_id=petr.id, master="ilya", service="fade", start=utc_visit(2026, 11, 2, 13)
    )
    return petr


async def _anna(core: Core) -> Client:
    """Artem's client; Ilya has never served her."""
    anna = await add_client(core, name="Анна", phone=ANNA)
    assert anna.id is not None
    await add_visit(
        core, client_id=anna.id, master="artem", service="haircut", start=utc_visit(2026, 11, 5, 11)
    )
    return anna


async def _outbox(core: Core, kind: str) -> list[Outbox]:
    async with core.db.reading() as session:
        query = select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id)  # type: ignore[arg-type]
        return list((await session.exec(query)).all())


async def _sent(core: Core, clock: Clock) -> list[str]:
    """What the engine's sender delivers now (to Telegram), text by text."""
    telegram = RecordingDelivery()
    engine = core.engine(channels={"telegram": telegram}, clock=lambda: clock.now, paces=None)
    await engine.send()
    return [reply.text for _, reply in telegram.delivered]


def _ids(core: Core) -> dict[str, int]:
    catalog = core.deps.catalog
    return {
        **{m.key: m.id for m in catalog.masters.values()},
        **{s.key: s.id for s in catalog.services.values()},
    }


# --- /book -------------------------------------------------------------------------------


async def test_the_owner_books_a_regular_caller_who_gets_the_confirmation(
    shop: Core, clock: Clock
) -> None:
    petr = await _petr(shop)
    owner = staff_chat(shop, clock, OWNER)
    [ask] = await owner.send("/book")
    assert ask.text == (
        "Who is booking? Type the caller's phone number, or a name to look them up."
    )
    [services] = await owner.send("8 999 000-00-01")  # as the caller says it
    assert services.text == f"Booking for Пётр, {PETR}. Choose a service:"
    assert "Kids' haircut · 45 min · ₽1,200" in owner.labels  # the owner books any master
    await owner.click("Fade")
    assert owner.labels[:3] == ["Any available master", "Artem", "Ilya"]
    await owner.click("Ilya")
    assert owner.labels[0] == "Tue, Nov 24"  # Monday is Ilya's day off
    await owner.click("Tue, Nov 24")
    await pick_time(owner, "15:00")
    assert owner.last.text.splitlines() == [
        f"Booking for Пётр, {PETR}:",
        "",
        "Service: Fade",
        "Master: Ilya",
        "When: on Tuesday, November 24, 15:00",
        "Duration: 1 h 15 min",
        "Price: ₽2,200",
    ]
    [done] = await owner.click("Confirm")
    assert done.text.splitlines() == [
        f"Booked: Пётр, {PETR}, Fade with Ilya, on Tuesday, November 24, 15:00.",
        "The client gets the confirmation and the reminders in the messenger.",
    ]
    booked = [v for v in await visits(shop) if v.status == VisitStatus.booked]
    assert [(v.client_id, v.starts_at, v.source) for v in booked] == [
        (petr.id, utc_visit(2026, 11, 24, 15), "staff")
    ]
    [confirmation] = await _sent(shop, clock)
    assert confirmation.splitlines() == [
        "We have booked you a visit.",
        "",
        "Fade · Ilya",
        "On Tuesday, November 24, 15:00",
        "Duration: 1 h 15 min",
        "Price: ₽2,200",
        "Address: 12 Pokrovka Street, Moscow",
        "",
        "We will remind you the day before and 2 hours before.",
    ]


async def test_a_new_caller_is_added_verified_and_finds_the_visit_in_telegram(
    shop: Core, clock: Clock
) -> None:
    master = staff_chat(shop, clock, MASTER)
    await master.send("/book")
    [ask] = await master.send("+7 912 555-12-34")
    assert ask.text == "+79125551234 is a new number. What is the client's name?"
    [hint] = await master.send("1234")
    assert hint.text.startswith("A name needs at least one letter.")
    [services] = await master.send("  Ольга  Петрова ")
    assert services.text == "Booking for Ольга Петрова, +79125551234. Choose a service:"
    assert not any("Kids" in label for label in master.labels)  # not a service of Ilya's
    await master.click("Men's haircut")  # Ilya books with himself: no master to choose
    assert master.last.text.startswith("Men's haircut, Ilya. Choose a day:")
    await master.click("Wed, Nov 25")
    await pick_time(master, "18:00")
    [done] = await master.click("Confirm")
    assert done.text.endswith(
        "The bot cannot write to this client: please tell them the time yourself."
    )
    [olga] = [c for c in await clients(shop) if c.phone == "+79125551234"]
    assert (olga.name, olga.source, olga.phone_verified) == ("Ольга Петрова", "staff", True)
    assert olga.consent_at == clock.now and olga.marketing_opt_in_at is None
    assert olga.locale == "en"  # the shop's language until she chooses her own

    # Later she opens the bot and shares her contact: the same client, her visit is there.
    her = ChatClient(shop.conversations, clock, external_id="1001", language="en")
    await her.send("/start")
    await her.click("Ivan")
    await her.share_contact("+79125551234")
    await her.click("I agree")
    await her.click("No, thanks")
    await her.click("Skip")
    await her.click("My visits")
    assert her.last.text.startswith("You have 1 upcoming visit:\nOn Wednesday, November 25, 18:00")
    assert [c.id for c in await clients(shop) if c.phone == "+79125551234"] == [olga.id]


async def test_a_master_books_only_with_themselves(shop: Core, clock: Clock) -> None:
    await _petr(shop)
    ids = _ids(shop)
    master = staff_chat(shop, clock, MASTER)
    [services] = await master.send(f"/book {PETR}")  # the number right after the command
    assert services.text.startswith("Booking for Пётр")
    for forged in (
        press.staff_book_days(NewVisit(ids["fade"], ids["artem"])),
        press.staff_book_days(NewVisit(ids["fade"], 0)),  # "any" could land on Artem
    ):
        [reply] = await master.press(forged)
        assert reply.text == "This screen is out of date. Please start again: /book."
    await master.click("Fade", services)
    petr_id, anna_id = ((await clients(shop))[0].id or 0), 999
    monday = utc_visit(2026, 11, 30, 12)  # Ilya does not work on Mondays
    ilya_fade = NewVisit(ids["fade"], ids["ilya"])
    [stale] = await master.press(press.staff_book_confirm(ilya_fade, monday, anna_id))
    assert stale.text == "This screen is out of date. Please start again: /book."
    [taken] = await master.press(press.staff_book_confirm(ilya_fade, monday, petr_id))
    assert taken.text.startswith("Sorry, on Monday, November 30, 12:00 is no longer available.")
    assert [v.status for v in await visits(shop)] == ["completed"]


async def test_a_caller_with_a_birthday_gift_gets_it_when_staff_book(
    shop: Core, clock: Clock
) -> None:
    """The discount a client would get booking in the chat, staff booking for them give
    too, worded for staff; the visit and the client's confirmation carry the price."""
    petr = await _petr(shop, birthday=date(1990, 11, 21))
    async with shop.db.transaction() as session:
        sent_at = utc_visit(2026, 11, 21, 10)
        session.add(
            Outbox(
                kind="birthday",
                client_id=petr.id,
                due_at=sent_at,
                sent_at=sent_at,
                status="sent",
                dedupe_key=f"birthday:{petr.id}:2026",
                created_at=sent_at,
            )
        )
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/book")
    await owner.send(PETR)
    await owner.click("Fade")
    await owner.click("Ilya")
    await owner.click("Tue, Nov 24")
    await pick_time(owner, "15:00")
    price = "Price: ₽1,870 instead of ₽2,200 (15% off: birthday gift)"
    assert owner.last.text.splitlines()[-1] == price
    await owner.click("Confirm")

    [visit] = [v for v in await visits(shop) if v.status == VisitStatus.booked]
    assert (visit.price, visit.discount) == (Decimal("1870"), Decimal("330"))
    assert (visit.discount_source or "").startswith("birthday")
    [confirmation] = await _sent(shop, clock)
    # The client reads the discount as after booking in the chat: theirs, and what it saved.
    assert "Price: ₽1,870 instead of ₽2,200 (15% off: your birthday gift)" in (
        confirmation.splitlines()
    )


async def test_a_name_search_shows_a_master_only_their_own_clients(
    shop: Core, clock: Clock
) -> None:
    petr, anna = await _petr(shop), await _anna(shop)
    master = staff_chat(shop, clock, MASTER)
    await master.send("/book")
    [none] = await master.send("анна")
    assert none.text.startswith(
        "Nobody called «анна» among your clients. Type the phone number instead."
    )
    for typed in ("ПЁТР", "петр"):  # any case, ё as е, the way /client searches
        [again] = await master.send(typed)
        assert again.text == "Who is it? Or type another name or the phone number."
    [found] = await master.send("пётр")
    assert found.text == "Who is it? Or type another name or the phone number."
    assert master.labels == [f"Пётр, {PETR}", "Staff menu"]
    [forged] = await master.press(press.staff_pick_client(anna.id, "book"))
    assert forged.text == "This screen is out of date. Please start again: /book."
    await master.click(f"Пётр, {PETR}", found)
    assert master.last.text.startswith("Booking for Пётр")

    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/book")
    await owner.send("Анна")
    await owner.click(f"Анна, {ANNA}")
    assert owner.last.text == f"Booking for Анна, {ANNA}. Choose a service:"
    assert petr.id is not None


async def test_a_time_taken_meanwhile_offers_the_nearest_free_ones(
    shop: Core, clock: Clock
) -> None:
    petr, anna = await _petr(shop), await _anna(shop)
    assert anna.id is not None
    master = staff_chat(shop, clock, MASTER)
    await master.send(f"/book {PETR}")
    await master.click("Fade")
    await master.click("Tue, Nov 24")
    await pick_time(master, "15:00")
    # A client takes 15:00 in the bot while Ilya is still on the phone.
    await add_visit(
        shop,
        client_id=anna.id,
        master="ilya",
        service="haircut",
        start=utc_visit(2026, 11, 24, 15),
        status="booked",
    )
    [taken] = await master.click("Confirm")
    assert taken.text == (
        "Sorry, on Tuesday, November 24, 15:00 is no longer available.\nThe nearest free times:"
    )
    assert master.labels[:2] == ["Tue, Nov 24, 13:45", "Tue, Nov 24, 16:00"]
    await master.click("Tue, Nov 24, 16:00")
    await master.click("Confirm")
    mine = [v for v in await visits(shop) if v.client_id == petr.id and v.status == "booked"]
    assert [v.starts_at for v in mine] == [utc_visit(2026, 11, 24, 16)]


async def test_staff_may_book_more_than_the_bot_allows_but_never_two_at_once(
    shop: Core, clock: Clock
) -> None:
    petr = await _petr(shop)
    assert petr.id is not None
    for day in (24, 25, 26):  # the most a client may hold in the bot
        await add_visit(
            shop,
            client_id=petr.id,
            master="artem",
            service="haircut",
            start=utc_visit(2026, 11, day, 12),
            status="booked",
        )
    master = staff_chat(shop, clock, MASTER)
    await master.send(f"/book {PETR}")
    await master.click("Beard trim")
    await master.click("Thu, Nov 26")
    await pick_time(master, "12:30")  # Пётр is with Artem then
    [clash] = await master.click("Confirm")
    assert clash.text == (
        "Пётр already has a visit at that time: on Thursday, November 26, 12:00, with Artem."
    )
    await master.click("Other day")
    await master.click("Fri, Nov 27")
    await pick_time(master, "12:00")
    await master.click("Confirm")
    [button] = [b for b in master.history[-1].flat_buttons if b.label == "Book another visit"]
    assert button.payload == press.staff_open("book")
    booked = [v for v in await visits(shop) if v.status == VisitStatus.booked]
    assert len(booked) == 4  # a fourth one: staff are not held to the bot's three


async def test_confirm_pressed_twice_books_once(shop: Core, clock: Clock) -> None:
    await _petr(shop)
    master = staff_chat(shop, clock, MASTER)
    await master.send(f"/book {PETR}")
    await master.click("Fade")
    await master.click("Tue, Nov 24")
    await pick_time(master, "15:00")
    summary = master.last
    [first] = await master.click("Confirm", summary)
    [second] = await master.click("Confirm", summary)
    assert second.text == first.text
    assert len([v for v in await visits(shop) if v.status == VisitStatus.booked]) == 1
    assert len(await _outbox(shop, "booking_confirmation")) == 1


async def test_book_for_client_is_the_entry_for_other_staff_screens(
    shop: Core, clock: Clock
) -> None:
    petr, anna = await _petr(shop), await _anna(shop)
    assert petr.id is not None and anna.id is not None

    async def book_for(chat: str, client_id: int) -> Reply:
        """What a button of another staff screen (the client card) does: call it."""
        inbound = Inbound(
            channel="telegram", external_id=chat, event=Text(""), received_at=clock.now
        )
        async with shop.db.transaction() as session:
            turn = await shop.conversations._load(session, inbound)
            [reply] = await book_for_client(turn, client_id)
            session.add(turn.conversation)
        return reply

    assert (await book_for(MASTER, anna.id)).text == "This is another master's client."
    services = await book_for(MASTER, petr.id)
    assert services.text == f"Booking for Пётр, {PETR}. Choose a service:"
    master = staff_chat(shop, clock, MASTER)  # and the conversation goes on from there
    await master.click("Fade", services)
    assert master.last.text.startswith("Fade, Ilya. Choose a day:")
    owner = staff_chat(shop, clock, OWNER)
    assert (await book_for(OWNER, anna.id)).text.startswith("Booking for Анна")
    assert owner.history == []


# --- /walkin -----------------------------------------------------------------------------


async def test_a_walk_in_is_recorded_as_a_completed_visit(shop: Core, clock: Clock) -> None:
    petr = await _petr(shop)
    clock.now = utc_visit(2026, 11, 24, 12, 52)  # Tuesday, Ilya is in from 12:00
    master = staff_chat(shop, clock, MASTER)
    [ask] = await master.send("/walkin")
    assert ask.text.startswith("Walk-in: who is the client?")
    await master.send(PETR)
    assert master.last.text == f"Walk-in: Пётр, {PETR}. Which service?"
    [paid] = await master.click("Men's haircut")
    assert paid.text == (
        f"Пётр, {PETR}: Men's haircut with Ilya, now. How much did the client pay? "
        "Tap the price or type the amount."
    )
    [done] = await master.click("Paid ₽1,800")
    assert done.text == (
        f"Recorded: Пётр, {PETR}, Men's haircut with Ilya, 12:45–13:45, paid ₽1,800."
    )
    walk_in = (await visits(shop))[-1]
    assert (walk_in.status, walk_in.source, walk_in.paid_amount) == (
        "completed",
        "walk-in",
        Decimal("1800.00"),
    )
    assert walk_in.starts_at == utc_visit(2026, 11, 24, 12, 45)  # the slot it began in
    assert walk_in.completed_at == clock.now
    [after] = [c for c in await clients(shop) if c.id == petr.id]
    assert (after.completed_visits, after.last_visit_at) == (2, walk_in.starts_at)


async def test_an_anonymous_walk_in_with_a_typed_amount(shop: Core, clock: Clock) -> None:
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/walkin")
    await owner.click("Anonymous walk-in")
    await owner.click("Beard trim")
    assert owner.last.text == "Beard trim: who is serving the client?"
    await owner.click("Marina")
    [hint] = await owner.send("thirteen hundred")
    assert hint.text.startswith("Please type a number, e.g. 1500.")
    [done] = await owner.send("1 250")
    assert done.text == (
        "Recorded: an anonymous walk-in, Beard trim with Marina, 09:00–09:45, paid ₽1,250."
    )
    [guest] = await clients(shop)
    assert (guest.name, guest.phone, guest.source, guest.consent_at) == (
        "Walk-in client",
        None,
        "walk-in",
        None,
    )
    [visit] = await visits(shop)
    assert visit.paid_amount == Decimal("1250.00") and visit.price == Decimal("1300.00")


async def test_a_walk_in_never_overlaps_the_masters_next_visit(shop: Core, clock: Clock) -> None:
    await _petr(shop)
    anna = await _anna(shop)
    assert anna.id is not None
    await add_visit(
        shop,
        client_id=anna.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 24, 13),
        status="booked",
    )
    clock.now = utc_visit(2026, 11, 24, 12, 52)
    master = staff_chat(shop, clock, MASTER)
    await master.send(f"/walkin {PETR}")
    [busy] = await master.click("Men's haircut")
    assert busy.text == (
        "Ilya has a visit from 13:00 to 14:15 (Анна), so a Men's haircut from 12:45 would "
        "overlap it. Mark that visit first, or choose another master."
    )
    await master.click("« Other service")
    [paid] = await master.click("Beard trim")  # 12:45 + 45 minutes still runs into 13:00
    assert paid.text.startswith("Ilya has a visit from 13:00 to 14:15")
    assert [v.source for v in await visits(shop)] == ["import", "import", "import"]


async def test_a_walk_in_of_a_client_booked_now_points_to_their_visit(
    shop: Core, clock: Clock
) -> None:
    petr = await _petr(shop)
    assert petr.id is not None
    await add_visit(
        shop,
        client_id=petr.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 23, 9),
        status="booked",
    )
    clock.now = utc_visit(2026, 11, 23, 9, 5)
    owner = staff_chat(shop, clock, OWNER)
    await owner.send(f"/walkin {PETR}")
    await owner.click("Beard trim")
    [refused] = await owner.click("Marina")
    assert refused.text == (
        "Пётр has a visit booked on Monday, November 23, 09:00 with Artem: please mark that "
        "visit as came in /today instead."
    )


# --- /off --------------------------------------------------------------------------------


async def _booked_in_december(core: Core) -> tuple[Visit, Visit]:
    petr, anna = await _petr(core), await _anna(core)
    assert petr.id is not None and anna.id is not None
    first = await add_visit(
        core,
        client_id=petr.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 12, 2, 15),
        status="booked",
    )
    second = await add_visit(
        core,
        client_id=anna.id,
        master="ilya",
        service="haircut",
        start=utc_visit(2026, 12, 3, 12),
        status="confirmed",
    )
    return first, second


async def test_time_off_lists_the_bookings_and_clients_see_no_time_then(
    shop: Core, clock: Clock
) -> None:
    await _booked_in_december(shop)
    master = staff_chat(shop, clock, MASTER)
    [off] = await master.send("/off 2026-12-01 to 2026-12-03")
    assert off.text.splitlines() == [
        "Ilya is off from December 1 to December 3.",
        "Clients will not be offered any time on these days.",
        "",
        "2 bookings on these days: move them, or cancel them and the clients are told.",
        f"1. Wed, Dec 2, 15:00 — Пётр, {PETR}, Fade",
        f"2. Thu, Dec 3, 12:00 — Анна, {ANNA}, Men's haircut",
    ]
    assert master.labels == [
        "1. Move",
        "1. Cancel, tell the client",
        "2. Move",
        "2. Cancel, tell the client",
        "Staff menu",
    ]
    async with shop.db.reading() as session:
        [row] = (await session.exec(select(TimeOff))).all()
    assert (row.starts_at, row.ends_at) == (
        utc_visit(2026, 12, 1, 0),
        utc_visit(2026, 12, 4, 0),
    )

    client = ChatClient(shop.conversations, clock, external_id="5005", language="en")
    await client.send("/start")
    await client.click("Book a visit")
    await client.click("Men's haircut")
    await client.click("Ilya")
    days = client.labels
    assert "Mon, Nov 30" not in days and "Fri, Dec 4" in days and "Sat, Dec 5" in days
    assert not {"Tue, Dec 1", "Wed, Dec 2", "Thu, Dec 3"} & set(days)
    await client.click("« Back")
    await client.click("Artem")
    assert {"Tue, Dec 1", "Wed, Dec 2", "Thu, Dec 3"} <= set(client.labels)


async def test_availability_has_no_slot_in_the_time_off(shop: Core, clock: Clock) -> None:
    master = staff_chat(shop, clock, MASTER)
    await master.send("/off 24.11")
    catalog = shop.deps.catalog
    ilya = catalog.master_by_key("ilya")
    service = catalog.service_by_key("haircut")
    assert ilya is not None and service is not None
    async with shop.db.reading() as session:
        free = await openings(
            session=session, config=shop.config, service=service, masters=[ilya], now=clock.now
        )
    days = free.days()
    assert days[0].isoformat() == "2026-11-25" and "2026-11-24" not in {d.isoformat() for d in days}
    assert free.times(utc_visit(2026, 11, 24, 12).date()) == {}


async def test_a_booking_in_the_time_off_is_moved_and_the_client_told(
    shop: Core, clock: Clock
) -> None:
    first, _ = await _booked_in_december(shop)
    master = staff_chat(shop, clock, MASTER)
    await master.send("/off 01.12 - 03.12")
    [days] = await master.click("1. Move")
    assert days.text.startswith(
        f"Moving the visit of Пётр, {PETR}, on Wednesday, December 2, 15:00.\n\nFade, Ilya."
    )
    assert not {"Tue, Dec 1", "Wed, Dec 2", "Thu, Dec 3"} & set(master.labels)
    await master.click("Fri, Dec 4")
    await pick_time(master, "15:00")
    assert master.last.text.splitlines()[:4] == [
        f"Moving the visit of Пётр, {PETR}:",
        "",
        "Service: Fade",
        "Master: Ilya",
    ]
    assert "From: Wed, Dec 2, 15:00" in master.last.text
    assert "To: Fri, Dec 4, 15:00" in master.last.text
    [moved] = await master.click("Confirm")
    assert moved.text.startswith(f"Moved: Пётр, {PETR}, Fade with Ilya, on Friday, December 4")
    await master.click("« Back to the time off")
    assert master.last.text.splitlines()[3] == (
        "1 booking on these days: move it, or cancel it and the client is told."
    )
    [stored] = [v for v in await visits(shop) if v.id == first.id]
    assert (stored.starts_at, stored.status) == (utc_visit(2026, 12, 4, 15), "booked")
    [told] = await _sent(shop, clock)
    assert told.startswith("Your visit is moved.\n\nFade · Ilya\nOn Friday, December 4, 15:00")


async def test_a_booking_in_the_time_off_is_cancelled_and_the_client_told(
    shop: Core, clock: Clock
) -> None:
    _, second = await _booked_in_december(shop)
    master = staff_chat(shop, clock, MASTER)
    await master.send("/off 2026-12-01 to 2026-12-03")
    [question] = await master.click("2. Cancel, tell the client")
    assert question.text == (
        f"Cancel the visit of Анна, {ANNA}, Men's haircut, on Thursday, December 3, 12:00? "
        "The client will get a message about it."
    )
    await master.click("Yes, cancel and tell the client")
    assert master.history[-2].text == "Cancelled; the client will be told."
    assert master.last.text.splitlines()[3].startswith("1 booking on these days")
    [stored] = [v for v in await visits(shop) if v.id == second.id]
    assert (stored.status, stored.cancel_reason) == ("cancelled", "time off")
    [notice] = await _outbox(shop, "visit_cancelled")
    assert notice.payload == {"visit_id": second.id}


async def test_time_off_that_cannot_be_is_refused_specifically(shop: Core, clock: Clock) -> None:
    master = staff_chat(shop, clock, MASTER)
    answers = {
        "/off 2026-11-20": "November 20 has passed: time off can start today at the earliest.",
        "/off 2026-12-03 to 2026-12-01": (
            "The end, December 1, is before the start, December 3. Please check the days."
        ),
        "/off 2026-12-01 to 2027-02-15": (
            "That is 77 days; time off can be at most 60 days at once. Please set it in parts."
        ),
        "/off 2028-01-10": "That is more than a year ahead. Please check the year.",
        "/off artem 2026-12-01": "Only the owner or an administrator can do this.",
    }
    for command, answer in answers.items():
        [reply] = await master.send(command)
        assert reply.text == answer, command
    [usage] = await master.send("/off next week")
    assert usage.text.startswith("There is no master «next».\nWrite the days off like /off")
    [usage] = await master.send("/off")
    assert usage.text.startswith("Write the days off like /off 2026-12-01")
    async with shop.db.reading() as session:
        assert (await session.exec(select(TimeOff))).all() == []


async def test_the_owner_sets_a_masters_time_off_once(shop: Core, clock: Clock) -> None:
    owner = staff_chat(shop, clock, OWNER)
    [off] = await owner.send("/off Ilya 24.11")
    assert off.text.startswith("Ilya is off on Tuesday, November 24.")
    [again] = await owner.send("/off ilya 2026-11-24")
    assert again.text.startswith("This time off was recorded already.\n\nIlya is off on Tuesday")
    async with shop.db.reading() as session:
        rows = (await session.exec(select(TimeOff))).all()
    ilya = shop.deps.catalog.master_by_key("ilya")
    assert [r.staff_id for r in rows] == [ilya.id if ilya else None]


async def test_time_off_in_the_terminal(shop: Core, clock: Clock) -> None:
    out: list[str] = []
    console = ConsoleChat(
        shop.conversations,
        external_id=CONSOLE_STAFF + "ilya",
        write=out.append,
        clock=lambda: clock.now,
    )
    await console.say("/off 2026-12-01")
    assert out[-1].startswith("Ilya is off on Tuesday, December 1.")


# --- who may --------------------------------------------------------------------------------


async def test_clients_cannot_use_staff_booking(shop: Core, clock: Clock) -> None:
    await _petr(shop)
    ids = _ids(shop)
    client = ChatClient(shop.conversations, clock, external_id="5005", language="en")
    [booking] = await client.send("/book")
    assert booking.text == "Choose a service:"  # their own booking, as before
    for command in ("/walkin", "/off 2026-12-01"):
        [reply] = await client.send(command)
        assert reply.text == "Пётр, what would you like to do?"
    start = utc_visit(2026, 11, 24, 15)
    for payload in (
        press.staff_book_confirm(NewVisit(ids["fade"], ids["ilya"]), start, 1),
        press.staff_pick_client(1, "book"),
        press.tap(press.Act.STAFF_WALKIN_PAID),
        press.staff_off_list(ids["ilya"], start.date(), start.date()),
    ):
        [reply] = await client.press(payload)
        assert reply.text.startswith("That button is out of date.")
    assert [v.status for v in await visits(shop)] == ["completed"]
    async with shop.db.reading() as session:
        assert (await session.exec(select(TimeOff))).all() == []


async def test_a_garbled_staff_button_is_out_of_date_not_an_error(shop: Core, clock: Clock) -> None:
    master = staff_chat(shop, clock, MASTER)
    for payload in ("1:bo:n1.2:abc:1", "1:se:x", "1:ol:2:2026:x", "1:bc:1:shop"):
        [reply] = await master.press(payload)
        assert reply.text.startswith("That button is out of date.\n\nИлья, the staff menu.")


async def test_a_confirmation_for_a_visit_cancelled_before_it_went_is_not_sent(
    shop: Core, clock: Clock
) -> None:
    await _petr(shop)
    owner = staff_chat(shop, clock, OWNER)
    await owner.send(f"/book {PETR}")
    await owner.click("Beard trim")
    await owner.click("Artem")
    await owner.click("Tue, Nov 24")
    await pick_time(owner, "11:00")
    await owner.click("Confirm")
    [visit] = [v for v in await visits(shop) if v.status == VisitStatus.booked]
    await owner.press(press.staff_cancel_sure(visit.id))  # a slip, undone at once
    assert await _sent(shop, clock) == [
        "Sorry: we had to cancel your visit, Beard trim with Artem, on Tuesday, November 24, "
        "11:00. Please choose another time, or call us: +7 495 123-45-67."
    ]
    [confirmation] = await _outbox(shop, "booking_confirmation")
    assert (confirmation.status, confirmation.last_error) == ("skipped", "the visit is cancelled")


def test_the_days_of_off_are_read_in_the_usual_ways() -> None:
    today = utc_visit(2026, 11, 23, 12).date()
    first, third = today.replace(month=12, day=1), today.replace(month=12, day=3)
    for text in ("2026-12-01 to 2026-12-03", "1.12 - 3.12", "01.12 по 03.12", "1.12–3.12"):
        assert read_days(text, today=today) == (first, third), text
    assert read_days("2026-12-01", today=today) == (first, first)
    for text in ("", "1.12 to", "2026-12-01 2026-12-03", "soon", "1.12 to 2.12 to 3.12"):
        assert read_days(text, today=today) is None, text
