"""Feedback that reaches the owner: a low rating asks what went wrong, becomes an open
complaint and is alerted at once to the owner and the administrators, with who, which
visit, the comment and the client's history; Resolve keeps a note and the time; an open
complaint is sent again a day later; a good rating gets the review link; a client who
ignored the request rates from My visits."""

from __future__ import annotations

from aiogram import Bot
from aiogram.methods import SendMessage
from sqlmodel import col, select

from bot.adapters.console import render
from bot.adapters.telegram import create_bot, inline_keyboard
from bot.adapters.telegram_delivery import TelegramDelivery
from bot.composition import Core
from domain import vocabulary as press
from domain.replies import Button, Reply, links_as_text, rows
from scheduler.delivery import Recipient
from storage.stats import refresh_client_stats
from storage.tables import Client, Feedback, Outbox, Role, Staff, Visit
from testing.chat import ChatClient, Clock
from testing.telegram_fakes import TOKEN, RecordingSession, bad_request
from tests.helpers import (
    MASTER,
    OWNER,
    RecordingDelivery,
    add_client,
    add_visit,
    register,
    send_due,
    staff_chat,
    utc_visit,
)

CLIENT = "1001"
ALERT = "complaint_alert"  # (on a Monday morning the owner's digest comes too)


async def client_with_history(chat: ChatClient, core: Core) -> Visit:
    """Ivan (Telegram 1001) registered; a haircut with Artem on 12 March and 30 October,
    a fade with Ilya on Friday 20 November 15:00: the visit he rates."""
    chat.language = "en"
    await register(chat)
    async with core.db.reading() as session:
        [client] = (await session.exec(select(Client))).all()
    assert client.id is not None
    for start in (utc_visit(2026, 3, 12, 12), utc_visit(2026, 10, 30, 12)):
        await add_visit(core, client_id=client.id, master="artem", service="haircut", start=start)
    visit = await add_visit(
        core, client_id=client.id, master="ilya", service="fade", start=utc_visit(2026, 11, 20, 15)
    )
    async with core.db.transaction() as session:
        await refresh_client_stats(
            session=session,
            tz=core.config.tz,
            return_days={s.id: s.return_interval_days for s in core.deps.catalog.services.values()},
        )
    return visit


async def the_feedback(core: Core) -> Feedback:
    async with core.db.reading() as session:
        return (await session.exec(select(Feedback))).one()


async def staff_id(core: Core, key: str) -> int:
    async with core.db.reading() as session:
        staff = (await session.exec(select(Staff).where(Staff.key == key))).one()
    assert staff.id is not None
    return staff.id


async def test_a_rating_of_two_with_a_comment_reaches_the_owner_at_once(
    shop: Core, clock: Clock
) -> None:
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    visit = await client_with_history(chat, shop)
    await chat.press(press.rate_visit(visit.id, 2))
    assert chat.last.text == "We are sorry it was not perfect. What went wrong? Write a few words:"
    await chat.send("Waited 20 minutes at the door")
    assert chat.last.text == (
        "Thank you for telling us. Your words have gone to the owner, who will read them "
        "today and do their best to put it right."
    )
    inbox = RecordingDelivery()
    await send_due(shop, clock, inbox)  # no planner pass: it was enqueued by the answer
    [alert] = inbox.to(OWNER, ALERT)
    assert alert.kind == "complaint_alert"
    assert alert.text.splitlines() == [
        "A complaint:",
        "Rating: ★★☆☆☆ (2 of 5)",
        "Client: Ivan",
        "Phone: +79123456789",
        "Visit: Fade with Ilya, on Friday, November 20, 15:00",
        "Comment: “Waited 20 minutes at the door”",
        "History: 3 visits since March 12, 2026, the last on November 20.",
    ]
    feedback = await the_feedback(shop)
    assert [(b.label, b.url, b.payload) for b in alert.flat_buttons] == [
        ("Write in Telegram", f"tg://user?id={CLIENT}", ""),
        ("Resolve", None, press.resolve_complaint(feedback.id)),
    ]
    assert inbox.to(MASTER) == []  # a master is not alerted
    assert (feedback.rating, feedback.status) == (2, "open")


