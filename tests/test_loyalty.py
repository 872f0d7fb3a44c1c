"""Loyalty and referrals: the ledger (earned on completion, spent on a booking, given back
on a cancellation, reversed for a no-show after all, lapsing after the validity), "My
bonus", the discounts on the booking summary (reward, points, win-back with the holdout
left alone, birthday), VIP, and a friend's link with the ways it must not pay."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.composition import Core, build_core_on
from bot.config import ConfigError, load_business_config
from domain import vocabulary as press
from domain.business import BusinessConfig
from domain.loyalty import (
    Discount,
    Entry,
    Status,
    best_discount,
    replay,
    status_of,
    vip_ids,
)
from scheduler.messages import Messages
from scheduler.planner import Planner
from storage.db import Database
from storage.loyalty import vip_client_ids
from storage.tables import Client, LoyaltyEntry, Outbox, Visit
from testing.chat import ChatClient, Clock
from tests.helpers import (
    MASTER,
    OWNER,
    add_client,
    add_visit,
    chat_id,
    clients,
    register,
    staff_chat,
    to_summary,
    utc_visit,
    visits,
)

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
YEAR = timedelta(days=365)


# --- the rules, pure ---------------------------------------------------------------------


def _earn(id: int, delta: int, at: datetime, visit: int | None = None) -> Entry:
    return Entry(id, "earn", delta, at, at + YEAR, visit)


def test_the_ledger_earns_spends_gives_back_reverses_and_lapses() -> None:
    day = timedelta(days=1)
    entries = [
        _earn(1, 1, T0, visit=1),
        _earn(2, 1, T0 + 10 * day, visit=2),
        Entry(3, "spend", -1, T0 + 20 * day, None, 3),  # a reward booked on visit 3…
        Entry(4, "reverse", 1, T0 + 21 * day, None, 3),  # …cancelled: it comes back
        Entry(5, "reverse", -1, T0 + 30 * day, None, 2),  # visit 2 was a no-show after all
    ]
    now = replay(entries, T0 + 40 * day)
    assert (now.balance, now.pending_expiry) == (1, 0)
    assert now.next_lapse == (T0 + YEAR, 1)
    # A year on, visit 1's stamp has lapsed; once written down the sum is the balance.
    later = replay(entries, T0 + YEAR + day)
    assert (later.balance, later.pending_expiry) == (0, 1)
    written = [*entries, Entry(6, "expire", -1, T0 + YEAR + day)]
    settled = replay(written, T0 + YEAR + 2 * day)
    assert (settled.balance, settled.pending_expiry) == (0, 0)
    assert sum(e.delta for e in written) == settled.balance


def test_a_reversed_earning_already_spent_is_a_debt_the_next_visit_pays() -> None:
    entries = [
        *[_earn(i, 1, T0 + timedelta(days=i), visit=i) for i in range(1, 7)],
        Entry(7, "spend", -6, T0 + timedelta(days=8), None, 7),
        Entry(8, "reverse", -1, T0 + timedelta(days=9), None, 6),
    ]
    assert replay(entries, T0 + timedelta(days=10)).balance == -1
    paid = [*entries, _earn(9, 1, T0 + timedelta(days=11), visit=9)]
    assert replay(paid, T0 + timedelta(days=12)).balance == 0


def test_a_spend_given_back_keeps_its_own_lapse_time() -> None:
    entries = [
        _earn(1, 6, T0, visit=1),
        Entry(2, "spend", -6, T0 + timedelta(days=360), None, 2),
        Entry(3, "reverse", 6, T0 + timedelta(days=370), None, 2),  # after the stamps lapsed
    ]
    ledger = replay(entries, T0 + timedelta(days=371))
    assert (ledger.balance, ledger.pending_expiry) == (0, 6)


def test_status_and_vip() -> None:
    assert [status_of(n) for n in (0, 1, 2, 4, 5, 40)] == [
        None,
        Status.new,
        Status.returning,
        Status.returning,
        Status.regular,
        Status.regular,
    ]
    assert status_of(1, vip=True) is Status.vip
    revenues = {i: Decimal(100 * i) for i in range(1, 12)}  # 11 clients: the top 3
    assert vip_ids(revenues) == {9, 10, 11}
    # 12 clients, the top 3: Nos. 9 and 12 tie at the edge, the one who joined first is in.
    assert vip_ids({**revenues, 12: Decimal(900)}) == {9, 10, 11}
    assert vip_ids({1: Decimal(0)}) == set()


def test_one_discount_per_visit_the_largest_an_offer_on_a_tie() -> None:
    winback = Discount("winback:1", Decimal(360), 20)
    birthday = Discount("birthday:2", Decimal(270), 15)
    points = Discount("points", Decimal(360), None, 360)
    assert best_discount([birthday, winback, points]) == winback
    assert best_discount([]) is None


# --- configuration -----------------------------------------------------------------------


def test_wrong_loyalty_settings_are_reported_with_their_path(tmp_path: Path) -> None:
    text = (ROOT / "business.example.toml").read_text(encoding="utf-8")
    text = text.replace('kind = "stamps"', 'kind = "cards"')
    text = text.replace('reward_services = ["haircut"]', 'reward_services = ["perm"]')
    text = text.replace("stamps_per_reward = 6", "stamps_per_reward = 1")
    text += '\n[whatsapp]\nnumber = "12"\n'
    path = tmp_path / "business.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_business_config(path)
    problems = "\n".join(error.value.problems)
    assert "loyalty.kind: Input should be 'stamps' or 'points'" in problems
    assert "loyalty.stamps_per_reward: Input should be greater than or equal to 2" in problems
    assert "loyalty.reward_services: unknown service 'perm'" in problems
    assert "whatsapp.number: must be a phone number in international form" in problems


async def test_without_a_programme_there_is_no_bonus_and_no_invitation(
    db: Database, config: BusinessConfig, clock: Clock
) -> None:
    core = await build_core_on(db=db, config=config.model_copy(update={"loyalty": None}))
    chat = ChatClient(core.conversations, clock, language="en")
    await register(chat)
    assert "My bonus" not in chat.labels and "Invite a friend" not in chat.labels
    await chat.press(press.tap(press.Act.MY_BONUS))  # an old button
    assert chat.last.text.startswith("That button is out of date.")


# --- earning and "My bonus" --------------------------------------------------------------


async def _client(shop: Core, clock: Clock, external_id: str = "1001") -> ChatClient:
    """A client registered in English from Telegram chat `external_id` (1001: Ivan,
    +7 912 345-10-01)."""
    chat = ChatClient(shop.conversations, clock, external_id=external_id, language="en")
    await register(chat, phone=f"+7 912 345-{external_id[:2]}-{external_id[2:]}")
    return chat


async def _id_of(shop: Core, chat: ChatClient) -> int:
    for client in await clients(shop):
        if await chat_id(shop, client.id) == chat.external_id:
            assert client.id is not None
            return client.id
    raise AssertionError(f"no client for chat {chat.external_id}")


async def _ledger(shop: Core, client_id: int | None = None) -> list[tuple[Any, ...]]:
    async with shop.db.reading() as session:
        query = select(LoyaltyEntry).order_by(col(LoyaltyEntry.id))
        if client_id is not None:
            query = query.where(LoyaltyEntry.client_id == client_id)
        rows = (await session.exec(query)).all()
    return [(r.client_id, r.kind, r.delta, r.reason, r.visit_id) for r in rows]


async def _earned(shop: Core, client_id: int, stamps: int, at: datetime) -> None:
    """Stamps earned before the test begins (the way completed visits leave them)."""
    async with shop.db.transaction() as session:
        session.add(
            LoyaltyEntry(
                client_id=client_id,
                delta=stamps,
                reason="visit",
                created_at=at,
                expires_at=at + YEAR,
            )
        )


async def _big_spenders(shop: Core, clock: Clock, n: int = 5) -> None:
    """Clients who spent more this year: with them the top fifth by revenue (VIP) is full."""
    for k in range(n):
        client = await add_client(shop, name=f"Big {k}", phone=f"+7999111000{k}")
        assert client.id is not None
        await add_visit(
            shop,
            client_id=client.id,
            master="artem",
            service="combo",
            start=clock.now - timedelta(days=20),
        )


async def test_a_completed_visit_earns_a_stamp_and_my_bonus_shows_the_progress(
    shop: Core, clock: Clock
) -> None:
    await _big_spenders(shop, clock)
    chat = await _client(shop, clock)
    client_id = await _id_of(shop, chat)
    visit = await add_visit(
        shop,
        client_id=client_id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 23, 8),
        status="booked",
    )
    owner = staff_chat(shop, clock, OWNER)
    await owner.press(press.staff_visit(visit.id))
    await owner.click("Came, ₽1,800")
    assert await _ledger(shop) == [(client_id, "earn", 1, "visit", visit.id)]

    await chat.send("/start")
    await chat.click("My bonus")
    assert chat.last.text.splitlines() == [
        "Your status: new client.",
        "1 visit with us so far.",
        "1 more visit and you are a returning client.",
        "",
        "Stamp card: 1 of 6 stamps.",
        "5 visits to a free haircut.",
        "1 stamp lapses on November 23, 2027.",
        "Every visit adds a stamp; stamps are kept for 365 days.",
    ]
    assert chat.labels == ["Book a visit", "Invite a friend", "« Main menu"]


async def test_nothing_for_a_cancelled_or_missed_visit_and_a_late_no_show_is_reversed(
    shop: Core, clock: Clock
) -> None:
    chat = await _client(shop, clock)
    client_id = await _id_of(shop, chat)

    async def booked(hour: int) -> Visit:
        return await add_visit(
            shop,
            client_id=client_id,
            master="artem",
            service="haircut",
            start=utc_visit(2026, 11, 23, hour),
            status="booked",
        )

    cancelled, missed, unmarked = await booked(10), await booked(12), await booked(14)
    clock.advance(hours=8)  # 17:00
    owner = staff_chat(shop, clock, OWNER)
    await owner.press(press.staff_cancel_sure(cancelled.id))
    await owner.press(press.staff_no_show(missed.id))
    assert await _ledger(shop) == []

    # Nobody answered for the 14:00 visit: at 23:00 it counts as done, and earns.
    planner = Planner(config=shop.config, catalog=shop.deps.catalog)
    async with shop.db.transaction() as session:
        await planner.plan(session, utc_visit(2026, 11, 23, 23))
    assert await _ledger(shop) == [(client_id, "earn", 1, "visit", unmarked.id)]

    # The next morning the master says the client never came: the stamp goes.
    clock.now = utc_visit(2026, 11, 24, 9)
    master = staff_chat(shop, clock, OWNER)
    await master.press(press.staff_no_show(unmarked.id))
    assert await _ledger(shop) == [
        (client_id, "earn", 1, "visit", unmarked.id),
        (client_id, "reverse", -1, "visit", unmarked.id),
    ]
    await chat.send("/start")
    await chat.click("My bonus")
    assert "Stamp card: 0 of 6 stamps." in chat.last.text.splitlines()
    assert "No visits yet: your status starts with your first visit." in chat.last.text


async def test_stamps_lapse_after_the_validity_and_the_lapse_is_written_once(
    shop: Core, clock: Clock
) -> None:
    chat = await _client(shop, clock)
    client_id = await _id_of(shop, chat)
    await _earned(shop, client_id, 3, clock.now - timedelta(days=400))
    await _earned(shop, client_id, 1, clock.now - timedelta(days=10))
    for _ in range(2):
        await chat.send("/start")
        await chat.click("My bonus")
        assert "Stamp card: 1 of 6 stamps." in chat.last.text.splitlines()
        assert "1 stamp lapses on November 13, 2027." in chat.last.text.splitlines()
    ledger = await _ledger(shop, client_id)
    assert ledger[-1] == (client_id, "expire", -3, "expiry", None)
    assert [row[1] for row in ledger].count("expire") == 1
    assert sum(row[2] for row in ledger) == 1  # the balance is the ledger's sum


# --- discounts at booking ----------------------------------------------------------------


def _price_line(chat: ChatClient) -> str:
    return next(line for line in chat.last.text.splitlines() if line.startswith("Price:"))


async def test_a_reward_comes_off_the_booking_and_back_when_it_is_cancelled(
    shop: Core, clock: Clock
) -> None:
    chat = await _client(shop, clock)
    client_id = await _id_of(shop, chat)
    await _earned(shop, client_id, 6, clock.now - timedelta(days=30))
    await chat.send("/start")
    await chat.click("My bonus")
    assert "You have 1 reward ready: a free haircut." in chat.last.text
    assert "It comes off your next booking of: Men's haircut." in chat.last.text

    await to_summary(chat, service="Men's haircut", master="Artem", day="Tue, Nov 24", time="15:00")
    assert _price_line(chat) == "Price: ₽0 instead of ₽1,800 (your reward: a free haircut)"
    await chat.click("Confirm")
    assert "Price: ₽0 instead of ₽1,800 (your reward: a free haircut)" in chat.last.text
    [visit] = await visits(shop)
    assert (visit.price, visit.discount, visit.discount_source) == (
        Decimal(0),
        Decimal(1800),
        "reward",
    )
    assert (await _ledger(shop, client_id))[-1] == (client_id, "spend", -6, "reward", visit.id)

    # The reward is taken: another booking pays in full, a fade was never covered.
    await to_summary(chat, service="Men's haircut", master="Artem", day="Wed, Nov 25", time="15:00")
    assert _price_line(chat) == "Price: ₽1,800"

    # Cancelled: the stamps come back, and the reward is ready again.
    await chat.send("/start")
    await chat.click("My visits")
    await chat.click("Tue, Nov 24")
    await chat.click("Cancel visit")
    await chat.click("Yes, cancel it")
    assert (await _ledger(shop, client_id))[-1] == (client_id, "reverse", 6, "reward", visit.id)
    await to_summary(chat, service="Fade", master="Artem", day="Wed, Nov 25", time="15:00")
    assert _price_line(chat) == "Price: ₽2,200"
    await chat.send("/start")
    await chat.click("My bonus")
    assert "You have 1 reward ready: a free haircut." in chat.last.text


async def _points_shop(db: Database, config: BusinessConfig) -> Core:
    assert config.loyalty is not None
    loyalty = config.loyalty.model_copy(update={"kind": "points", "referral_reward": 300})
    masters = [
        m.model_copy(update={"telegram_id": {"artem": int(OWNER), "ilya": int(MASTER)}.get(m.key)})
        for m in config.masters
    ]
    business = config.business.model_copy(update={"default_locale": "en"})
    return await build_core_on(
        db=db,
        config=config.model_copy(
            update={"loyalty": loyalty, "masters": masters, "business": business}
        ),
    )


async def test_points_are_a_percent_of_what_was_paid_and_pay_part_of_the_next_visit(
    db: Database, config: BusinessConfig, clock: Clock
) -> None:
    shop = await _points_shop(db, config)
    chat = await _client(shop, clock)
    client_id = await _id_of(shop, chat)
    visit = await add_visit(
        shop,
        client_id=client_id,
        master="artem",
        service="fade",
        start=utc_visit(2026, 11, 23, 8),
        status="booked",
    )
    owner = staff_chat(shop, clock, OWNER)
    await owner.press(press.staff_other_amount(visit.id))
    await owner.send("2 000")
    assert await _ledger(shop) == [(client_id, "earn", 100, "visit", visit.id)]  # 5 %

    await chat.send("/start")
    await chat.click("My bonus")
    lines = chat.last.text.splitlines()
    assert lines[lines.index("") + 1 :] == [
        "You have 100 bonus points.",
        "1 point = ₽1; points pay up to 50% of a visit and come off your next booking.",
        "100 points lapse on November 23, 2027.",
        "Every visit adds 5% of its price in points; points are kept for 365 days.",
    ]
    await to_summary(chat, service="Men's haircut", master="Artem", day="Tue, Nov 24", time="15:00")
    assert _price_line(chat) == "Price: ₽1,700 instead of ₽1,800 (100 bonus points used)"
    await chat.click("Confirm")
    booked = (await visits(shop))[-1]
    assert (booked.price, booked.discount, booked.discount_source) == (
        Decimal(1700),
        Decimal(100),
        "points",
    )
    assert (await _ledger(shop))[-1] == (client_id, "spend", -100, "points", booked.id)


async def _sent(shop: Core, client_id: int, kind: str, at: datetime, **fields: Any) -> Outbox:
    async with shop.db.transaction() as session:
        row = Outbox(
            kind=kind,
            client_id=client_id,
            due_at=at,
            sent_at=at if fields.get("status", "sent") == "sent" else None,
            status=fields.pop("status", "sent"),
            dedupe_key=f"{kind}:{client_id}:{at.isoformat()}",
            created_at=at,
            **fields,
        )
        session.add(row)
        await session.flush()
        return row


async def test_the_winback_discount_once_to_whom_it_was_sent_and_never_to_the_holdout(
    shop: Core, clock: Clock
) -> None:
    chat = await _client(shop, clock)
    client_id = await _id_of(shop, chat)
    winback = await _sent(
        shop, client_id, "winback", clock.now - timedelta(days=2), payload={"discount_percent": 20}
    )
    await to_summary(chat, service="Men's haircut", master="Artem", day="Tue, Nov 24", time="15:00")
    assert _price_line(chat) == "Price: ₽1,440 instead of ₽1,800 (20% off: welcome back)"
    await chat.click("Confirm")
    [visit] = await visits(shop)
    assert (visit.price, visit.discount, visit.discount_source) == (
        Decimal(1440),
        Decimal(360),
        f"winback:{winback.id}",
    )
    assert await _ledger(shop) == []  # an offer, not the ledger's
    await to_summary(chat, service="Men's haircut", master="Artem", day="Wed, Nov 25", time="15:00")
    assert _price_line(chat) == "Price: ₽1,800"  # once

    # The master sees what the client pays.
    clock.now = utc_visit(2026, 11, 24, 15, 5)
    owner = staff_chat(shop, clock, OWNER)
    await owner.press(press.staff_visit(visit.id))
    assert "Price: ₽1,440 (after a discount of ₽360)" in owner.last.text
    assert "Came, ₽1,440" in owner.labels

    # A held-out client: the win-back was recorded, not sent, and gives nothing.
    held = await _client(shop, clock, external_id="1002")
    held_id = await _id_of(shop, held)
    async with shop.db.transaction() as session:
        client = await session.get(Client, held_id)
        assert client is not None
        client.holdout = True
        session.add(client)
    await _sent(shop, held_id, "winback", clock.now - timedelta(days=2), status="held_out")
    await to_summary(held, service="Men's haircut", master="Artem", day="Wed, Nov 25", time="16:00")
    assert _price_line(held) == "Price: ₽1,800"
    await _sent(shop, held_id, "winback", clock.now - timedelta(days=1))  # sent by mistake
    await to_summary(held, service="Men's haircut", master="Artem", day="Wed, Nov 25", time="16:00")
    assert _price_line(held) == "Price: ₽1,800"


async def test_the_birthday_gift_covers_a_visit_within_its_days(shop: Core, clock: Clock) -> None:
    chat = await _client(shop, clock)
    client_id = await _id_of(shop, chat)
    async with shop.db.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        client.birthday = date(1990, 11, 21)
        session.add(client)
    await _sent(shop, client_id, "birthday", utc_visit(2026, 11, 21, 10))
    await to_summary(chat, service="Men's haircut", master="Artem", day="Sat, Dec 5", time="15:00")
    assert _price_line(chat) == "Price: ₽1,800"  # 14 days after the birthday
    await to_summary(chat, service="Men's haircut", master="Artem", day="Fri, Nov 27", time="15:00")
    assert _price_line(chat) == "Price: ₽1,530 instead of ₽1,800 (15% off: your birthday gift)"


# --- VIP ---------------------------------------------------------------------------------


async def test_vip_is_the_top_fifth_by_revenue_over_a_year(shop: Core, clock: Clock) -> None:
    ids = []
    for n in range(10):
        client = await add_client(shop, name=f"C{n}", phone=f"+7999000000{n}")
        assert client.id is not None
        ids.append(client.id)
        for k in range(n + 1):  # client n: n + 1 haircuts this year
            await add_visit(
                shop,
                client_id=client.id,
                master="artem",
                service="haircut",
                start=clock.now - timedelta(days=10 + 7 * k),
            )
    # Old visits do not count, and a deleted client is nobody's VIP.
    await add_visit(
        shop, client_id=ids[0], master="artem", service="combo", start=clock.now - 2 * YEAR
    )
    async with shop.db.transaction() as session:
        top = await session.get(Client, ids[9])
        assert top is not None
        top.deleted_at = clock.now
        session.add(top)
    async with shop.db.reading() as session:
        vip = await vip_client_ids(session=session, now=clock.now)
    assert vip == {ids[8], ids[7]}  # 9 clients left: the top 2


# --- referrals ---------------------------------------------------------------------------


@pytest.fixture
async def links_shop(db: Database, config: BusinessConfig) -> Core:
    """The `shop` of tests/conftest.py with a WhatsApp number and a known bot username."""
    masters = [
        m.model_copy(update={"telegram_id": {"artem": int(OWNER)}.get(m.key)})
        for m in config.masters
    ]
    business = config.business.model_copy(update={"default_locale": "en"})
    whatsapp = config.whatsapp.model_copy(update={"number": "79160001234"})
    core = await build_core_on(
        db=db,
        config=config.model_copy(
            update={"masters": masters, "business": business, "whatsapp": whatsapp}
        ),
    )
    core.deps.links.telegram_username = "britva_bot"
    return core


async def _code(chat: ChatClient) -> str:
    await chat.send("/start")
    await chat.click("Invite a friend")
    found = re.search(r"start[= ]r_([a-z0-9]+)", chat.last.text)
    assert found, chat.last.text
    return found.group(1)


async def _register_through(chat: ChatClient, link: str, phone: str) -> None:
    """A new person opens a friend's link and registers, as in tests.helpers.register."""
    replies = await chat.send(link)
    assert replies[-1].text == "What is your name?"
    await chat.click(chat.display_name or "")
    await chat.send(phone)
    await chat.click("I agree")
    await chat.click("Yes, please")
    await chat.click("Skip")
    assert chat.history[-2].text.endswith("You are registered.")


