"""The client's rights over their data: /mydata, /forget, and "Unsubscribe" under offers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from aiogram import Bot
from aiogram.methods import SendDocument
from sqlalchemy import String, Text, text
from sqlmodel import SQLModel, select

from bot.adapters.telegram import build_dispatcher, create_bot
from bot.composition import Core
from domain import vocabulary as press
from scheduler.messages import Messages
from storage.tables import Client, Feedback, Outbox, OutboxStatus, Visit
from testing.chat import ChatClient, Clock
from testing.telegram_fakes import TOKEN, RecordingSession, TelegramPerson, person
from tests.helpers import (
    MASTER,
    OWNER,
    add_client,
    add_visit,
    register,
    staff_chat,
    utc_visit,
    visits,
)

PHONE = "+79123456789"


@pytest.fixture
def chat(core: Core, clock: Clock) -> ChatClient:
    return ChatClient(core.conversations, clock, language="en", external_id="1001")


async def _client_with_history(chat: ChatClient, core: Core, clock: Clock) -> Client:
    """Ivan, registered in the chat, with a note, a birthday, a rated visit with a comment
    and a booked one with a reminder pending."""
    await register(chat)
    async with core.db.transaction() as session:
        client = (await session.exec(select(Client))).one()
        client.preference_note = "short on the sides, please"
        client.staff_notes = "likes green tea"
        client.birthday = utc_visit(1990, 5, 17, 12).date()
        session.add(client)
    assert client.id is not None
    done = await add_visit(
        core, client_id=client.id, master="ilya", service="fade", start=utc_visit(2026, 11, 20, 15)
    )
    booked = await add_visit(
        core,
        client_id=client.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 26, 15),
        status="booked",
    )
    async with core.db.transaction() as session:
        booked_row = await session.get(Visit, booked.id)
        assert booked_row is not None
        booked_row.comment = "I'll be five minutes late, sorry — Ivan"
        session.add(booked_row)
        session.add(
            Feedback(
                visit_id=done.id or 0,
                rating=2,
                comment="The fade was uneven, Ivan",
                status="open",
                created_at=clock.now,
            )
        )
        session.add(
            Outbox(
                kind="reminder",
                client_id=client.id,
                due_at=clock.now + timedelta(days=2),
                dedupe_key="reminder:24h:test",
                payload={"visit_id": booked.id},
                created_at=clock.now,
            )
        )
    return client


async def test_mydata_shows_what_is_kept_and_attaches_it_as_json(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    await _client_with_history(chat, core, clock)
    [reply] = await chat.send("/mydata")
    lines = reply.text.splitlines()
    assert lines[:3] == ["What we keep about you:", "Name: Ivan", f"Phone: {PHONE}"]
    assert "Birthday: May 17" in lines
    assert "Your note: short on the sides, please" in lines
    assert "2 visits:" in lines and "Ratings: 2" in lines
    assert reply.document is not None and reply.document.filename == "my-data.json"
    data = json.loads(reply.document.data)
    assert data["client"]["phone"] == PHONE
    assert data["chats"] == [data["chats"][0]] and data["chats"][0]["external_id"] == "1001"
    assert [r["comment"] for r in data["ratings"]] == ["The fade was uneven, Ivan"]


async def test_telegram_sends_the_file_after_the_text(core: Core, clock: Clock) -> None:
    session = RecordingSession()
    bot: Bot = create_bot(TOKEN, session=session)
    dp = build_dispatcher(core.conversations, clock=lambda: clock.now)
    ivan = TelegramPerson(dp, bot, session, user=person(user_id=1001))
    await ivan.send("/start")
    await ivan.click("Ivan")
    await ivan.share_contact(PHONE)
    await ivan.click("I agree")
    await ivan.click("Yes, please")
    await ivan.click("Skip")
    sent = await ivan.send("/mydata")
    [document] = [m for m in sent if isinstance(m, SendDocument)]
    assert document.document.filename == "my-data.json"  # type: ignore[union-attr]


async def _every_text_value(core: Core) -> list[str]:
    """Every text value of every column of every table."""
    found: list[str] = []
    async with core.db.reading() as session:
        for table in SQLModel.metadata.sorted_tables:
            textual = [c for c in table.columns if isinstance(c.type, String | Text)]
            json_columns = [c for c in table.columns if c.type.__class__.__name__ == "JSON"]
            for column in (*textual, *json_columns):
                connection = await session.connection()
                rows = await connection.execute(text(f'SELECT "{column.name}" FROM "{table.name}"'))
                found += [str(value) for (value,) in rows.all() if value is not None]
    return found


async def test_forget_erases_every_trace_and_keeps_the_anonymous_visits(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    await _client_with_history(chat, core, clock)
    await chat.send("/forget")
    assert chat.last.text.endswith("Erase your data?")
    await chat.click("Yes, erase my data")
    assert chat.last.text.startswith("Done: your data is erased.")
    values = await _every_text_value(core)
    for secret in (
        "Ivan",
        PHONE,
        "79123456789",
        "1001",
        "short on the sides",
        "green tea",
        "uneven",
        "five minutes",
    ):
        leaks = [v for v in values if secret in v]
        assert not leaks, f"{secret!r} is still stored: {leaks[:3]}"
    async with core.db.reading() as session:
        [client] = (await session.exec(select(Client))).all()
        pending = (await session.exec(select(Outbox))).all()
    assert client.birthday is None and client.deleted_at == clock.now
    assert len(await visits(core)) == 2  # the statistics keep the visits, anonymous
    assert [(o.status, o.last_error) for o in pending] == [
        (OutboxStatus.skipped, "the client's data was erased")
    ]
    replies = await chat.send("hello")  # the same person again: a new client
    assert "booking bot" in replies[0].text


async def test_forget_asks_first_and_a_stranger_has_nothing_to_erase(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    await register(chat)
    await chat.send("/forget")
    await chat.click("Main menu")
    async with core.db.reading() as session:
        [client] = (await session.exec(select(Client))).all()
    assert client.phone == PHONE and client.deleted_at is None
    stranger = ChatClient(core.conversations, clock, language="en", external_id="2002")
    [reply] = await stranger.send("/mydata")
    assert reply.text == "There is nothing stored about this chat."


async def test_every_offer_has_an_unsubscribe_button_that_works(
    chat: ChatClient, core: Core, clock: Clock
) -> None:
    await register(chat)
    async with core.db.reading() as session:
        [client] = (await session.exec(select(Client))).all()
    messages = Messages(
        config=core.config, catalog=core.deps.catalog, translators=core.deps.translators
    )
    visit = await add_visit(
        core,
        client_id=client.id or 0,
        master="ilya",
        service="haircut",
        start=utc_visit(2026, 11, 16, 12),
    )
    async with core.db.transaction() as session:
        tip = Outbox(
            kind="care_tip",
            client_id=client.id,
            due_at=clock.now,
            dedupe_key="tip",
            created_at=clock.now,
            payload={"visit_id": visit.id},
        )
        check = Outbox(
            kind="feedback_request",
            client_id=client.id,
            due_at=clock.now,
            dedupe_key="fb",
            created_at=clock.now,
            payload={"visit_id": visit.id},
        )
        session.add_all([tip, check])
        await session.flush()
        offer = (await messages.compose(session, tip, clock.now)).reply
        request = (await messages.compose(session, check, clock.now)).reply
    assert "Unsubscribe from offers" not in [b.label for b in request.flat_buttons]
    assert offer.flat_buttons[-1].label == "Unsubscribe from offers"
    await chat.click("Unsubscribe from offers", offer)
    assert chat.last.text.startswith("Done: no more offers from us.")
    async with core.db.reading() as session:
        again = await session.get(Client, client.id)
    assert again is not None and not again.marketing_allowed


async def test_a_client_added_by_staff_keeps_the_consent_text_empty_until_they_agree(
    core: Core, chat: ChatClient
) -> None:
    await register(chat)
    staff_added = await add_client(core, name="Пётр", phone="+79990000001")
    async with core.db.reading() as session:
        rows = {c.name: c for c in (await session.exec(select(Client))).all()}
    assert rows["Ivan"].consent_text == core.config.business.consent_text
    assert staff_added.consent_text == ""


async def test_the_owner_erases_a_client_from_the_card_and_a_master_cannot(
    shop: Core, clock: Clock
) -> None:
    client = await add_client(shop, name="Пётр", phone="+79990000001")
    await add_visit(
        shop,
        client_id=client.id or 0,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 20, 15),
    )
    master = staff_chat(shop, clock, MASTER)
    [refused] = await master.press(press.staff_erase(client.id, sure=True))
    assert refused.text == "Only the owner or an administrator can do this."
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/client +7 999 000-00-01")
    await owner.click("Erase their data")
    assert owner.last.text.startswith("Erase Пётр's personal data")
    await owner.click("Yes, erase")
    assert owner.last.text == "Erased. The visits stay as anonymous figures."
    async with shop.db.reading() as session:
        stored = await session.get(Client, client.id)
    assert stored is not None and (stored.name, stored.phone) == ("—", None)
    assert len(await visits(shop)) == 1