async def test_every_administrator_with_a_chat_is_alerted_too(shop: Core, clock: Clock) -> None:
    async with shop.db.transaction() as session:
        marina = (await session.exec(select(Staff).where(Staff.key == "marina"))).one()
        marina.role, marina.telegram_id = Role.admin, 7003
        session.add(marina)
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    visit = await client_with_history(chat, shop)
    await chat.press(press.rate_visit(visit.id, 1))
    await chat.click("Skip")
    assert chat.last.text == "Thank you for the rating. The owner will read about it today."
    inbox = RecordingDelivery()
    await send_due(shop, clock, inbox)
    assert [r.address for r, _ in inbox.delivered] == [OWNER, "7003"]
    assert "No comment." in inbox.to("7003")[0].text.splitlines()


async def test_resolve_asks_for_a_note_and_keeps_who_and_when(shop: Core, clock: Clock) -> None:
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    visit = await client_with_history(chat, shop)
    await chat.press(press.rate_visit(visit.id, 2))
    await chat.send("Waited 20 minutes at the door")
    inbox = RecordingDelivery()
    await send_due(shop, clock, inbox)
    [alert] = inbox.to(OWNER, ALERT)
    clock.advance(hours=2, minutes=15)
    owner = staff_chat(shop, clock, OWNER)
    await owner.click("Resolve", alert)
    assert owner.last.text.endswith(
        "How was it resolved? Write a short note for the record, e.g. "
        "“called, apologised, the next visit is free”."
    )
    await owner.send("   ")
    assert owner.history[-1].text.startswith("Please type the note.")
    await owner.send("Called him, apologised; the next fade is free")
    done, listing = owner.history[-2:]
    assert done.text == (
        "Resolved, 2 h 15 min after the rating. Note: Called him, apologised; the next fade is free"
    )
    assert listing.text == "No open complaints."
    feedback = await the_feedback(shop)
    assert feedback.status == "resolved"
    assert feedback.resolved_at == clock.now
    assert feedback.resolved_by_id == await staff_id(shop, "artem")
    assert feedback.resolution == "Called him, apologised; the next fade is free"
    await owner.click("Resolve", alert)  # the alert's button again
    assert owner.last.text.startswith("Already resolved by Артём, on Monday, November 23, 11:15:")


async def test_complaints_lists_the_open_ones_with_resolve_buttons(
    shop: Core, clock: Clock
) -> None:
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    visit = await client_with_history(chat, shop)
    owner = staff_chat(shop, clock, OWNER)
    [empty] = await owner.send("/complaints")
    assert empty.text == "No open complaints."
    await chat.press(press.rate_visit(visit.id, 3))
    await chat.send("The music was too loud")
    [listing] = await owner.send("/complaints")
    assert listing.text.splitlines()[:2] == ["1 open complaint:", ""]
    assert "Comment: “The music was too loud”" in listing.text
    assert listing.text.endswith("Given on Monday, November 23, 09:00.")
    assert owner.labels == ["Resolve: Ivan, Mon, Nov 23", "Staff menu"]
    [menu] = await owner.send("/start")
    assert "Open complaints" in owner.labels and "/complaints — Open complaints" in menu.text
    assert menu.commands is not None and "complaints" in dict(menu.commands)
    master = staff_chat(shop, clock, MASTER)
    [menu] = await master.send("/start")
    assert "Open complaints" not in master.labels and "complaints" not in dict(menu.commands or ())


async def test_a_client_or_a_master_pressing_resolve_changes_nothing(
    shop: Core, clock: Clock
) -> None:
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    visit = await client_with_history(chat, shop)
    await chat.press(press.rate_visit(visit.id, 2))
    await chat.send("Rude")
    feedback = await the_feedback(shop)
    [forged] = await chat.press(press.resolve_complaint(feedback.id))
    assert forged.text.startswith("That button is out of date.")
    await chat.send("/complaints")
    assert chat.last.text == "Ivan, what would you like to do?"
    master = staff_chat(shop, clock, MASTER)
    [refused] = await master.press(press.resolve_complaint(feedback.id))
    assert refused.text == "Only the owner or an administrator can do this."
    [refused] = await master.send("/complaints")
    assert refused.text == "Only the owner or an administrator can do this."
    owner = staff_chat(shop, clock, OWNER)
    await owner.press(press.resolve_complaint(feedback.id))
    # The owner's role is taken away before the note is written: the note is refused.
    async with shop.db.transaction() as session:
        artem = (await session.exec(select(Staff).where(Staff.key == "artem"))).one()
        artem.role = Role.master
        session.add(artem)
    [refused] = await owner.send("resolved")
    assert refused.text == "Only the owner or an administrator can do this."
    stored = await the_feedback(shop)
    assert (stored.status, stored.resolved_at, stored.resolution) == ("open", None, "")


