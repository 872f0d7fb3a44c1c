"""The attacks of issue 8, each as a person would try it: a typed phone is only a claim, one
client cannot empty the calendar, a win-back discount goes only to whom it was offered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pywa_async import WhatsApp
from sqlmodel import select

from bot.adapters.whatsapp import add_whatsapp_webhook, whatsapp_channel
from bot.adapters.whatsapp_outbound import create_whatsapp
from bot.composition import Core
from bot.tools.importer import import_files
from domain.payloads import pack
from domain.replies import Reply
from scheduler.messages import Messages
from storage.tables import ChurnReason, Client, Outbox, OutboxStatus, VisitStatus
from testing.chat import ChatClient, Clock
from testing.whatsapp_fakes import (
    API_URL,
    APP_SECRET,
    PHONE_ID,
    TOKEN,
    VERIFY_TOKEN,
    FakeGraphAPI,
    WhatsAppPerson,
)
from tests.helpers import add_visit, book, chat_id, clients, pick_time, register, to_summary, visits

VERA = "+79161234567"  # the real owner's number; WhatsApp knows her as 79161234567
TYPED = "+7 916 123-45-67"


def person(core: Core, clock: Clock, chat: str, name: str) -> ChatClient:
    return ChatClient(core.conversations, clock, external_id=chat, display_name=name, language="en")


async def park_at_birthday(stranger: ChatClient, phone: str) -> None:
    """Registration with a typed number, left at the last step."""
    await stranger.send("/start")
    await stranger.click(stranger.display_name or "")
    await stranger.send(phone)
    await stranger.click("I agree")
    await stranger.click("No, thanks")
    assert "birthday" in stranger.last.text


async def by_phone(core: Core) -> dict[str | None, Client]:
    return {c.phone: c for c in await clients(core)}


# --- A typed phone is a claim ---------------------------------------------------------------


async def test_a_parked_registration_does_not_adopt_the_owner_who_registered_meanwhile(
    core: Core, clock: Clock
) -> None:
    stranger = person(core, clock, "666", "Mallory")
    await park_at_birthday(stranger, TYPED)
    owner = person(core, clock, "777", "Vera")
    await owner.send("/start")
    await owner.click("Vera")
    await owner.share_contact("79161234567")
    await owner.click("I agree")
    await owner.click("No, thanks")
    await owner.click("Skip")
    assert owner.history[-2].text == "Thank you, Vera! You are registered."

    await stranger.click("Skip")

    assert stranger.last.text.startswith("We already know this number.")
    assert stranger.last.ask_contact
    [vera] = await clients(core)
    assert (vera.name, vera.phone, vera.phone_verified) == ("Vera", VERA, True)
    assert await chat_id(core, vera.id) == "777"


async def test_a_parked_registration_does_not_adopt_a_client_the_shop_imported(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    stranger = person(core, clock, "666", "Mallory")
    await park_at_birthday(stranger, TYPED)
    shop_list = tmp_path / "clients.csv"
    shop_list.write_text(f"phone,name\n{VERA},Вера Иванова\n", encoding="utf-8")
    await import_files(core=core, clients=shop_list, visits=None, now=clock.now)

    await stranger.click("Skip")

    assert stranger.last.text.startswith("We already know this number.")
    [vera] = await clients(core)
    assert vera.name == "Вера Иванова" and await chat_id(core, vera.id) is None


async def test_a_registration_left_for_a_day_starts_over(core: Core, clock: Clock) -> None:
    stranger = person(core, clock, "666", "Mallory")
    await stranger.send("/start")
    await stranger.click("Mallory")
    await stranger.send(TYPED)
    clock.advance(hours=25)

    await stranger.click("I agree")

    assert stranger.last.text.startswith(
        "Your registration was not finished within a day, so let's start again."
    )
    assert stranger.last.text.endswith("What is your name?")
    assert await clients(core) == []


async def test_the_owner_is_not_locked_out_by_a_stranger_who_typed_their_number(
    core: Core, clock: Clock
) -> None:
    stranger = person(core, clock, "666", "Mallory")
    await register(stranger, phone=TYPED)
    owner = person(core, clock, "777", "Vera")
    await owner.send("/start")
    await owner.click("Vera")

    await owner.send(TYPED)  # typing proves nothing either
    assert owner.last.text.startswith("We already know this number.")
    await owner.share_contact("79161234567")  # the messenger's own contact does
    await owner.click("I agree")
    await owner.click("No, thanks")
    await owner.click("Skip")

    assert owner.history[-2].text == "Thank you, Vera! You are registered."
    people = await by_phone(core)
    assert (people[VERA].name, people[VERA].phone_verified) == ("Vera", True)
    assert await chat_id(core, people[VERA].id) == "777"
    assert people[None].name == "Mallory"  # moved off the number…
    await stranger.send("/start")  # …and asked for their own the next time they write
    assert "Please share your own number" in stranger.last.text
    assert stranger.last.ask_contact


async def test_an_import_does_not_merge_the_shops_client_into_a_typed_number(
    core: Core, clock: Clock, tmp_path: Path
) -> None:
    stranger = person(core, clock, "666", "Mallory")
    await register(stranger, phone=TYPED)
    shop_list = tmp_path / "clients.csv"
    shop_list.write_text(f"phone,name,birthday\n{VERA},Вера Иванова,12.05.1990\n", "utf-8")
    history = tmp_path / "visits.csv"
    history.write_text(
        f"phone,master,service,start,status\n{VERA},artem,haircut,2026-10-01 12:00,completed\n",
        "utf-8",
    )

    await import_files(core=core, clients=shop_list, visits=history, now=clock.now)

    people = await by_phone(core)
    vera, mallory = people[VERA], people[None]
    assert (vera.name, vera.phone_verified, vera.completed_visits) == ("Вера Иванова", True, 1)
    assert (mallory.name, mallory.birthday, mallory.completed_visits) == ("Mallory", None, 0)
    assert [v.client_id for v in await visits(core)] == [vera.id]
    assert await chat_id(core, mallory.id) == "666"


async def test_a_deleted_client_who_writes_again_registers_as_new(core: Core, clock: Clock) -> None:
    chat = person(core, clock, "1001", "Ivan")
    await register(chat)
    [gone] = await clients(core)
    async with core.db.transaction() as session:
        row = await session.get(Client, gone.id)
        assert row is not None
        row.deleted_at = clock.now
    clock.advance(days=1)

    await register(chat)

    assert chat.history[-2].text == "Thank you, Ivan! You are registered."
    old, new = await clients(core)
    assert (old.id, old.phone, old.deleted_at) == (gone.id, None, clock.now - timedelta(days=1))
    assert (new.phone, new.deleted_at) == ("+79123456789", None)
    assert await chat_id(core, new.id) == "1001"


# --- WhatsApp ------------------------------------------------------------------------------


@pytest.fixture
async def vera_on_whatsapp(core: Core, clock: Clock) -> AsyncIterator[WhatsAppPerson]:
    """Vera writing from her own number, through the signed webhook."""
    api = FakeGraphAPI()
    http = api.http()
    wa: WhatsApp = create_whatsapp(phone_id=PHONE_ID, token=TOKEN, api_url=API_URL, http=http)
    app = web.Application()
    add_whatsapp_webhook(
        app,
        core=core,
        client=wa,
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
        clock=lambda: clock.now,
    )
    async with TestClient(TestServer(app)) as server:
        yield WhatsAppPerson(server, whatsapp_channel(app), api, wa_id="79161234567", name="Вера")
    await http.aclose()


async def test_the_owner_on_whatsapp_does_not_land_in_a_strangers_account(
    core: Core, clock: Clock, vera_on_whatsapp: WhatsAppPerson
) -> None:
    stranger = person(core, clock, "666", "Mallory")
    await register(stranger, phone=TYPED)
    vera = vera_on_whatsapp

    [*_, question] = await vera.send("Здравствуйте")

    assert "Mallory" not in question.text
    assert question.text == "Как вас зовут?"  # a new client: registration, consent asked
    await vera.tap("Вера")
    assert "согласие" in vera.api.to(vera.wa_id)[-1].text
    await vera.tap("Даю согласие")
    await vera.tap("Нет, спасибо")
    await vera.tap("Пропустить")
    people = await by_phone(core)
    assert (people[VERA].name, people[VERA].phone_verified) == ("Вера", True)
    assert await chat_id(core, people[VERA].id, "whatsapp") == "79161234567"
    assert people[None].name == "Mallory"


# --- The calendar ----------------------------------------------------------------------------

SHOP_PHONE = "+7 495 123-45-67"


async def test_a_fourth_upcoming_visit_is_refused_with_the_shops_phone(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)
    for day in ("Tue, Nov 24", "Wed, Nov 25", "Thu, Nov 26"):
        await book(chat, service="Fade", master="Ilya", day=day, time="14:00")
        assert chat.last.text.startswith("Done! You are booked.")

    await chat.send("/start")
    await chat.click("Book a visit")

    assert chat.last.text == (
        "You already have 3 upcoming visits, the most the bot can book at once. "
        f"To book another one, please call us: {SHOP_PHONE}."
    )
    assert len(await visits(core)) == 3


async def test_a_fourth_visit_is_refused_even_from_an_old_confirm_button(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)
    await book(chat, service="Fade", master="Ilya", day="Tue, Nov 24", time="14:00")
    await book(chat, service="Fade", master="Ilya", day="Wed, Nov 25", time="14:00")
    await chat.send("/start")
    await to_summary(chat, service="Fade", master="Ilya", day="Thu, Nov 26", time="14:00")
    confirm = chat.button("Confirm").payload
    await book(chat, service="Fade", master="Ilya", day="Fri, Nov 27", time="14:00")

    await chat.press(confirm)

    assert chat.last.text.startswith("You already have 3 upcoming visits")
    assert len(await visits(core)) == 3


async def test_two_overlapping_visits_with_two_masters_are_refused(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)
    await book(chat, service="Fade", master="Ilya", day="Tue, Nov 24", time="14:00")

    await book(chat, service="Men's haircut", master="Artem", day="Tue, Nov 24", time="14:30")

    assert chat.last.text.startswith("You already have a visit at that time: ")
    assert chat.last.text.endswith(f"Please choose another time or call us: {SHOP_PHONE}.")
    [visit] = await visits(core)
    assert visit.master_id == core.deps.catalog.master_by_key("ilya").id  # type: ignore[union-attr]


async def test_a_visit_cannot_be_moved_onto_another_of_the_clients_visits(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)
    await book(chat, service="Fade", master="Ilya", day="Tue, Nov 24", time="14:00")
    await book(chat, service="Men's haircut", master="Artem", day="Tue, Nov 24", time="17:00")
    await chat.send("/start")
    await chat.click("My visits")
    await pick_time(chat, "17:00")
    await chat.click("Reschedule")
    await chat.click("Tue, Nov 24")
    await pick_time(chat, "14:00")

    await chat.click("Confirm")

    assert chat.last.text.startswith("You already have a visit at that time: ")
    starts = sorted(v.starts_at.astimezone(core.config.tz).hour for v in await visits(core))
    assert starts == [14, 17]


async def test_the_eleventh_booking_of_a_day_is_refused(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    chat.language = "en"
    await register(chat)
    [client] = await clients(core)
    assert client.id is not None
    for n in range(10):  # booked and cancelled again, ten times today
        await add_visit(
            core,
            client_id=client.id,
            master="ilya",
            service="fade",
            start=clock.now + timedelta(days=2, hours=n),
            status=VisitStatus.cancelled,
            created_at=clock.now - timedelta(minutes=10 - n),
            source="telegram",
        )

    await chat.send("/start")
    await chat.click("Book a visit")

    assert chat.last.text == (
        "Bookings made today: 10, the most the bot takes in one day. "
        f"Please try again tomorrow or call us: {SHOP_PHONE}."
    )
    clock.advance(days=1)
    await chat.send("/start")
    await chat.click("Book a visit")
    assert chat.last.text == "Choose a service:"  # a new day


# --- The win-back discount ------------------------------------------------------------------


async def winback_to(core: Core, clock: Clock, client: Client, *, status: str) -> Reply:
    """A win-back as the planner plans it (offering 25 %) and the sender composes it."""
    messages = Messages(
        config=core.config, catalog=core.deps.catalog, translators=core.deps.translators
    )
    async with core.db.transaction() as session:
        row = Outbox(
            kind="winback",
            client_id=client.id,
            due_at=clock.now,
            dedupe_key=f"winback:1:client:{client.id}:test",
            payload={"number": 1, "discount_percent": 25},
            status=OutboxStatus.pending,
            created_at=clock.now,
        )
        session.add(row)
        await session.flush()
        reply = (await messages.compose(session, row, clock.now)).reply
        row.status = status
        session.add(row)
    return reply


async def churn_reasons(core: Core) -> list[tuple[int, str, int | None]]:
    async with core.db.reading() as session:
        rows = (await session.exec(select(ChurnReason))).all()
    return [(r.client_id, r.answer, r.outbox_id) for r in rows]


STALE = "That button is out of date. Here is the menu."


async def test_a_forged_winback_answer_gets_no_discount_and_adds_no_row(
    chat: ChatClient, core: Core
) -> None:
    chat.language = "en"
    await register(chat)

    for forged in ("1:wr:price", pack("wr", 1, "price"), pack("wr", 10**30, "price")):
        await chat.press(forged)
        assert chat.last.text.startswith(STALE), forged
        assert "off any visit" not in chat.last.text

    assert await churn_reasons(core) == []


async def test_a_winback_answer_counts_once_with_the_discount_it_offered(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    chat.language = "en"
    await register(chat)
    [client] = await clients(core)
    winback = await winback_to(core, clock, client, status=OutboxStatus.sent)

    await chat.click("Too expensive", winback)
    assert chat.last.text.startswith("Thank you for telling us. Come back with 25% off")
    await chat.click("No time", winback)  # the same message again

    assert chat.last.text.startswith(STALE)
    [(client_id, answer, outbox_id)] = await churn_reasons(core)
    assert (client_id, answer, outbox_id is not None) == (client.id, "price", True)


async def test_a_winback_sent_to_someone_else_or_held_out_gives_nothing(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    chat.language = "en"
    await register(chat)
    [client] = await clients(core)
    held_out = await winback_to(core, clock, client, status=OutboxStatus.held_out)
    other = person(core, clock, "2002", "Boris")
    await register(other, phone="+7 916 765-43-21")

    await chat.click("Too expensive", held_out)  # planned for the control group, never sent
    assert chat.last.text.startswith(STALE)
    await other.press(chat.button("Too expensive", held_out).payload)  # not theirs
    assert other.last.text.startswith(STALE)

    assert await churn_reasons(core) == []