async def test_a_friend_who_comes_through_the_link_earns_both_a_reward_once(
    links_shop: Core, clock: Clock
) -> None:
    shop = links_shop
    ivan = await _client(shop, clock)
    ivan_id = await _id_of(shop, ivan)
    code = await _code(ivan)
    assert ivan.last.text.splitlines() == [
        "Invite a friend to Барбершоп «Бритва»: when they come for their first visit, you both "
        "get 2 stamps.",
        "",
        "Send them this link to the bot in Telegram:",
        f"https://t.me/britva_bot?start=r_{code}",
        "",
        "Or this one for WhatsApp:",
        f"https://wa.me/79160001234?text=%2Fstart%20r_{code}",
        "",
        "Your friend registers through it, and we will know you sent them.",
    ]
    assert await _code(ivan) == code  # one personal code

    oleg = ChatClient(
        shop.conversations, clock, external_id="1002", display_name="Oleg", language="en"
    )
    await oleg.send(f"/start r_{code}")
    await oleg.send("/start")  # typed again before the name: the link still counts
    await _register_through(oleg, "/start", "+7 912 000-00-02")
    oleg_id = await _id_of(shop, oleg)
    async with shop.db.reading() as session:
        friend = await session.get(Client, oleg_id)
    assert friend is not None and friend.referred_by_id == ivan_id

    first = await add_visit(
        shop,
        client_id=oleg_id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 23, 8),
        status="booked",
    )
    owner = staff_chat(shop, clock, OWNER)
    await owner.press(press.staff_came(first.id))
    assert await _ledger(shop) == [
        (oleg_id, "earn", 1, "visit", first.id),
        (oleg_id, "earn", 2, "referral", first.id),
        (ivan_id, "earn", 2, "referral", first.id),
    ]
    async with shop.db.transaction() as session:
        [told] = (await session.exec(select(Outbox).where(Outbox.kind == "referral_reward"))).all()
        assert (told.client_id, told.payload["friend_id"]) == (ivan_id, oleg_id)
        messages = Messages(
            config=shop.config, catalog=shop.deps.catalog, translators=shop.deps.translators
        )
        composed = await messages.compose(session, told, clock.now)
    assert composed.reply.text == (
        "Ivan, your friend Oleg has come for their first visit. Thank you for recommending us! "
        "You both get 2 stamps."
    )
    assert [b.label for b in composed.reply.flat_buttons] == ["My bonus"]

    second = await add_visit(
        shop,
        client_id=oleg_id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 23, 8, 30),
        status="booked",
    )
    await owner.press(press.staff_came(second.id))
    assert [r for r in await _ledger(shop) if r[3] == "referral"] == [
        (oleg_id, "earn", 2, "referral", first.id),
        (ivan_id, "earn", 2, "referral", first.id),
    ]