async def test_an_open_complaint_goes_to_the_owner_again_a_day_later(
    shop: Core, clock: Clock
) -> None:
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    visit = await client_with_history(chat, shop)
    await chat.press(press.rate_visit(visit.id, 2))
    await chat.send("Waited 20 minutes at the door")
    inbox = RecordingDelivery()
    await send_due(shop, clock, inbox, plan=True)
    clock.advance(hours=23, minutes=59)
    await send_due(shop, clock, inbox, plan=True)
    assert len(inbox.to(OWNER, ALERT)) == 1  # not yet
    clock.advance(minutes=1)
    await send_due(shop, clock, inbox, plan=True)
    clock.advance(hours=3)
    await send_due(shop, clock, inbox, plan=True)  # the same day: once
    first, again = inbox.to(OWNER, ALERT)
    assert again.text.splitlines()[0] == "Still not resolved, 1 day after the rating:"
    assert again.text.splitlines()[1:] == first.text.splitlines()[1:]
    owner = staff_chat(shop, clock, OWNER)
    await owner.click("Resolve", again)
    await owner.send("Called back, all fine")
    clock.advance(days=1)
    await send_due(shop, clock, inbox, plan=True)
    assert len(inbox.to(OWNER, ALERT)) == 2  # resolved: no more
    async with shop.db.reading() as session:
        keys = (
            await session.exec(
                select(Outbox.dedupe_key).where(col(Outbox.kind) == "complaint_alert")
            )
        ).all()
    artem = await staff_id(shop, "artem")
    feedback = await the_feedback(shop)
    assert sorted(keys) == [
        f"complaint_alert:feedback:{feedback.id}:0:staff:{artem}",
        f"complaint_alert:feedback:{feedback.id}:1:staff:{artem}",
    ]


async def test_a_client_who_never_says_what_went_wrong_is_alerted_half_an_hour_later(
    shop: Core, clock: Clock
) -> None:
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    visit = await client_with_history(chat, shop)
    await chat.press(press.rate_visit(visit.id, 1))  # and no answer to "what went wrong?"
    inbox = RecordingDelivery()
    clock.advance(minutes=29)
    await send_due(shop, clock, inbox, plan=True)
    assert inbox.to(OWNER, ALERT) == []
    clock.advance(minutes=1)
    await send_due(shop, clock, inbox, plan=True)
    [alert] = inbox.to(OWNER, ALERT)
    assert "No comment." in alert.text.splitlines()
    clock.advance(minutes=10)
    await chat.send("Cut too short")  # the comment comes after all: it follows the alert
    await send_due(shop, clock, inbox)
    _, comment = inbox.to(OWNER, ALERT)
    assert comment.text.splitlines()[0] == "The client has said what went wrong:"
    assert "Comment: “Cut too short”" in comment.text.splitlines()


async def test_a_rating_of_five_thanks_with_the_review_link_and_no_alert(
    shop: Core, clock: Clock
) -> None:
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    visit = await client_with_history(chat, shop)
    [thanks] = await chat.press(press.rate_visit(visit.id, 5))
    assert thanks.text == (
        "Thank you for the rating! We are glad you liked it.\n"
        "It would help us a lot if you left a review."
    )
    review = chat.button("Leave a review")
    assert review.url == "https://britva.example/review"
    inbox = RecordingDelivery()
    clock.advance(hours=1)
    await send_due(shop, clock, inbox, plan=True)
    assert inbox.to(OWNER, ALERT) == []
    assert (await the_feedback(shop)).status == "ok"
    # Changed to a 2 within a day: now it is a complaint, and the owner hears of it.
    await chat.press(press.rate_visit(visit.id, 2))
    await chat.send("Actually the fade is uneven")
    await send_due(shop, clock, inbox)
    [alert] = inbox.to(OWNER, ALERT)
    assert "Rating: ★★☆☆☆ (2 of 5)" in alert.text.splitlines()


