"""Staff in the chat: the staff menu and command list per role, /today and /day, one
visit's card and its marks, invitations, and every refusal a client or a master meets."""

from __future__ import annotations

from aiogram import Bot
from aiogram.methods import SetMyCommands
from aiogram.types import BotCommandScopeChat
from sqlmodel import select

from bot.adapters.console import ConsoleChat
from bot.adapters.telegram import build_dispatcher, create_bot, set_staff_commands
from bot.composition import Core, build_core_on
from domain import vocabulary as press
from domain.business import BusinessConfig
from handlers.conversation import CONSOLE_STAFF
from handlers.staff_menu import staff_command_lists
from storage.db import Database
from storage.tables import Outbox, Staff, StaffInvite, VisitStatus
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


async def _day_with_visits(core: Core) -> dict[str, int]:
    """Monday 2026-11-23 (the clock's day): Пётр at 12:00 with Ilya (his first visit, a
    comment), Анна at 15:00 with Artem (a regular, with a preference)."""
    petr = await add_client(core, name="Пётр", phone="+79990000001")
    anna = await add_client(
        core, name="Анна", phone="+79990000002", completed_visits=4, preference_note="short sides"
    )
    assert petr.id is not None and anna.id is not None
    mine = await add_visit(
        core,
        client_id=petr.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 23, 12),
        status="booked",
    )
    theirs = await add_visit(
        core,
        client_id=anna.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 23, 15),
        status="confirmed",
    )
    return {"ilya": mine.id or 0, "artem": theirs.id or 0}


async def test_the_owner_sees_the_whole_day_by_master(shop: Core, clock: Clock) -> None:
    await _day_with_visits(shop)
    owner = staff_chat(shop, clock, OWNER)
    [day] = await owner.send("/today")
    assert day.text.splitlines() == [
        "Monday, November 23:",
        "",
        "Artem:",
        "15:00–16:00 — Анна, +79990000002, Men's haircut · 4 visits before · confirmed",
        "   “short sides”",
        "",
        "Ilya:",
        "12:00–13:15 — Пётр, +79990000001, Fade · first visit · booked",
    ]
    assert owner.labels[:2] == ["12:00 Пётр", "15:00 Анна"]


async def test_a_master_sees_only_their_own_visits(shop: Core, clock: Clock) -> None:
    await _day_with_visits(shop)
    master = staff_chat(shop, clock, MASTER)
    [day] = await master.send("/today")
    assert "Анна" not in day.text and "Пётр" in day.text
    [tomorrow] = await master.send("/tomorrow")
    assert tomorrow.text == "Tuesday, November 24:\nNo visits booked."
    await master.send("/day 23.11")
    assert "Пётр" in master.last.text
    await master.send("/day someday")
    assert master.last.text == "Write the day as /day 2026-12-01 or /day 01.12."


async def test_a_master_cannot_open_or_cancel_another_masters_visit(
    shop: Core, clock: Clock
) -> None:
    ids = await _day_with_visits(shop)
    master = staff_chat(shop, clock, MASTER)
    await master.press(press.staff_visit(ids["artem"]))
    assert master.last.text == "This is another master's visit."
    await master.press(press.staff_cancel_sure(ids["artem"]))
    assert master.last.text == "This is another master's visit."
    assert {v.status for v in await visits(shop)} == {"booked", "confirmed"}


async def test_the_master_cancels_a_visit_and_the_client_is_told(shop: Core, clock: Clock) -> None:
    ids = await _day_with_visits(shop)
    master = staff_chat(shop, clock, MASTER)
    await master.send("/today")
    await master.click("12:00 Пётр")
    assert "Came" not in " ".join(master.labels)  # it has not begun: no "came" yet
    await master.click("Cancel the visit")
    assert master.last.text.endswith("Cancel this visit? The client will get a message about it.")
    await master.click("Yes, cancel and tell the client")
    assert master.history[-2].text == "Cancelled; the client will be told."
    stored = {v.id: v for v in await visits(shop)}[ids["ilya"]]
    assert (stored.status, stored.cancel_reason) == (VisitStatus.cancelled, "staff")
    async with shop.db.reading() as session:
        [notice] = (
            await session.exec(select(Outbox).where(Outbox.kind == "visit_cancelled"))
        ).all()
    assert notice.payload == {"visit_id": ids["ilya"]} and notice.due_at == clock.now
    await master.press(press.staff_cancel_sure(ids["ilya"]))  # the same button again
    assert master.history[-2].text == "This visit is no longer active: nothing was changed."


async def test_came_from_the_card_once_the_visit_has_begun(shop: Core, clock: Clock) -> None:
    ids = await _day_with_visits(shop)
    clock.advance(hours=3, minutes=5)  # 12:05 Moscow
    master = staff_chat(shop, clock, MASTER)
    await master.press(press.staff_visit(ids["ilya"]))
    await master.click("Came, ₽2,200")
    assert master.last.text.startswith("Marked: came")
    stored = {v.id: v for v in await visits(shop)}[ids["ilya"]]
    assert stored.status == VisitStatus.completed


async def test_a_client_typing_staff_commands_gets_the_client_menu(
    shop: Core, clock: Clock
) -> None:
    await _day_with_visits(shop)
    client = ChatClient(shop.conversations, clock, external_id="1001", language="en")
    await register(client)
    for command in ("/today", "/day 2026-11-23", "/invite master"):
        [reply] = await client.send(command)
        assert reply.text == "Ivan, what would you like to do?"
    stranger = ChatClient(shop.conversations, clock, external_id="1002", language="en")
    replies = await stranger.send("/today")
    assert "booking bot" in replies[0].text and all("Пётр" not in r.text for r in replies)