async def test_links_that_must_not_pay_change_nothing_and_say_nothing_wrong(
    links_shop: Core, clock: Clock
) -> None:
    shop = links_shop
    ivan = await _client(shop, clock)  # +7 912 345-10-01, typed (unproven)
    ivan_id = await _id_of(shop, ivan)
    code = await _code(ivan)
    petr = await _client(shop, clock, external_id="1003")
    petr_code = await _code(petr)

    # Self-referral and an already registered client: the menu, as for any /start.
    for chat, link in ((ivan, code), (petr, code), (ivan, petr_code)):
        [reply] = await chat.send(f"/start r_{link}")
        assert reply.text.endswith("what would you like to do?")

    # An unknown or unreadable code: a normal registration.
    for external_id, link in (("1004", "r_zzzzzzzz"), ("1005", "r_!!")):
        stranger = ChatClient(shop.conversations, clock, external_id=external_id, language="en")
        await _register_through(stranger, f"/start {link}", f"+7 912 000-00-{external_id[2:]}")

    # Ivan's own number from a second account, proven by Telegram's contact button.
    twin = ChatClient(shop.conversations, clock, external_id="1006", language="en")
    await twin.send(f"/start r_{code}")
    await twin.click("Ivan")
    await twin.share_contact("+79123451001")
    await twin.click("I agree")
    await twin.click("Yes, please")
    await twin.click("Skip")
    assert twin.history[-2].text == "Thank you, Ivan! You are registered."
    assert await _id_of(shop, twin) != ivan_id  # a new client, but not a new friend

    # A deleted client's number and chat coming back through a link.
    gone = await add_client(shop, name="Gone", phone="+79120000099", telegram_id="1007")
    async with shop.db.transaction() as session:
        deleted = await session.get(Client, gone.id)
        assert deleted is not None
        deleted.deleted_at = clock.now - timedelta(days=1)
        session.add(deleted)
    back = ChatClient(shop.conversations, clock, external_id="1007", language="en")
    await _register_through(back, f"/start r_{code}", "+7 912 000-00-98")

    everyone = await clients(shop)
    assert len(everyone) == 7
    assert [c.referred_by_id for c in everyone] == [None] * 7
    assert await _ledger(shop) == []


