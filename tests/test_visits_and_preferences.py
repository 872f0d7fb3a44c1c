from __future__ import annotations

from datetime import date

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


async def _booked(chat: ChatClient) -> None:
    chat.language = "en"
    await register(chat)
    await book(chat, service="Men's haircut", master="Ilya", day="Thu, Nov 26", time="15:00")


async def test_my_visits_lists_upcoming_visits(chat: ChatClient) -> None:
    await _booked(chat)
    await chat.click("My visits")
    assert chat.last.text.splitlines()[:2] == [
        "You have 1 upcoming visit:",
        "On Thursday, November 26, 15:00 — Men's haircut, Ilya",
    ]
    assert chat.labels == ["Thu, Nov 26, 15:00", "« Main menu"]


async def test_client_cancels_a_visit_before_the_cutoff(chat: ChatClient, core: Core) -> None:
    await _booked(chat)
    await chat.click("My visits")
    await chat.click("Thu, Nov 26, 15:00")
    await chat.click("Cancel visit")
    assert chat.last.text.startswith("Cancel this visit?")
    await chat.click("Yes, cancel it")
    assert chat.last.text.startswith("Your visit is cancelled:")
    [visit] = await visits(core)
    assert visit.status == VisitStatus.cancelled
    assert visit.cancelled_at == chat.clock.now
    # The same "Yes" button pressed again from the old message.
    await chat.press(chat.history[-2].flat_buttons[0].payload)
    assert chat.last.text.startswith("This visit is no longer active")
    assert "You have no upcoming visits." in chat.last.text


