"""The buttons on the bot's own messages: a client confirming, rating, saying "not now" or
why they stopped coming; a master marking a visit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlmodel import select

from bot.composition import Core, build_core_on
from domain.business import BusinessConfig
from domain.replies import Reply
from scheduler.messages import Messages
from storage.db import Database
from storage.tables import ChurnReason, Client, Feedback, Outbox, Staff, Visit, VisitStatus
from testing.chat import ChatClient, Clock
from tests.helpers import add_client, add_visit, chat_id, register, utc_visit, visits


async def _compose(core: Core, clock: Clock, **row: object) -> Reply:
    messages = Messages(
        config=core.config, catalog=core.deps.catalog, translators=core.deps.translators
    )
    async with core.db.transaction() as session:
        outbox = Outbox(due_at=clock.now, created_at=clock.now, dedupe_key=f"test:{row}", **row)  # type: ignore[arg-type]
        session.add(outbox)
        await session.flush()
        return (await messages.compose(session, outbox, clock.now)).reply


async def _registered_with_visit(chat: ChatClient, core: Core, status: str) -> Visit:
    chat.language = "en"
    await register(chat)
    [client] = [c for c in await _clients(core) if await chat_id(core, c.id) == chat.external_id]
    assert client.id is not None
    start = utc_visit(2026, 11, 24, 15) if status == "booked" else utc_visit(2026, 11, 20, 15)
    return await add_visit(
        core, client_id=client.id, master="ilya", service="fade", start=start, status=status
    )


async def _clients(core: Core) -> list[Client]:
    async with core.db.reading() as session:
        return list((await session.exec(select(Client))).all())


async def test_i_will_be_there_confirms_the_visit(chat: ChatClient, core: Core) -> None:
    visit = await _registered_with_visit(chat, core, "booked")
    reminder = await _compose(
        core, chat.clock, kind="reminder", client_id=visit.client_id, payload={"visit_id": visit.id}
    )
    assert reminder.text.startswith("Reminder: Fade with Ilya, on Tuesday, November 24, 15:00.")
    assert [b.label for b in reminder.flat_buttons] == [
        "I'll be there",
        "Reschedule",
        "Cancel visit",
    ]
    await chat.click("I'll be there", reminder)
    assert chat.last.text == "Thank you! We are expecting you on Tuesday, November 24, 15:00."
    [stored] = await visits(core)
    assert stored.status == VisitStatus.confirmed
    # The reminder's Cancel button leads to the usual cancellation.
    await chat.click("Cancel visit", reminder)
    assert chat.last.text.startswith("Cancel this visit?")


async def test_a_low_rating_asks_what_went_wrong_and_keeps_the_comment(
    chat: ChatClient, core: Core
) -> None:
    visit = await _registered_with_visit(chat, core, "completed")
    request = await _compose(
        core,
        chat.clock,
        kind="feedback_request",
        client_id=visit.client_id,
        payload={"visit_id": visit.id},
    )
    assert request.text == "How was your Fade with Ilya? One tap to rate it:"
    await chat.click("★★", request)
    assert "What went wrong?" in chat.last.text
    await chat.send("x" * 1200)
    assert chat.last.text.startswith("That is 1200 characters; the limit is 1000.")
    await chat.send("Waited 20 minutes")
    assert "We will look into it" in chat.last.text
    async with core.db.reading() as session:
        feedback = (await session.exec(select(Feedback))).one()
    assert (feedback.rating, feedback.comment, feedback.status) == (2, "Waited 20 minutes", "open")


async def test_a_high_rating_thanks_and_offers_the_review_link(
    chat: ChatClient, core: Core
) -> None:
    visit = await _registered_with_visit(chat, core, "completed")
    await chat.press(f"1:fb:{visit.id}:5")
    assert chat.last.text == (
        "Thank you for the rating! We are glad you liked it.\n"
        "It would help us a lot if you left a review."
    )
    review = chat.button("Leave a review")
    assert (review.url, review.payload) == ("https://britva.example/review", "")
    async with core.db.reading() as session:
        feedback = (await session.exec(select(Feedback))).one()
    assert (feedback.rating, feedback.status) == (5, "ok")


async def test_not_now_snoozes_the_nudges_until_the_next_cycle(
    chat: ChatClient, core: Core
) -> None:
    await _registered_with_visit(chat, core, "completed")
    async with core.db.transaction() as session:
        client = (await session.exec(select(Client))).one()
        client.rhythm_days, client.next_visit_due = 28, chat.clock.now.date() + timedelta(days=3)
        session.add(client)
    await chat.press("1:nn")
    assert chat.last.text.startswith("All right, we will not remind you this time.")
    [client] = await _clients(core)
    assert client.nudge_snoozed_until == chat.clock.now.date() + timedelta(days=31)


async def test_a_sleeping_clients_reason_is_stored_and_the_discount_offered(
    chat: ChatClient, core: Core
) -> None:
    await _registered_with_visit(chat, core, "completed")
    [client] = await _clients(core)
    winback = await _compose(
        core, chat.clock, kind="winback", client_id=client.id, payload={}, status="sent"
    )
    assert [b.label for b in winback.flat_buttons] == [
        "I moved away",
        "Too expensive",
        "Did not like it",
        "No time",
        "Other reason",
        "Unsubscribe from offers",
    ]
    await chat.click("Too expensive", winback)
    assert chat.last.text.startswith("Thank you for telling us. Come back with 20% off any visit")
    async with core.db.reading() as session:
        reasons = (await session.exec(select(ChurnReason))).all()
    assert [(r.client_id, r.answer) for r in reasons] == [(client.id, "price")]
    assert reasons[0].outbox_id is not None


async def test_the_master_marks_came_with_another_amount(
    db: Database, config: BusinessConfig, clock: Clock
) -> None:
    masters = [
        m.model_copy(update={"telegram_id": 7002}) if m.key == "ilya" else m for m in config.masters
    ]
    core = await build_core_on(db=db, config=config.model_copy(update={"masters": masters}))
    client = await add_client(core, name="Пётр", phone="+79990000001", consent_at=clock.now)
    assert client.id is not None
    visit = await add_visit(
        core,
        client_id=client.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 23, 7),
        status="booked",
    )
    async with core.db.reading() as session:
        ilya = (await session.exec(select(Staff).where(Staff.key == "ilya"))).one()
    check = await _compose(
        core, clock, kind="visit_check", staff_id=ilya.id, payload={"visit_id": visit.id}
    )
    assert check.text == "Пётр, «Фейд» в 07:00: визит состоялся?"  # staff read the shop's language
    master = ChatClient(core.conversations, clock, external_id="7002", language="ru")
    assert check.flat_buttons[0].label == "Визит был, 2\xa0200\xa0₽"
    await master.click("Визит был, другая сумма", check)
    await master.send("две тысячи")
    assert master.last.text.startswith("Напишите, пожалуйста, число")
    await master.send("2 500")
    assert master.last.text.startswith("Отмечено")
    [stored] = await visits(core)
    assert stored.status == VisitStatus.completed and stored.paid_amount == Decimal("2500.00")
    [figures] = await _clients(core)
    assert figures.completed_visits == 1 and figures.next_visit_due is not None


async def test_a_stranger_cannot_mark_a_visit(chat: ChatClient, core: Core) -> None:
    visit = await _registered_with_visit(chat, core, "booked")
    await chat.press(f"1:mx:{visit.id}")
    [stored] = await visits(core)
    assert stored.status == VisitStatus.booked  # a client pressing a master's button


async def test_a_changed_rating_does_not_close_a_complaint(chat: ChatClient, core: Core) -> None:
    visit = await _registered_with_visit(chat, core, "completed")
    await chat.press(f"1:fb:{visit.id}:1")
    await chat.press("1:fs")
    await chat.press(f"1:fb:{visit.id}:5")  # changed within 24 hours: the rating follows
    assert chat.last.text.startswith("Thank you, your rating is changed.")
    async with core.db.reading() as session:
        feedback = (await session.exec(select(Feedback))).one()
    assert (feedback.rating, feedback.status) == (5, "open")  # staff still resolve it
    chat.clock.advance(hours=24)
    await chat.press(f"1:fb:{visit.id}:2")
    assert chat.last.text == "Thank you, we already have your rating for this visit."
    async with core.db.reading() as session:
        feedback = (await session.exec(select(Feedback))).one()
    assert feedback.rating == 5


async def test_friendly_messages_use_the_first_name_and_a_spelled_out_validity(
    core: Core, clock: Clock
) -> None:
    ru = await add_client(
        core, name="Виктор Зайцев", phone="+79130000001", locale="ru", **_welcome(clock, 81)
    )
    greeting = await _compose(core, clock, kind="birthday", client_id=ru.id, payload={})
    assert greeting.text.startswith("С днём рождения, Виктор! Наш подарок для вас:")
    assert "в пределах 7 дней до или после дня рождения" in greeting.text
    assert "дн." not in greeting.text
    en = await add_client(
        core, name="Anna Smith", phone="+79130000002", locale="en", **_welcome(clock, 82)
    )
    winback = await _compose(core, clock, kind="winback", client_id=en.id, payload={})
    assert winback.text.startswith("Anna, we have not seen you for a while")


def _welcome(clock: Clock, chat: int) -> dict[str, object]:
    """A client who may get offers, with a chat to get them in."""
    return {"consent_at": clock.now, "marketing_opt_in_at": clock.now, "telegram_id": chat}