async def test_in_the_terminal_the_invitation_is_a_code_to_type(shop: Core, clock: Clock) -> None:
    chat = await _client(shop, clock)
    code = await _code(chat)
    assert f"Your friend writes this to the bot: /start r_{code}" in chat.last.text
    assert "https://" not in chat.last.text
    assert chat.labels == ["« My bonus", "« Main menu"]


async def test_a_friend_from_the_whatsapp_link_is_linked_too(
    links_shop: Core, clock: Clock
) -> None:
    shop = links_shop
    ivan = await _client(shop, clock)
    code = await _code(ivan)
    # wa.me/<number>?text=/start r_<code>: the friend sends the typed-in text.
    friend = ChatClient(
        shop.conversations,
        clock,
        external_id="79160000003",
        channel="whatsapp",
        display_name="Olga",
        language="en",
        phone="+79160000003",
    )
    await friend.send(f"/start r_{code}")
    await friend.click("Olga")  # WhatsApp proves the number: straight to the consent
    await friend.click("I agree")
    await friend.click("No, thanks")
    await friend.click("Skip")
    assert friend.history[-2].text == "Thank you, Olga! You are registered."
    by_phone = {c.phone: c for c in await clients(shop)}
    assert by_phone["+79160000003"].referred_by_id == await _id_of(shop, ivan)
