from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from bot.composition import Core
from storage.tables import VisitStatus
from testing.chat import ChatClient, Clock
from tests.helpers import (
    add_client,
    add_visit,
    book,
    clients,
    pick_time,
    register,
    to_summary,
    utc_visit,
    visits,
)


async def test_client_books_a_visit_and_gets_the_confirmation(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Book a visit")
    assert chat.labels[0] == "Men's haircut · 1 h · ₽1,800"
    await chat.click("Men's haircut")
    assert chat.labels[:4] == ["Any available master", "Artem", "Ilya", "Marina"]
    await chat.click("Ilya")
    assert chat.labels[0] == "Tue, Nov 24"  # Monday is Ilya's day off
    await chat.click("Tue, Nov 24")
    assert chat.labels == ["Afternoon", "Evening", "« Other day"]  # Ilya starts at 12
    await chat.click("Afternoon")
    assert chat.labels[0] == "12:00"
    await pick_time(chat, "15:30")

    summary = chat.last.text
    assert "Service: Men's haircut" in summary
    assert "Master: Ilya" in summary
    assert "When: on Tuesday, November 24, 15:30" in summary
    assert "Duration: 1 h" in summary
    assert "Price: ₽1,800" in summary
    assert "Address: 12 Pokrovka Street, Moscow" in summary

    await chat.click("Confirm")
    assert chat.last.kind == "booking_confirmation"
    assert chat.last.text.startswith("Done! You are booked.")
    assert "On Tuesday, November 24, 15:30" in chat.last.text

    [visit] = await visits(core)
    assert visit.starts_at == utc_visit(2026, 11, 24, 15, 30)
    assert visit.ends_at - visit.starts_at == timedelta(hours=1)
    assert visit.price == Decimal("1800.00")
    assert visit.status == VisitStatus.booked
    assert visit.source == "telegram"


async def test_a_service_with_one_master_skips_the_master_step(chat: ChatClient) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Book a visit")
    await chat.click("Kids' haircut")  # only Marina does it; she does not work weekends
    assert "Kids' haircut, Marina. Choose a day:" in chat.last.text
    assert "Sat, Nov 28" not in chat.labels and "Sun, Nov 29" not in chat.labels
    assert "Fri, Nov 27" in chat.labels


async def test_a_fully_booked_day_is_not_offered(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    other = await add_client(core, name="Пётр", phone="+79990000001", consent_at=clock.now)
    assert other.id is not None
    # Марина on Friday 27 November: 10:00-19:00, filled with 45-minute kids' haircuts.
    start = utc_visit(2026, 11, 27, 10)
    while start < utc_visit(2026, 11, 27, 19):
        await add_visit(
            core, client_id=other.id, master="marina", service="kids", start=start, status="booked"
        )
        start += timedelta(minutes=45)
    chat.language = "en"
    await register(chat)
    await chat.click("Book a visit")
    await chat.click("Kids' haircut")
    assert "Thu, Nov 26" in chat.labels
    assert "Fri, Nov 27" not in chat.labels


async def test_free_text_where_buttons_are_expected_shows_the_step_again(chat: ChatClient) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Book a visit")
    await chat.click("Fade")
    await chat.click("Ilya")
    days = chat.labels
    await chat.send("tomorrow please")
    assert chat.last.text.startswith("Please choose one of the buttons below.")
    assert chat.labels == days
    await chat.click("Wed, Nov 25")  # the conversation goes on from the same step
    assert chat.last.text.startswith("On Wednesday, November 25: what time of day suits you?")


async def test_a_slot_taken_meanwhile_is_refused_with_the_nearest_free_ones(
    core: Core, clock: Clock
) -> None:
    first = ChatClient(core.conversations, clock, external_id="1", language="en")
    second = ChatClient(core.conversations, clock, external_id="2", language="en")
    await register(first, phone="+79120000001")
    await register(second, phone="+79120000002")
    await book(first, service="Fade", master="Ilya", day="Wed, Nov 25", time="14:00")
    assert "Done! You are booked." in first.last.text

    await second.click("Book a visit")
    await second.click("Fade")
    await second.click("Ilya")
    await second.click("Wed, Nov 25")
    assert "14:00" not in second.labels  # already shown as taken
    # A stale keyboard: the 14:00 button pressed from an old message.
    await second.press(first.history[-2].flat_buttons[0].payload.replace("ok", "tm"))
    assert second.last.text.startswith(
        "Sorry, on Wednesday, November 25, 14:00 is no longer available."
    )
    assert second.labels[:3] == ["Wed, Nov 25, 12:30", "Wed, Nov 25, 12:45", "Wed, Nov 25, 15:15"]
    await second.click("Wed, Nov 25, 15:15")  # a 75-minute fade right after the taken one
    await second.click("Confirm")
    assert second.last.kind == "booking_confirmation"
    assert len(await visits(core)) == 2


async def test_two_clients_confirming_the_same_slot_at_once_only_one_gets_it(
    core: Core, clock: Clock
) -> None:
    chats = [
        ChatClient(core.conversations, clock, external_id=str(n), language="en") for n in (1, 2)
    ]
    for n, chat in enumerate(chats):
        await register(chat, phone=f"+7912000000{n}")
        await chat.click("Book a visit")
        await chat.click("Fade")
        await chat.click("Ilya")
        await chat.click("Thu, Nov 26")
        await pick_time(chat, "16:00")
    confirm = [chat.button("Confirm").payload for chat in chats]

    answers = await asyncio.gather(*(chat.press(p) for chat, p in zip(chats, confirm, strict=True)))

    kinds = sorted(str(replies[-1].kind) for replies in answers)
    assert kinds == ["None", "booking_confirmation"]
    refused = next(replies[-1] for replies in answers if replies[-1].kind is None)
    assert "is no longer available" in refused.text
    assert any(b.label.startswith("Thu, Nov 26") for b in refused.flat_buttons)
    [visit] = await visits(core)
    assert visit.starts_at == utc_visit(2026, 11, 26, 16)


async def test_pressing_confirm_twice_books_once(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await register(chat)
    await book(chat, service="Beard trim", master="Marina", day="Tue, Nov 24", time="11:00")
    confirm = chat.history[-2].flat_buttons[0].payload
    await chat.press(confirm)
    assert chat.last.text.startswith("You are already booked for this time.")
    assert len(await visits(core)) == 1


async def test_a_comment_over_the_limit_is_refused_and_the_booking_goes_on(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)
    await to_summary(
        chat, service="Men's haircut", master="Marina", day="Wed, Nov 25", time="10:00"
    )
    await chat.click("Add a comment")
    await chat.send("a" * 5000)
    assert chat.last.text.startswith("That is 5000 characters; the limit is 500.")
    await chat.send("Short on the sides, please")
    assert "Comment: Short on the sides, please" in chat.last.text
    await chat.click("Confirm")
    [visit] = await visits(core)
    assert visit.comment == "Short on the sides, please"


async def test_an_unknown_button_is_answered_politely(chat: ChatClient) -> None:
    chat.language = "en"
    await register(chat)
    forged = ("1:tm:n1.0:99999999999999", "1:vi:99999999999999999999", "1:ok:n1.1:-5")
    for payload in ("1:zz", "9:bk", "garbage", "1:tm:n9999.1:1", "1:dy:nX:2026", *forged):
        await chat.press(payload)
        assert chat.last.text.startswith(("That button is out of date", "That choice is no longer"))
    await chat.click("Book a visit") if "Book a visit" in chat.labels else None
    assert chat.labels


async def test_a_summary_whose_time_has_passed_is_not_booked(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    chat.language = "en"
    await register(chat)
    await to_summary(chat, service="Men's haircut", master="Artem", day="Mon, Nov 23", time="11:00")
    clock.advance(hours=2)  # now 11:00 Moscow: too late for an 11:00 visit
    await chat.click("Confirm")
    assert "is no longer available" in chat.last.text
    assert await visits(core) == []


async def test_repeat_last_visit_offers_the_same_service_and_master_near_the_usual_time(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    client = await add_client(
        core, name="Ivan", phone="+79123456789", telegram_id=1001, consent_at=clock.now, locale="en"
    )
    assert client.id is not None
    for day in (9, 16, 30):  # Fridays in October, 15:00
        await add_visit(
            core,
            client_id=client.id,
            master="ilya",
            service="fade",
            start=utc_visit(2026, 10, day, 15),
        )
    chat.language = "en"
    await chat.send("/start")
    await chat.click("Repeat last visit")
    assert chat.last.text.startswith("Same as last time: Fade with Ilya.")
    # Three different days: the usual Friday at 15:00 this week and next, and the Thursday
    # before (the nearest other weekday), not three times a quarter of an hour apart.
    assert chat.labels[:3] == ["Thu, Nov 26, 15:00", "Fri, Nov 27, 15:00", "Fri, Dec 4, 15:00"]
    await chat.click("Fri, Nov 27, 15:00")
    await chat.click("Confirm")
    new = [v for v in await visits(core) if v.status == VisitStatus.booked]
    assert [(v.starts_at, v.master_id) for v in new] == [
        (utc_visit(2026, 11, 27, 15), core.deps.catalog.master_by_key("ilya").id)  # type: ignore[union-attr]
    ]


async def test_a_database_error_says_try_again_and_loses_nothing(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)
    await to_summary(chat, service="Fade", master="Ilya", day="Wed, Nov 25", time="12:00")
    async with core.db.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE visit RENAME TO visit_away"))
    await chat.click("Confirm")
    assert chat.last.text.startswith("Sorry, something went wrong on our side.")
    async with core.db.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE visit_away RENAME TO visit"))
    await chat.click("Confirm", chat.history[-2])  # the summary is still where it was
    assert chat.last.kind == "booking_confirmation"


async def test_the_confirmation_promises_only_the_reminders_still_ahead(
    chat: ChatClient, clock: Clock
) -> None:
    chat.language = "en"
    await register(chat)
    # Monday 09:00 for Tuesday 15:30: both the day-before and the 2-hour reminder will come.
    await book(chat, service="Men's haircut", master="Ilya", day="Tue, Nov 24", time="15:30")
    assert "We will remind you the day before and 2 hours before." in chat.last.text
    # Tuesday 12:00 for 17:00 the same day: the day before has passed.
    clock.now = utc_visit(2026, 11, 24, 12)
    await book(chat, service="Men's haircut", master="Ilya", day="Tue, Nov 24", time="17:00")
    assert "We will remind you 2 hours before." in chat.last.text
    assert "the day before" not in chat.last.text
    # Tuesday 12:00 for 13:00: no reminder is left to promise.
    await book(chat, service="Men's haircut", master="Ilya", day="Tue, Nov 24", time="13:00")
    assert chat.last.kind == "booking_confirmation"
    assert "remind" not in chat.last.text


async def test_the_comment_survives_a_change_of_time_and_is_repeated_in_the_confirmation(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)
    await to_summary(
        chat, service="Men's haircut", master="Marina", day="Wed, Nov 25", time="10:00"
    )
    await chat.click("Add a comment")
    await chat.send("Short on the sides, please")
    assert "Add a comment" not in chat.labels
    await chat.click("Change the comment")  # the comment can still be changed
    await chat.send("Short on the sides")
    await chat.click("Change time")
    await chat.click("« Other day")
    await chat.click("Thu, Nov 26")
    await pick_time(chat, "11:00")
    assert "Comment: Short on the sides" in chat.last.text
    assert "Change the comment" in chat.labels
    await chat.click("Confirm")
    assert "Comment: Short on the sides" in chat.last.text
    [visit] = await visits(core)
    assert visit.comment == "Short on the sides"
    assert visit.starts_at == utc_visit(2026, 11, 26, 11)


async def test_back_from_the_days_of_a_one_master_service_goes_to_the_services(
    chat: ChatClient,
) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Book a visit")
    await chat.click("Kids' haircut")  # only Марина does it: no master step
    await chat.click("« Back")
    assert chat.last.text.startswith("Choose a service:")


async def test_repeat_last_visit_with_a_visit_already_booked_offers_to_move_it(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)
    [client] = await clients(core)
    assert client.id is not None
    done = await add_visit(
        core, client_id=client.id, master="ilya", service="fade", start=utc_visit(2026, 10, 30, 15)
    )
    assert done.id is not None
    await book(chat, service="Fade", master="Ilya", day="Wed, Nov 25", time="14:00")
    await chat.send("/start")
    await chat.click("Repeat last visit")
    assert chat.last.text.startswith("You already have a visit booked:")
    assert "On Wednesday, November 25, 14:00" in chat.last.text
    await chat.click("Move this visit")
    assert "Fade, Ilya. Choose a day:" in chat.last.text
    await chat.click("Thu, Nov 26")
    await pick_time(chat, "16:00")
    await chat.click("Confirm")
    assert chat.last.text.startswith("Done! Your visit is moved.")
    assert [(v.id, v.starts_at) for v in await visits(core)] == [
        (done.id, done.starts_at),
        (done.id + 1, utc_visit(2026, 11, 26, 16)),  # moved, not a second booking
    ]


async def test_a_day_with_many_free_times_asks_the_part_of_the_day_first(chat: ChatClient) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Book a visit")
    await chat.click("Men's haircut")
    await chat.click("Ilya")
    await chat.click("Tue, Nov 24")  # 12:00-21:00: no morning
    assert chat.last.text == "On Tuesday, November 24: what time of day suits you?"
    assert chat.labels == ["Afternoon", "Evening", "« Other day"]
    await chat.click("Afternoon")
    first = [label for label in chat.labels if ":" in label]
    assert first == [f"{h}:{m:02}" for h in (12, 13, 14) for m in (0, 15, 30, 45)]
    await chat.click("Later times »")
    assert chat.labels[0] == "15:00"
    assert "« Earlier times" in chat.labels
    await chat.click("« Other part of the day")
    assert chat.labels == ["Afternoon", "Evening", "« Other day"]
    await chat.press("1:pd:n1.2:20261124:night:0")  # a forged part of the day
    assert chat.last.text.startswith("That button is out of date")


async def test_any_available_master_offers_every_day_some_master_has_free(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    other = await add_client(core, name="Пётр", phone="+79990000001", consent_at=clock.now)
    other_id = other.id
    assert other_id is not None

    async def fill(master: str, day: int, opens: int, closes: int) -> None:
        start = utc_visit(2026, 11, day, opens)
        while start < utc_visit(2026, 11, day, closes):
            await add_visit(
                core, client_id=other_id, master=master, service="haircut", start=start,
                status="booked",
            )  # fmt: skip
            start += timedelta(hours=1)

    await fill("artem", 25, 10, 21)  # Wednesday: Artem is full, Ilya and Marina are not
    for master, opens, closes in (("artem", 10, 21), ("ilya", 12, 21), ("marina", 10, 19)):
        await fill(master, 27, opens, closes)  # Friday: everyone is full
    chat.language = "en"
    await register(chat)
    await chat.click("Book a visit")
    await chat.click("Men's haircut")

    def day_labels() -> list[str]:
        return [label for label in chat.labels if label[:3] in DAY_NAMES]

    each: dict[str, list[str]] = {}
    for master in ("Artem", "Ilya", "Marina"):
        await chat.click(master)
        each[master] = day_labels()
        await chat.click("« Back")
    await chat.click("Any available master")
    anyone = day_labels()

    assert "Wed, Nov 25" not in each["Artem"] and "Wed, Nov 25" in anyone
    assert "Mon, Nov 23" not in each["Ilya"] and "Mon, Nov 23" in anyone
    assert "Fri, Nov 27" not in anyone
    assert set(anyone) == set(each["Artem"]) | set(each["Ilya"]) | set(each["Marina"])
    days = [datetime.strptime(f"{label} 2026", "%a, %b %d %Y") for label in anyone]
    assert days == sorted(set(days))  # in calendar order, each day once


DAY_NAMES = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