async def test_a_client_who_ignored_the_request_rates_from_my_visits(
    shop: Core, clock: Clock
) -> None:
    chat = ChatClient(shop.conversations, clock, external_id=CLIENT)
    await client_with_history(chat, shop)
    await chat.send("/start")
    await chat.click("My visits")
    assert chat.last.text.splitlines()[-4:] == [
        "Past visits:",
        "Fri, Nov 20 — Fade, Ilya · not rated yet",
        "Fri, Oct 30 — Men's haircut, Artem · not rated yet",
        "Thu, Mar 12 — Men's haircut, Artem · not rated yet",
    ]
    assert "Rate: Fri, Oct 30" in chat.labels and "Rate: Thu, Mar 12" not in chat.labels
    await chat.click("Rate: Fri, Nov 20")
    assert chat.last.text == (
        "How was your Fade with Ilya, on Friday, November 20, 15:00? One tap to rate it:"
    )
    await chat.click("★★★★")
    await chat.click("« Main menu")
    await chat.click("My visits")
    assert "Fri, Nov 20 — Fade, Ilya · ★★★★☆" in chat.last.text.splitlines()
    await chat.click("Change the rating: Fri, Nov 20")
    await chat.click("★★★★★")
    assert (await the_feedback(shop)).rating == 5
    clock.advance(hours=24)
    await chat.send("/start")
    await chat.click("My visits")
    assert not any("Nov 20" in label for label in chat.labels)  # a day later: it stays


async def test_links_are_buttons_in_telegram_printed_in_the_terminal_text_in_whatsapp() -> None:
    reply = Reply(
        "A complaint:",
        buttons=rows(
            [Button.link("Write in Telegram", "tg://user?id=1001"), Button("Resolve", "1:cr:7")]
        ),
    )
    keyboard = inline_keyboard(reply)
    assert keyboard is not None
    [[link], [resolve]] = keyboard.inline_keyboard
    assert (link.url, link.callback_data) == ("tg://user?id=1001", None)
    assert (resolve.url, resolve.callback_data) == (None, "1:cr:7")
    assert render(reply) == "A complaint:\n  [1] Resolve\n  Write in Telegram: tg://user?id=1001"
    written = links_as_text(reply)
    assert written.text == "A complaint:\n\nWrite in Telegram: tg://user?id=1001"
    assert [b.label for b in written.flat_buttons] == ["Resolve"]


async def test_a_link_telegram_refuses_goes_as_text_and_the_alert_is_not_lost() -> None:
    session = RecordingSession()
    bot: Bot = create_bot(TOKEN, session=session)
    session.fail_next(bad_request("BUTTON_USER_PRIVACY_RESTRICTED"), on=SendMessage)
    reply = Reply(
        "A complaint:",
        buttons=rows(
            [Button.link("Write in Telegram", "tg://user?id=1001"), Button("Resolve", "1:cr:7")]
        ),
    )
    await TelegramDelivery(bot).deliver(Recipient("telegram", OWNER, "en"), reply)
    [sent] = session.sent(SendMessage)
    assert sent.text == "A complaint:\n\nWrite in Telegram: tg://user?id=1001"
    assert [[b.callback_data for b in row] for row in sent.reply_markup.inline_keyboard] == [
        ["1:cr:7"]
    ]


async def test_a_whatsapp_client_can_be_written_to_from_the_alert(shop: Core, clock: Clock) -> None:
    client = await add_client(
        shop,
        name="Ольга",
        phone="+79160000077",
        whatsapp_id="79160000077",
        last_inbound_whatsapp_at=clock.now,
        consent_at=clock.now,
        locale="ru",
    )
    assert client.id is not None
    visit = await add_visit(
        shop,
        client_id=client.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 20, 12),
    )
    chat = ChatClient(shop.conversations, clock, channel="whatsapp", external_id="79160000077")
    await chat.press(press.rate_visit(visit.id, 3))
    await chat.click("Пропустить")
    inbox = RecordingDelivery()
    await send_due(shop, clock, inbox)
    [alert] = inbox.to(OWNER, ALERT)
    assert "Client: Ольга" in alert.text.splitlines()  # staff read the shop's language
    assert [(b.label, b.url) for b in alert.links] == [
        ("Write in WhatsApp", "https://wa.me/79160000077")
    ]