async def test_forged_staff_buttons_from_a_client_change_nothing(shop: Core, clock: Clock) -> None:
    ids = await _day_with_visits(shop)
    client = ChatClient(shop.conversations, clock, external_id="1001", language="en")
    await register(client)
    for payload in (
        press.staff_visit(ids["ilya"]),
        press.staff_cancel_sure(ids["ilya"]),
        press.staff_day(clock.now.date()),
        press.staff_open("invite"),
        press.staff_open("today"),
    ):
        [reply] = await client.press(payload)
        assert "Пётр" not in reply.text and "invitation" not in reply.text
    assert {v.status for v in await visits(shop)} == {"booked", "confirmed"}
    async with shop.db.reading() as session:
        assert (await session.exec(select(StaffInvite))).all() == []


async def test_the_menu_and_command_list_follow_the_role(shop: Core, clock: Clock) -> None:
    owner, master = staff_chat(shop, clock, OWNER), staff_chat(shop, clock, MASTER)
    [owners] = await owner.send("/start")
    [masters] = await master.send("/start")
    assert owners.commands is not None and masters.commands is not None
    assert "invite" in dict(owners.commands) and "invite" not in dict(masters.commands)
    assert {"start", "today", "tomorrow", "day"} <= set(dict(masters.commands))
    assert "Today's visits" in master.labels
    [refused] = await master.send("/invite master")
    assert refused.text == "Only the owner or an administrator can do this."
    [hint] = await master.send("what now?")
    assert hint.text.startswith("Please choose one of the buttons below, or a command.")


async def test_an_invitation_binds_once_for_48_hours(shop: Core, clock: Clock) -> None:
    owner = staff_chat(shop, clock, OWNER)
    [invite] = await owner.send("/invite master marina")
    code = invite.text.rsplit("/start ", 1)[1]  # no Telegram username in tests: typed form
    marina = staff_chat(shop, clock, "7003", display_name="Марина")
    replies = await marina.send(f"/start {code}")
    assert replies[0].text == "Welcome to the team, Марина!"
    async with shop.db.reading() as session:
        bound = (await session.exec(select(Staff).where(Staff.key == "marina"))).one()
    assert bound.telegram_id == 7003
    marina_info = shop.deps.catalog.master_by_key("marina")
    assert marina_info is not None and marina_info.telegram_id == 7003  # visit checks go there
    [day] = await marina.send("/today")
    assert day.text.startswith("Monday, November 23:")
    other = staff_chat(shop, clock, "7004")
    [refused] = await other.send(f"/start {code}")
    assert refused.text.startswith("This invitation is expired, used or unknown.")
    [late] = await owner.send("/invite admin")
    clock.advance(hours=48, seconds=1)
    expired = await other.send("/start " + late.text.rsplit("/start ", 1)[1])
    assert expired[0].text.startswith("This invitation is expired, used or unknown.")
    not_staff = await other.send("/today")
    assert all("Monday" not in reply.text for reply in not_staff)


async def test_an_invited_admin_stays_staff_after_a_restart(
    shop: Core, clock: Clock, db: Database, config: BusinessConfig
) -> None:
    owner = staff_chat(shop, clock, OWNER)
    [invite] = await owner.send("/invite admin")
    admin = staff_chat(shop, clock, "7005", display_name="Ольга")
    await admin.send("/start " + invite.text.rsplit("/start ", 1)[1])
    await build_core_on(db=db, config=config)  # the bot restarts with business.toml
    [reply] = await admin.send("/invite master")
    assert reply.text.startswith("An invitation for a master.")


async def test_the_operator_tries_the_staff_side_in_the_terminal(shop: Core, clock: Clock) -> None:
    await _day_with_visits(shop)
    out: list[str] = []
    console = ConsoleChat(
        shop.conversations,
        external_id=CONSOLE_STAFF + "ilya",
        write=out.append,
        clock=lambda: clock.now,
    )
    await console.say("/start")
    assert out[-1].startswith("Илья, the staff menu.")
    await console.say("/today")
    assert "Пётр" in out[-1] and "Анна" not in out[-1]


async def test_telegram_gets_the_staff_command_list_for_that_chat(shop: Core, clock: Clock) -> None:
    session = RecordingSession()
    bot: Bot = create_bot(TOKEN, session=session)
    dp = build_dispatcher(shop.conversations, clock=lambda: clock.now)
    master = TelegramPerson(dp, bot, session, user=person(user_id=int(MASTER), first_name="Ilya"))
    sent = await master.send("/start")
    [commands] = [m for m in sent if isinstance(m, SetMyCommands)]
    assert commands.scope == BotCommandScopeChat(chat_id=int(MASTER))
    assert [c.command for c in commands.commands][:3] == ["start", "today", "tomorrow"]


async def test_at_start_every_staff_chat_gets_its_roles_commands(shop: Core) -> None:
    session = RecordingSession()
    bot: Bot = create_bot(TOKEN, session=session)
    await set_staff_commands(bot, await staff_command_lists(shop.db, shop.deps))
    lists = {
        m.scope.chat_id: [c.command for c in m.commands]
        for m in session.sent(SetMyCommands)
        if isinstance(m.scope, BotCommandScopeChat)
    }
    assert set(lists) == {int(OWNER), int(MASTER)}
    assert "invite" in lists[int(OWNER)] and "invite" not in lists[int(MASTER)]