async def test_after_the_cutoff_the_client_is_asked_to_call(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    await _booked(chat)
    await chat.click("My visits")
    await chat.click("Thu, Nov 26, 15:00")
    cancel = chat.button("Cancel visit").payload
    clock.now = utc_visit(2026, 11, 26, 13)  # two hours before; the cutoff is three
    await chat.click("« My visits")
    await chat.click("Thu, Nov 26, 15:00")
    assert chat.labels == ["« My visits"]  # no buttons that cannot work
    assert "please call us: +7 495 123-45-67" in chat.last.text
    await chat.press(cancel)  # the button of the earlier card
    assert "less than 3 h before your visit" in chat.last.text
    assert "+7 495 123-45-67" in chat.last.text
    [visit] = await visits(core)
    assert visit.status == VisitStatus.booked


async def test_reschedule_keeps_service_and_master_and_moves_the_time(
    chat: ChatClient, core: Core
) -> None:
    await _booked(chat)
    await chat.click("My visits")
    await chat.click("Thu, Nov 26, 15:00")
    await chat.click("Reschedule")
    assert "Men's haircut, Ilya. Choose a day:" in chat.last.text
    await chat.click("Fri, Nov 27")
    await pick_time(chat, "17:00")
    assert chat.last.text.startswith("Moving your visit:")
    assert "From: Thu, Nov 26, 15:00" in chat.last.text
    assert "To: Fri, Nov 27, 17:00" in chat.last.text
    await chat.click("Confirm")
    assert chat.last.text.startswith("Done! Your visit is moved.")
    [visit] = await visits(core)
    assert visit.starts_at == utc_visit(2026, 11, 27, 17)
    assert core.deps.catalog.masters[visit.master_id].name == "Илья"


async def test_a_reschedule_cannot_be_confirmed_after_the_cutoff(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    await _booked(chat)  # Thursday 26 November, 15:00
    clock.now = utc_visit(2026, 11, 26, 11, 55)  # 3 h 05 min before: still allowed to start
    await chat.click("My visits")
    await chat.click("Thu, Nov 26, 15:00")
    await chat.click("Reschedule")
    await chat.click("Fri, Nov 27")
    await pick_time(chat, "17:00")
    clock.now = utc_visit(2026, 11, 26, 14, 30)  # the summary is confirmed half an hour before
    await chat.click("Confirm")
    assert "less than 3 h before your visit" in chat.last.text
    [visit] = await visits(core)
    assert visit.starts_at == utc_visit(2026, 11, 26, 15)


async def test_a_client_cannot_touch_someone_elses_visit(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    other = await add_client(core, name="Пётр", phone="+79990000001", consent_at=clock.now)
    assert other.id is not None
    theirs = await add_visit(
        core,
        client_id=other.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 27, 12),
        status="booked",
    )
    chat.language = "en"
    await register(chat)
    for action in ("cy", "cx", "rs", "vi"):
        await chat.press(f"1:{action}:{theirs.id}")
        assert chat.last.text.startswith("This visit is no longer active")
    await chat.press(f"1:ok:r{theirs.id}:{int(utc_visit(2026, 11, 27, 18).timestamp() // 60)}")
    assert [v.status for v in await visits(core)] == [VisitStatus.booked]
    assert (await visits(core))[0].starts_at == utc_visit(2026, 11, 27, 12)


async def test_preferences_are_saved(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Preferences")
    await chat.click("Favourite master")
    await chat.click("Marina")  # an English reader reads the master's name in English
    assert chat.last.text.startswith("Saved.")
    await chat.click("Preferred time")
    await chat.click("Evening")
    await chat.click("Note for the master")
    await chat.send("n" * 400)
    assert chat.last.text.startswith("That is 400 characters; the limit is 300.")
    await chat.send("Short on the sides")
    await chat.click("Birthday")
    await chat.send("05.03.1988")
    await chat.click("Turn offers off")
    assert "Offers: off" in chat.last.text
    assert "Favourite master: Marina" in chat.last.text
    [client] = await clients(core)
    assert client.favourite_master_id == core.deps.catalog.master_by_key("marina").id  # type: ignore[union-attr]
    assert client.preferred_time_of_day == "evening"
    assert client.preference_note == "Short on the sides"
    assert client.birthday == date(1988, 3, 5)
    assert not client.marketing_allowed
    # The favourite comes first with a star when booking.
    await chat.click("Main menu")
    await chat.click("Book a visit")
    await chat.click("Men's haircut")
    assert chat.labels[1] == "★ Marina"


async def test_name_and_phone_are_changed_in_preferences(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Preferences")
    await chat.click("Name")
    await chat.send("  Ivan   Petrov ")
    assert chat.last.text.startswith("Saved.")
    assert "Name: Ivan Petrov" in chat.last.text
    await chat.click("Phone")
    await chat.send("+7 912")
    assert chat.last.text.startswith("That number is too short: some digits are missing.")
    await chat.send("+7 912 345 67 89 00 11")
    assert chat.last.text.startswith("That number is too long")
    await chat.send("8 (913) 222-33-44")
    assert chat.last.text.startswith("Saved: +7 913 222-33-44")
    [client] = await clients(core)
    assert client.phone == "+79132223344"
    assert not client.phone_verified  # typed: only a claim until the messenger proves it
    await chat.click("Phone")
    await chat.share_contact("+79132223344")
    assert chat.last.text.startswith("Saved: +7 913 222-33-44")
    [client] = await clients(core)
    assert client.phone_verified


async def test_a_typed_phone_of_another_client_is_refused_in_preferences(
    chat: ChatClient, core: Core
) -> None:
    await add_client(core, name="Olga", phone="+79135556677")
    chat.language = "en"
    await register(chat)
    await chat.click("Preferences")
    await chat.click("Phone")
    await chat.send("+7 913 555-66-77")
    assert chat.last.text.startswith("We already know this number.")
    me = [c for c in await clients(core) if c.name != "Olga"]
    assert me[0].phone == "+79123456789"


async def test_birthday_is_removed_and_clear_note_only_with_a_note(chat: ChatClient) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Preferences")
    await chat.click("Note for the master")
    assert "Clear the note" not in chat.labels
    await chat.send("Short on the sides")
    await chat.click("Note for the master")
    assert "Clear the note" in chat.labels
    await chat.click("« Back")
    await chat.click("Birthday")
    assert "Remove my birthday" not in chat.labels
    await chat.send("01.01.2090")
    assert chat.last.text.startswith("That date is in the future.")
    await chat.send("01.01.1899")
    assert chat.last.text.startswith("That year is too long ago.")
    await chat.send("05.03.1988")
    await chat.click("Birthday")
    await chat.click("Remove my birthday")
    assert chat.last.text.startswith("Your birthday is removed.")
    assert "Birthday: —" in chat.last.text


async def test_a_visit_booked_minutes_ago_can_be_cancelled_within_the_cutoff(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    chat.language = "en"
    await register(chat)
    clock.now = utc_visit(2026, 11, 24, 12)
    await book(chat, service="Men's haircut", master="Ilya", day="Tue, Nov 24", time="13:00")
    clock.advance(minutes=10)  # 50 minutes before the visit, 10 minutes after booking
    await chat.click("My visits")
    await chat.click("Tue, Nov 24, 13:00")
    await chat.click("Cancel visit")
    await chat.click("Yes, cancel it")
    assert chat.last.text.startswith("Your visit is cancelled:")
    [visit] = await visits(core)
    assert visit.status == VisitStatus.cancelled


async def test_the_grace_ends_fifteen_minutes_after_booking(chat: ChatClient, clock: Clock) -> None:
    chat.language = "en"
    await register(chat)
    clock.now = utc_visit(2026, 11, 24, 12)
    await book(chat, service="Men's haircut", master="Ilya", day="Tue, Nov 24", time="14:00")
    clock.advance(minutes=16)
    await chat.click("My visits")
    await chat.click("Tue, Nov 24, 14:00")
    assert "Cancel visit" not in chat.labels and "Reschedule" not in chat.labels


async def test_the_visit_card_shows_price_address_and_comment(chat: ChatClient) -> None:
    chat.language = "en"
    await register(chat)
    await to_summary(chat, service="Men's haircut", master="Ilya", day="Thu, Nov 26", time="15:00")
    await chat.click("Add a comment")
    await chat.send("Short on the sides")
    await chat.click("Confirm")
    await chat.click("My visits")
    await chat.click("Thu, Nov 26, 15:00")
    card = chat.last.text
    assert "Price: ₽1,800" in card
    assert "Address: 12 Pokrovka Street, Moscow" in card
    assert "Comment: Short on the sides" in card
    assert chat.labels == ["Reschedule", "Cancel visit", "« My visits"]
