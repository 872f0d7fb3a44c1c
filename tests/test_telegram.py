"""The Telegram adapter: real `Update` objects through the real dispatcher, Bot API calls
recorded by a session that never touches the network."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageText,
    SendMessage,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import (
    Chat,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.adapters.telegram import (
    CONTACT_BUTTON,
    SORRY,
    add_telegram_webhook,
    build_dispatcher,
    channel_of,
    create_bot,
    event_of,
    set_commands,
    split_text,
    webhook_url,
)
from bot.composition import Core
from domain.replies import Button, Reply
from handlers.events import Command, Contact, Text
from storage.tables import Client, Visit, VisitStatus
from testing.chat import Clock
from testing.telegram_fakes import (
    SENT_AT,
    TOKEN,
    RecordingSession,
    TelegramPerson,
    bad_request,
    buttons_of,
    contact_of,
    message_update,
    network_error,
    person,
    retry_after,
    texts,
)
from tests.helpers import chat_id

GREETING = "Hello! This is the booking bot of Барбершоп «Бритва»."


@pytest.fixture
def session() -> RecordingSession:
    return RecordingSession()


@pytest.fixture
def bot(session: RecordingSession) -> Bot:
    return create_bot(TOKEN, session=session)


@pytest.fixture
def dp(core: Core, clock: Clock) -> Dispatcher:
    return build_dispatcher(core.conversations, clock=lambda: clock.now)


@pytest.fixture
def ivan(dp: Dispatcher, bot: Bot, session: RecordingSession) -> TelegramPerson:
    return TelegramPerson(dp, bot, session)


async def register(someone: TelegramPerson, phone: str = "79123456789") -> None:
    await someone.send("/start")
    await someone.click(someone.user.first_name)
    await someone.share_contact(phone)
    await someone.click("I agree")
    await someone.click("Yes, please")
    await someone.click("Skip")


def only(methods: list[TelegramMethod[Any]], kind: type[Any]) -> Any:
    found = [m for m in methods if isinstance(m, kind)]
    assert len(found) == 1, f"expected one {kind.__name__} in {methods}"
    return found[0]


def labels(method: SendMessage | EditMessageText) -> list[str]:
    markup = method.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    return [button.text for row in markup.inline_keyboard for button in row]


async def test_a_new_client_gets_the_greeting_and_the_name_question(
    ivan: TelegramPerson, bot: Bot
) -> None:
    sent = await ivan.send("/start")

    assert texts(sent) == [
        f"{GREETING} Book a visit in a few taps, and we will remind you about it.",
        "What is your name?",
    ]
    question = sent[1]
    assert isinstance(question, SendMessage) and question.chat_id == 1001
    assert isinstance(question.reply_markup, InlineKeyboardMarkup)
    [[name], [language]] = question.reply_markup.inline_keyboard
    assert (name.text, name.callback_data) == ("Ivan", "1:rn")
    assert (language.text, language.callback_data) == ("Русский", "1:rl:ru")
    assert bot.default is not None and bot.default.parse_mode is None  # nothing parsed as HTML


async def test_registration_and_booking_through_buttons_end_with_a_visit(
    ivan: TelegramPerson, session: RecordingSession, core: Core
) -> None:
    await ivan.send("/start")
    sent = await ivan.click("Ivan")

    ask = only(sent, SendMessage)
    assert ask.text.startswith("Your phone number, please")
    assert isinstance(ask.reply_markup, ReplyKeyboardMarkup)
    [[share]] = ask.reply_markup.keyboard
    assert share.request_contact and share.text == CONTACT_BUTTON
    assert ask.reply_markup.one_time_keyboard

    sent = await ivan.share_contact("79123456789")  # Telegram's format, without "+"

    # The phone keyboard goes away, although the next question has inline buttons.
    removal, deletion, consent = sent
    assert isinstance(removal, SendMessage) and isinstance(
        removal.reply_markup, ReplyKeyboardRemove
    )
    assert isinstance(deletion, DeleteMessage) and deletion.message_id not in ivan.chat
    assert isinstance(consent, SendMessage)
    assert consent.text.startswith("To book you we need your consent")
    assert labels(consent) == ["I agree", "No"]

    await ivan.click("I agree")
    await ivan.click("Yes, please")
    sent = await ivan.click("Skip")
    assert texts(sent) == [
        "Thank you, Ivan! You are registered.",
        "Ivan, what would you like to do?",
    ]

    menu = ivan.keyboard_message()
    sent = await ivan.click("Book a visit")
    edit = only(sent, EditMessageText)
    assert edit.message_id == menu.message_id
    assert edit.text == "Choose a service:"
    assert not session.sent(SendMessage)[-1].text.startswith("Choose")  # edited, not sent
    await ivan.click("Men's haircut")
    await ivan.click("Ilya")
    await ivan.click("Tue, Nov 24")
    await ivan.click("Afternoon")
    await ivan.click("Later times »")
    sent = await ivan.click("15:30")
    assert "When: on Tuesday, November 24, 15:30" in texts(sent)[0]
    sent = await ivan.click("Confirm")

    [confirmation] = texts(sent)
    assert confirmation.startswith("Done! You are booked.")
    assert "Men's haircut · Ilya" in confirmation
    assert "Price: ₽1,800" in confirmation
    assert labels(only(sent, EditMessageText)) == ["My visits", "« Main menu"]
    async with core.db.reading() as db:
        [visit] = (await db.exec(select(Visit))).all()
        client = await db.get(Client, visit.client_id)
    assert visit.status == VisitStatus.booked and visit.source == "telegram"
    assert client is not None and client.phone == "+79123456789"
    assert await chat_id(core, client.id) == "1001"
    # Every tap was answered, so no spinner is left turning.
    assert len(session.sent(AnswerCallbackQuery)) == 12  # two more: afternoon, later times


async def test_a_typed_phone_also_takes_the_phone_keyboard_away(ivan: TelegramPerson) -> None:
    await ivan.send("/start")
    await ivan.click("Ivan")
    sent = await ivan.send("+7 912 345-67-89")
    assert isinstance(sent[0], SendMessage) and isinstance(
        sent[0].reply_markup, ReplyKeyboardRemove
    )
    assert texts(sent)[-1].startswith("To book you we need your consent")


async def test_a_wrong_number_asks_again_with_the_phone_keyboard(ivan: TelegramPerson) -> None:
    await ivan.send("/start")
    await ivan.click("Ivan")
    [again] = await ivan.send("12")
    assert isinstance(again, SendMessage)
    assert again.text.startswith("That number is too short")
    assert isinstance(again.reply_markup, ReplyKeyboardMarkup)


async def test_a_stale_button_gets_a_polite_answer_and_the_chat_goes_on(
    ivan: TelegramPerson,
) -> None:
    await register(ivan)
    menu = ivan.keyboard_message()

    sent = await ivan.press("1:zz", menu)

    assert isinstance(sent[0], AnswerCallbackQuery)
    [answer] = texts(sent)
    assert answer.startswith("That button is out of date. Here is the menu.")
    sent = await ivan.click("Book a visit")
    assert texts(sent) == ["Choose a service:"]


async def test_a_time_taken_meanwhile_is_refused_politely(
    ivan: TelegramPerson, dp: Dispatcher, bot: Bot, session: RecordingSession
) -> None:
    olga = TelegramPerson(dp, bot, session, person(2002, "Olga"))
    await register(ivan)
    await register(olga, "79123456780")
    for someone in (ivan, olga):
        await someone.click("Book a visit")
        await someone.click("Men's haircut")
        await someone.click("Ilya")
        await someone.click("Tue, Nov 24")
    await ivan.click("Afternoon")
    await ivan.click("Later times »")
    times = ivan.keyboard_message()  # Ivan looks at the times…
    await olga.click("Afternoon")
    await olga.click("Later times »")
    await olga.click("15:30")
    await olga.click("Confirm")  # …while Olga takes 15:30

    sent = await ivan.click("15:30", times)

    [answer] = texts(sent)
    assert answer.startswith("Sorry, on Tuesday, November 24, 15:30 is no longer available.")
    sent = await ivan.click("16:30")
    assert "When: on Tuesday, November 24, 16:30" in texts(sent)[0]


async def test_a_tap_edits_the_message_it_was_on(ivan: TelegramPerson) -> None:
    await register(ivan)
    menu = ivan.keyboard_message()

    sent = await ivan.click("Help")

    edit = only(sent, EditMessageText)
    assert (edit.chat_id, edit.message_id) == (1001, menu.message_id)
    assert edit.text.startswith("Барбершоп «Бритва» booking bot.")
    assert labels(edit) == ["« Main menu"]
    assert not [m for m in sent if isinstance(m, SendMessage)]


async def test_a_message_that_cannot_be_edited_is_sent_anew(
    ivan: TelegramPerson, session: RecordingSession
) -> None:
    await register(ivan)
    session.fail_next(bad_request("message can't be edited"), on=EditMessageText)

    sent = await ivan.click("Help")

    [(name, _)] = session.failed
    assert name == "editMessageText"
    new = only(sent, SendMessage)
    assert new.text.startswith("Барбершоп «Бритва» booking bot.")
    assert labels(new) == ["« Main menu"]


async def test_the_same_button_twice_changes_nothing(
    ivan: TelegramPerson, session: RecordingSession
) -> None:
    await register(ivan)
    menu = ivan.keyboard_message()
    await ivan.click("Help")
    session.fail_next(bad_request("message is not modified"), on=EditMessageText)

    sent = await ivan.click("Help", menu)  # a double tap: the second press comes late

    assert [type(m) for m in sent] == [AnswerCallbackQuery]


async def test_one_failing_update_does_not_stop_the_next(
    ivan: TelegramPerson, session: RecordingSession, caplog: pytest.LogCaptureFixture
) -> None:
    session.fail_next(network_error(), on=SendMessage)

    with caplog.at_level(logging.ERROR, logger="bot.adapters.telegram"):
        sent = await ivan.send("/start")

    assert texts(sent) == [SORRY]
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    sent = await ivan.send("/start")
    assert texts(sent)[-1] == "What is your name?"


async def test_a_failing_tap_is_still_answered(
    ivan: TelegramPerson, session: RecordingSession
) -> None:
    await register(ivan)
    session.fail_next(network_error(), on=EditMessageText)

    sent = await ivan.click("Help")

    assert isinstance(sent[0], AnswerCallbackQuery)
    assert texts(sent) == [SORRY]


async def test_a_flood_wait_is_sat_out(ivan: TelegramPerson, session: RecordingSession) -> None:
    session.fail_next(retry_after(0), on=SendMessage)
    sent = await ivan.send("/start")
    assert texts(sent)[-1] == "What is your name?"
    assert len(session.failed) == 1


async def test_group_chats_are_ignored(ivan: TelegramPerson, session: RecordingSession) -> None:
    group = Chat(id=-100500, type="group", title="Barbers")
    update = message_update(ivan.user, 1, chat=group, text="/start")

    await ivan.dp.feed_update(ivan.bot, update)

    assert session.requests == []


async def test_a_sticker_shows_the_step_again_with_a_hint(ivan: TelegramPerson) -> None:
    await ivan.send("/start")
    sent = await ivan.send_sticker()
    assert texts(sent) == ["Please type your name.\n\nWhat is your name?"]


async def test_service_messages_are_ignored(
    ivan: TelegramPerson, session: RecordingSession
) -> None:
    update = message_update(ivan.user, 1, pinned_message=None, new_chat_title="x")
    await ivan.dp.feed_update(ivan.bot, update)
    assert session.requests == []


def a_message(**content: Any) -> Message:
    user = person()
    return Message(
        message_id=1,
        date=SENT_AT,
        chat=Chat(id=user.id, type="private"),
        from_user=user,
        **content,
    )


def test_updates_become_conversation_events() -> None:
    user = person()
    assert event_of(a_message(text="/START@Regulars_Bot ref42")) == Command("start", "ref42")
    assert event_of(a_message(text="/help")) == Command("help", "")
    assert event_of(a_message(text="Hi /start")) == Text("Hi /start")
    assert event_of(a_message(contact=contact_of(user, "79123456789"))) == Contact("+79123456789")
    # Somebody else's contact is only a number the client typed, in effect.
    forwarded = contact_of(user, "+79123456780", owner_id=777)
    assert event_of(a_message(contact=forwarded)) == Text("+79123456780")


async def test_long_texts_are_split_with_the_buttons_under_the_last_part(
    dp: Dispatcher, bot: Bot, session: RecordingSession
) -> None:
    lines = [f"line {n:04} " + "x" * 90 for n in range(100)]  # ~10 000 characters
    reply = Reply("\n".join(lines), buttons=((Button("OK", "1:mn"),),))

    await channel_of(dp).deliver(bot, 1001, [reply])

    first, second, third = session.sent(SendMessage)
    assert first.reply_markup is None and second.reply_markup is None
    assert labels(third) == ["OK"]
    assert "\n".join([first.text, second.text, third.text]) == reply.text
    assert all(len(m.text) <= 4096 for m in (first, second, third))


def test_split_text_counts_as_telegram_does() -> None:
    assert split_text("") == ["…"]
    assert split_text("short") == ["short"]
    emoji = "😀" * 3000  # 6000 UTF-16 units
    parts = split_text(emoji)
    assert "".join(parts) == emoji
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)
    words = " ".join(["word"] * 2000)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in split_text(words))


async def test_the_command_menu_is_set_in_russian_and_english(
    bot: Bot, session: RecordingSession
) -> None:
    await set_commands(bot, default_language="ru")
    menus = {m.language_code: m.commands for m in session.sent(SetMyCommands)}
    assert set(menus) == {"ru", "en", None}
    assert (menus["ru"][0].command, menus["ru"][0].description) == ("start", "Главное меню")
    assert [c.command for c in menus["en"]] == ["start", "help", "stop", "mydata", "forget"]
    assert menus[None] == menus["ru"]


async def test_a_failing_command_menu_is_logged_not_raised(
    bot: Bot, session: RecordingSession, caplog: pytest.LogCaptureFixture
) -> None:
    session.fail_next(network_error(), on=SetMyCommands)
    with caplog.at_level(logging.WARNING, logger="bot.adapters.telegram"):
        await set_commands(bot)
    assert "could not set the Telegram command menu" in caplog.text
    assert TOKEN not in caplog.text


def test_a_bare_webhook_host_gets_the_telegram_path() -> None:
    assert webhook_url("https://bot.example") == "https://bot.example/webhook/telegram"
    assert webhook_url("https://bot.example/tg/hook") == "https://bot.example/tg/hook"


async def test_the_webhook_checks_the_secret_and_feeds_the_update(
    dp: Dispatcher, bot: Bot, session: RecordingSession
) -> None:
    app = web.Application()
    add_telegram_webhook(app, dp, bot, "s3cret")
    update = message_update(person(), 1, text="/start").model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    async with TestClient(TestServer(app)) as client:
        refused = await client.post("/webhook/telegram", json=update)
        assert refused.status == 401
        headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
        accepted = await client.post("/webhook/telegram", json=update, headers=headers)
        assert accepted.status == 200
    # Shutting the app down waited for the update in progress.
    assert texts([m for _, m in session.requests])[-1] == "What is your name?"
    assert buttons_of(session.chats[1001][max(session.chats[1001])])[0].text == "Ivan"
