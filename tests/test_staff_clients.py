"""Staff look clients up: /client by phone or name, the client card with a note and the
history, /segments with their lists; a master sees only their own clients, a client none,
and every forged button changes nothing. Driven like a person, in Telegram and the terminal;
the pure rules (loyalty, VIP, segment lines) first."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from aiogram import Bot
from aiogram.methods import SetMyCommands

from bot.adapters.console import ConsoleChat
from bot.adapters.telegram import build_dispatcher, create_bot
from bot.composition import Core
from domain import vocabulary as press
from domain.loyalty import Status, status_of, vip_ranking
from domain.retention import Segment, segment_dates, segment_of
from domain.text import folded
from handlers.conversation import CONSOLE_STAFF
from storage.stats import refresh_client_stats
from storage.tables import ChurnReason, Client, Feedback, Outbox
from testing.chat import ChatClient, Clock
from testing.telegram_fakes import TOKEN, RecordingSession, TelegramPerson, person
from tests.helpers import (
    MASTER,
    OWNER,
    add_client,
    add_visit,
    clients,
    register,
    staff_chat,
    utc_visit,
)

# --- the rules ----------------------------------------------------------------------------


def test_loyalty_status_follows_the_completed_visits() -> None:
    assert [status_of(n) for n in (0, 1, 2, 4, 5, 40)] == [
        None,
        Status.new,
        Status.returning,
        Status.returning,
        Status.regular,
        Status.regular,
    ]


def test_vip_is_the_top_fifth_by_spend_rounded_up() -> None:
    spend = {n: Decimal(100 * n) for n in range(1, 12)}  # 11 clients: the top 3
    assert vip_ranking(spend) == [11, 10, 9]
    # A tie at the boundary goes to the lower id; nobody who spent nothing is VIP.
    assert vip_ranking({7: Decimal(500), 3: Decimal(500), 9: Decimal(100), 1: Decimal(0)}) == [3]
    assert vip_ranking({1: Decimal(0), 2: Decimal(0)}) == []


@pytest.mark.parametrize("warm_days", [120, 60])
def test_segment_dates_draw_the_lines_of_segment_of(warm_days: int) -> None:
    today = date(2026, 11, 23)
    for back in range(-2, 400):
        last = today - timedelta(days=back)
        segment = segment_of(last, today, warm_days=warm_days)
        inside = []
        for candidate in (Segment.hot, Segment.warm, Segment.sleeping):
            first, before = segment_dates(candidate, today, warm_days=warm_days)
            if (first is None or last >= first) and (before is None or last < before):
                inside.append(candidate)
        assert inside == [segment], (last, inside, segment)


def test_a_search_ignores_case_and_reads_yo_as_ye() -> None:
    assert folded("Пётр") == folded("ПЕТР") == "петр"


# --- the card -----------------------------------------------------------------------------


async def _refresh(core: Core) -> None:
    async with core.db.transaction() as session:
        await refresh_client_stats(
            session=session,
            tz=core.config.tz,
            return_days={s.id: s.return_interval_days for s in core.deps.catalog.services.values()},
        )


async def _anna(core: Core) -> int:
    """A regular of Artem's who came to Ilya once and complained, is booked for Friday,
    once said the price was why she stayed away, and got a reminder."""
    anna = await add_client(
        core,
        name="Анна Петрова",
        phone="+79990000002",
        telegram_id=5002,
        whatsapp_id="79990000002",
        whatsapp_unreachable_at=utc_visit(2026, 8, 1, 12),
        consent_at=utc_visit(2025, 3, 12, 12),
        marketing_opt_in_at=utc_visit(2025, 3, 12, 12),
        preference_note="short sides",
        staff_notes="2026-10-01, Артём: likes coffee",
        preferred_time_of_day="evening",
        favourite_master_id=core.deps.catalog.master_by_key("artem").id,  # type: ignore[union-attr]
        birthday=date(1990, 5, 17),
    )
    assert anna.id is not None
    for day in (1, 8, 15, 22, 29):
        await add_visit(
            core,
            client_id=anna.id,
            master="artem",
            service="haircut",
            start=utc_visit(2026, 10, day, 18),
        )
    with_ilya = await add_visit(
        core,
        client_id=anna.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 11, 18, 30),
    )
    await add_visit(
        core,
        client_id=anna.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 27, 15),
        status="booked",
    )
    await add_visit(
        core,
        client_id=anna.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 9, 1, 15),
        status="no_show",
    )
    cancelled = await add_visit(
        core,
        client_id=anna.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 8, 20, 15),
        status="cancelled",
    )
    async with core.db.transaction() as session:
        shop_cancelled = await session.get(type(cancelled), cancelled.id)
        assert shop_cancelled is not None
        shop_cancelled.cancel_reason = "staff"
        session.add(shop_cancelled)
        session.add(
            Feedback(
                visit_id=with_ilya.id or 0,
                rating=2,
                comment="waited 20 minutes",
                status="open",
                created_at=utc_visit(2026, 11, 11, 22),
            )
        )
        session.add(
            ChurnReason(client_id=anna.id, answer="price", created_at=utc_visit(2026, 6, 3, 12))
        )
        sent = utc_visit(2026, 11, 26, 15) - timedelta(days=16)
        session.add(
            Outbox(
                kind="reminder",
                client_id=anna.id,
                due_at=sent,
                sent_at=sent,
                status="sent",
                dedupe_key="reminder:test",
                created_at=sent,
            )
        )
    await _refresh(core)
    return anna.id


ANNA_CARD = [
    "Анна Петрова",
    "Phone: +7 999 000-00-02",
    "Chats: Telegram, WhatsApp (blocked or gone)",
    "Birthday: May 17 1990",
    "Segment: hot, last visit 12 days ago",
    "Loyalty: regular (5 visits or more), VIP",
    "Visits: 6 · average check ₽1,866.67 · spent ₽11,200",
    "Cancelled: 1 (1 by the shop) · no-shows: 1",
    "Last visit: Nov 11, 2026, Fade with Ilya",
    "Booked: on Friday, November 27, 15:00, Fade with Ilya",
    "Favourite master: Artem (their choice)",
    "Usually with Artem: 5 of 6 visits",
    "Preferred time: Evening",
    "Usually comes on Thursday around 18:00",
    "Note for the master: “short sides”",
    "Staff notes:",
    "   2026-10-01, Артём: likes coffee",
    "Ratings: 1, average 2, 1 of them 3 or lower",
    "   ★★ Nov 11, 2026, Ilya “waited 20 minutes” · open",
    "Why they stopped coming: “Too expensive” (Jun 3, 2026)",
    "Personal data: agreed on Mar 12, 2025",
    "Offers: on since Mar 12, 2025",
    "Last messages from the bot:",
    "   Nov 10, 2026 15:00 — reminder · sent",
]


async def test_the_owner_finds_a_client_by_phone_typed_any_way(shop: Core, clock: Clock) -> None:
    await _anna(shop)
    owner = staff_chat(shop, clock, OWNER)
    for typed in ("/client 8 (999) 000-00-02", "/client +7 999 000 00 02", "/client 79990000002"):
        [card] = await owner.send(typed)
        assert card.text.splitlines() == ANNA_CARD
    assert owner.labels == [
        "Book for them",
        "Add a note",
        "History",
        "Erase their data",
        "Staff menu",
    ]


async def test_a_part_of_the_name_in_any_case_finds_the_client(shop: Core, clock: Clock) -> None:
    await _anna(shop)
    await add_client(shop, name="Пётр", phone="+79990000001")
    owner = staff_chat(shop, clock, OWNER)
    [card] = await owner.send("/client петров")
    assert card.text.splitlines()[0] == "Анна Петрова"
    [card] = await owner.send("/client ПЕТР")  # Пётр and Петрова
    assert card.text == "2 clients match “ПЕТР”:"
    assert owner.labels == [
        "Анна Петрова · +79990000002 · Nov 11, 2026",
        "Пётр · +79990000001",
        "Staff menu",
    ]
    await owner.click("Пётр")
    assert owner.last.text.splitlines()[:2] == ["Пётр", "Phone: +7 999 000-00-01"]


async def test_many_matches_are_listed_ten_and_typing_more_narrows_them(
    shop: Core, clock: Clock
) -> None:
    for n in range(12):
        await add_client(shop, name=f"Иван {chr(ord('А') + n)}.", phone=f"+7999111{n:04d}")
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/client")
    assert owner.last.text.startswith("Whom are you looking for?")
    [found] = await owner.send("иван")
    assert found.text == (
        "12 clients match “иван”; here are 10, the most recent visit first. "
        "Type more of the name or of the phone number to narrow it down."
    )
    assert len(owner.labels) == 11  # ten clients and the staff menu
    [card] = await owner.send("Иван Г")
    assert card.text.splitlines()[:2] == ["Иван Г.", "Phone: +7 999 111-00-03"]
    [none] = await owner.send("Мария")
    assert none.text == (
        "No client matches “Мария”.\nTry a phone number or another part of the name."
    )
    [by_digits] = await owner.send("0011")
    assert by_digits.text.splitlines()[0] == "Иван Л."  # +79991110011


async def test_a_master_opens_only_clients_who_came_to_them(shop: Core, clock: Clock) -> None:
    anna = await _anna(shop)  # she came to Ilya once
    artems = await add_client(shop, name="Олег Артёмов", phone="+79990000005")
    assert artems.id is not None
    await add_visit(
        shop,
        client_id=artems.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 2, 12),
    )
    master = staff_chat(shop, clock, MASTER)
    [refused] = await master.send("/client +79990000005")
    assert refused.text == (
        "This client has had no visits with you, so their card is for the owner and administrators."
    )
    [none] = await master.send("/client Олег")
    assert none.text.startswith("None of your clients matches “Олег”.")
    [forged] = await master.press(press.staff_client(artems.id))
    assert forged.text.startswith("This client has had no visits with you")
    [forged] = await master.press(press.staff_client_history(artems.id, 0))
    assert forged.text.startswith("This client has had no visits with you")
    [card] = await master.send("/client Анна")
    assert card.text.splitlines()[0] == "Анна Петрова"
    [history] = await master.click("History")
    assert history.text.splitlines() == [
        "Анна Петрова: your visits with them, 1–2 of 2, the newest first:",
        "Nov 27, 2026 15:00 — Fade, Ilya, ₽2,200 · booked",
        "Nov 11, 2026 18:30 — Fade, Ilya, ₽2,200 · came",
    ]
    assert anna


async def test_the_history_is_paged_newest_first(shop: Core, clock: Clock) -> None:
    client = await add_client(shop, name="Борис", phone="+79990000006")
    assert client.id is not None
    for week in range(12):
        start = utc_visit(2026, 11, 16, 12) - timedelta(weeks=week)
        await add_visit(shop, client_id=client.id, master="artem", service="haircut", start=start)
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/client Борис")
    [first] = await owner.click("History")
    lines = first.text.splitlines()
    assert lines[0] == "Борис: visits 1–10 of 12, the newest first:"
    assert lines[1] == "Nov 16, 2026 12:00 — Men's haircut, Artem, ₽1,800 · came"
    assert owner.labels == ["Older »", "« Back to the card"]
    [second] = await owner.click("Older »")
    assert second.text.splitlines() == [
        "Борис: visits 11–12 of 12, the newest first:",
        "Sep 7, 2026 12:00 — Men's haircut, Artem, ₽1,800 · came",
        "Aug 31, 2026 12:00 — Men's haircut, Artem, ₽1,800 · came",
    ]
    assert owner.labels == ["« Newer", "« Back to the card"]
    await owner.press(press.staff_client_history(client.id, 999))  # past the end: the last page
    assert owner.last.text.startswith("Борис: visits 11–12 of 12")
    [card] = await owner.click("« Back to the card")
    assert card.text.startswith("Борис\n")


async def _staff_notes(core: Core, client_id: int) -> str:
    async with core.db.reading() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        return client.staff_notes


async def test_a_note_is_added_with_the_date_and_the_name(shop: Core, clock: Clock) -> None:
    anna = await _anna(shop)
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/client Анна")
    await owner.click("Add a note")
    assert owner.last.text.startswith("Type the note about Анна Петрова (up to 500 characters).")
    [refused] = await owner.send("x" * 501)
    assert refused.text.startswith("That is 501 characters; the limit is 500. Please shorten it.")
    assert await _staff_notes(shop, anna) == "2026-10-01, Артём: likes coffee"
    [empty] = await owner.send("   ")
    assert empty.text.startswith("Please type the note.")
    replies = await owner.send("Allergic to the\nlemon tonic")
    assert replies[0].text == "Note added."
    assert await _staff_notes(shop, anna) == (
        "2026-10-01, Артём: likes coffee\n2026-11-23, Артём: Allergic to the lemon tonic"
    )
    lines = replies[1].text.splitlines()
    start = lines.index("Staff notes:")
    assert lines[start + 1 : start + 3] == [
        "   2026-10-01, Артём: likes coffee",
        "   2026-11-23, Артём: Allergic to the lemon tonic",
    ]
    [card] = await owner.send("Анна")  # typing at the card looks the client up again
    assert card.text.startswith("Анна Петрова\n")


async def test_a_master_cannot_note_on_another_masters_client(shop: Core, clock: Clock) -> None:
    other = await add_client(shop, name="Олег", phone="+79990000005")
    assert other.id is not None
    await add_visit(
        shop,
        client_id=other.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 2, 12),
    )
    master = staff_chat(shop, clock, MASTER)
    [refused] = await master.press(press.staff_client_note(other.id))
    assert refused.text.startswith("This client has had no visits with you")
    await master.send("a note")
    assert await _staff_notes(shop, other.id) == ""


async def test_clients_cannot_use_the_client_card(shop: Core, clock: Clock) -> None:
    anna = await _anna(shop)
    client = ChatClient(shop.conversations, clock, external_id="1001", language="en")
    await register(client)
    [menu] = await client.send("/client +79990000002")
    assert menu.text == "Ivan, what would you like to do?"
    [menu] = await client.send("/segments")
    assert menu.text == "Ivan, what would you like to do?"
    for payload in (
        press.staff_client(anna),
        press.staff_client_history(anna, 0),
        press.staff_client_note(anna),
        press.staff_book_for(anna),
        press.staff_group("vip", 0),
        press.staff_open("client"),
        press.staff_open("segments"),
    ):
        replies = await client.press(payload)
        assert all("Анна" not in reply.text for reply in replies)
    await client.send("x")
    assert await _staff_notes(shop, anna) == "2026-10-01, Артём: likes coffee"


async def test_forged_or_garbled_staff_buttons_are_out_of_date(shop: Core, clock: Clock) -> None:
    owner = staff_chat(shop, clock, OWNER)
    for payload in ("1:sc:x", "1:sg:gold:0", "1:sg:hot:99999999", "1:sh:1", "1:sc:123456"):
        [reply] = await owner.press(payload)
        assert "out of date" in reply.text or reply.text == "This client is no longer in the base."


# --- segments -----------------------------------------------------------------------------


async def _base(core: Core) -> dict[str, int]:
    """Two hot, one warm, one sleeping, one prospect; Вера spent the most this year."""
    ids = {}
    seeds = {
        "Вера": [
            utc_visit(2026, 11, 20, 12),
            utc_visit(2026, 10, 20, 12),
            utc_visit(2026, 9, 1, 12),
        ],
        "Глеб": [utc_visit(2026, 10, 24, 12)],  # 30 days before the 23rd: still hot
        "Дина": [utc_visit(2026, 10, 23, 12)],  # 31 days: warm
        "Егор": [utc_visit(2026, 7, 25, 12)],  # 121 days: sleeping
        "Жанна": [],
    }
    for n, (name, starts) in enumerate(seeds.items()):
        client = await add_client(core, name=name, phone=f"+7999222{n:04d}")
        assert client.id is not None
        ids[name] = client.id
        for start in starts:
            await add_visit(
                core, client_id=client.id, master="artem", service="haircut", start=start
            )
    await _refresh(core)
    return ids


async def test_segments_count_and_list_the_clients(shop: Core, clock: Clock) -> None:
    ids = await _base(shop)
    owner = staff_chat(shop, clock, OWNER)
    [counts] = await owner.send("/segments")
    assert counts.text.splitlines() == [
        "Clients by segment, today:",
        "Hot (the last visit up to 30 days ago): 2",
        "Warm (the last visit 31–120 days ago): 1",
        "Sleeping (the last visit over 120 days ago): 1",
        "Prospects (no visit yet): 1",
        "VIP (the top 20 % by spend over the last 365 days): 1",
    ]
    # The same lines as segment_of draws for each client.
    today = date(2026, 11, 23)
    found = {
        c.name: segment_of(
            c.last_visit_at.astimezone(shop.config.tz).date() if c.last_visit_at else None, today
        )
        for c in await clients(shop)
    }
    assert found == {
        "Вера": Segment.hot,
        "Глеб": Segment.hot,
        "Дина": Segment.warm,
        "Егор": Segment.sleeping,
        "Жанна": Segment.prospect,
    }
    [hot] = await owner.click("Hot · 2")
    assert hot.text.splitlines() == [
        "Hot (the last visit up to 30 days ago): 1–2 of 2",
        "Вера, +79992220000, last visit: Nov 20, 2026",
        "Глеб, +79992220001, last visit: Oct 24, 2026",
    ]
    [vip] = await owner.press(press.staff_group("vip"))
    assert vip.text.splitlines()[1] == "Вера, +79992220000, last visit: Nov 20, 2026"
    [card] = await owner.click("Вера")
    assert "Loyalty: returning (2–4 visits), VIP" in card.text.splitlines()
    await owner.press(press.staff_group("prospect"))
    assert owner.last.text.splitlines()[1] == "Жанна, +79992220004, last visit: no visit yet"
    assert ids


async def test_segments_are_for_the_owner_and_administrators(shop: Core, clock: Clock) -> None:
    await _base(shop)
    master = staff_chat(shop, clock, MASTER)
    [refused] = await master.send("/segments")
    assert refused.text == "Only the owner or an administrator can do this."
    [refused] = await master.press(press.staff_group("hot", 0))
    assert refused.text == "Only the owner or an administrator can do this."


async def test_long_segments_are_paged(shop: Core, clock: Clock) -> None:
    for n in range(23):
        client = await add_client(shop, name=f"Клиент {n:02d}", phone=f"+7999333{n:04d}")
        assert client.id is not None
        await add_visit(
            shop,
            client_id=client.id,
            master="artem",
            service="haircut",
            start=utc_visit(2026, 11, 20, 10) - timedelta(hours=n),
        )
    await _refresh(shop)
    owner = staff_chat(shop, clock, OWNER)
    await owner.send("/segments")
    await owner.click("Hot · 23")
    assert owner.last.text.splitlines()[0] == "Hot (the last visit up to 30 days ago): 1–10 of 23"
    await owner.click("Next »")
    await owner.click("Next »")
    assert owner.last.text.splitlines()[:2] == [
        "Hot (the last visit up to 30 days ago): 21–23 of 23",
        "Клиент 20, +79993330020, last visit: Nov 19, 2026",
    ]
    assert [label for label in owner.labels if "»" in label or "«" in label] == [
        "« Previous",
        "« Segments",
    ]
    await owner.click("« Segments")
    assert owner.last.text.startswith("Clients by segment, today:")


# --- other channels -----------------------------------------------------------------------


async def test_the_operator_opens_a_card_in_the_terminal(shop: Core, clock: Clock) -> None:
    await _anna(shop)
    out: list[str] = []
    console = ConsoleChat(
        shop.conversations,
        external_id=CONSOLE_STAFF + "artem",
        write=out.append,
        clock=lambda: clock.now,
    )
    await console.say("/client Анна")
    assert out[-1].splitlines()[:2] == ["Анна Петрова", "Phone: +7 999 000-00-02"]
    await console.say("3")  # the third button: History
    assert out[-1].startswith("Анна Петрова: visits 1–9 of 9, the newest first:")


async def test_telegram_lists_the_new_commands_by_role(shop: Core, clock: Clock) -> None:
    session = RecordingSession()
    bot: Bot = create_bot(TOKEN, session=session)
    dp = build_dispatcher(shop.conversations, clock=lambda: clock.now)
    owner = TelegramPerson(dp, bot, session, user=person(user_id=int(OWNER), first_name="Artem"))
    master = TelegramPerson(dp, bot, session, user=person(user_id=int(MASTER), first_name="Ilya"))
    [owners] = [m for m in await owner.send("/start") if isinstance(m, SetMyCommands)]
    [masters] = [m for m in await master.send("/start") if isinstance(m, SetMyCommands)]
    assert {"client", "segments", "broadcast"} <= {c.command for c in owners.commands}
    assert {c.command for c in masters.commands} & {"client", "segments", "broadcast"} == {"client"}


async def test_the_card_in_russian(shop: Core, clock: Clock) -> None:
    await _anna(shop)
    # The owner is also a client who chose Russian: staff texts follow their language.
    await add_client(shop, name="Артём", phone="+79990000099", telegram_id=int(OWNER), locale="ru")
    owner = staff_chat(shop, clock, OWNER)
    [card] = await owner.send("/client Анна")
    assert card.text.splitlines()[4:8] == [
        "Сегмент: горячий, последний визит 12 дней назад",
        "Статус лояльности: постоянный (5 визитов и больше), VIP",
        "Визиты: 6 · средний чек 1\xa0866,67\xa0₽ · потрачено всего 11\xa0200\xa0₽",
        "Отмены: 1 (салоном: 1) · неявки: 1",
    ]
    assert owner.labels == [
        "Записать клиента",
        "Добавить заметку",
        "История",
        "Удалить данные клиента",
        "Меню персонала",
    ]
