"""The `digest` message: planned for the owner on Monday at 09:00, once a week, and
delivered over the Bot API as a photo of the chart with the text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.adapters.telegram import create_bot
from bot.adapters.telegram_delivery import TelegramDelivery
from bot.composition import Core, build_core_on
from domain.business import BusinessConfig
from storage.db import Database
from storage.tables import Outbox
from testing.fake_bot_api import TOKEN, FakeBotAPI, serving
from tests.helpers import add_client, add_visit, utc_visit

OWNER_CHAT = 9001
MONDAY_9 = utc_visit(2026, 11, 23, 9)  # Monday 23 November, 09:00 in Moscow
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def shop(db: Database, config: BusinessConfig) -> Core:
    """The demo shop whose owner, Артём, has a chat with the bot."""
    masters = [
        master.model_copy(update={"telegram_id": OWNER_CHAT}) if master.key == "artem" else master
        for master in config.masters
    ]
    core = await build_core_on(db=db, config=config.model_copy(update={"masters": masters}))
    client = await add_client(core, name="Anna", phone="+79160000001")
    assert client.id is not None
    await add_visit(
        core,
        client_id=client.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, 20, 12),
    )
    return core


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeBotAPI, str]]:
    server = FakeBotAPI()
    async with serving(server) as url:
        yield server, url


async def _digests(core: Core) -> list[Outbox]:
    async with core.db.reading() as session:
        query = select(Outbox).where(Outbox.kind == "digest")
        return list((await session.exec(query)).all())


async def test_the_owner_gets_the_chart_as_a_photo_with_the_digest_as_its_caption(
    shop: Core, api: tuple[FakeBotAPI, str]
) -> None:
    server, url = api
    bot = create_bot(TOKEN, api_url=url)
    now = MONDAY_9
    try:
        engine = shop.engine(
            channels={"telegram": TelegramDelivery(bot)}, clock=lambda: now, paces=None
        )
        await engine.plan()
        await engine.send()
    finally:
        await bot.session.close()

    [photo] = server.delivered
    assert photo.chat_id == OWNER_CHAT
    assert photo.photo is not None and photo.photo.startswith(PNG)
    # In the owner's language (the shop's default, Russian), the week before Monday.
    assert photo.text.startswith("Неделя 16 ноября – 22 ноября\n")
    assert "Визиты: 1, выручка 1\xa0800\xa0₽, средний чек 1\xa0800\xa0₽" in photo.text
    # Anna's first visit on the 20th: no complaint, nobody due, no returns to lose.
    assert "На этой неделе ничего не требует вашего внимания." in photo.text


async def test_the_digest_is_planned_once_a_week_at_nine_on_monday(shop: Core) -> None:
    planner = shop.engine(channels={}, clock=lambda: MONDAY_9).planner
    async with shop.db.transaction() as session:
        before = await planner.plan(session, MONDAY_9 - timedelta(minutes=1))
        first = await planner.plan(session, MONDAY_9)
        again = await planner.plan(session, MONDAY_9 + timedelta(hours=5))
        tuesday = await planner.plan(session, MONDAY_9 + timedelta(days=1))
    assert [r.planned["digest"] for r in (before, first, again, tuesday)] == [0, 1, 0, 0]
    [row] = await _digests(shop)
    assert (row.payload, row.due_at) == ({"as_of": "2026-11-23"}, MONDAY_9)


async def test_a_long_digest_goes_as_the_photo_and_then_the_text(
    api: tuple[FakeBotAPI, str],
) -> None:
    from domain.replies import Image, Reply
    from scheduler.delivery import Recipient

    server, url = api
    bot = create_bot(TOKEN, api_url=url)
    text = "\n".join(f"Line {n}: " + "x" * 40 for n in range(30))  # 1 469 characters
    try:
        reply = Reply(text, image=Image(PNG + b"chart", "digest.png"))
        await TelegramDelivery(bot).deliver(Recipient("telegram", str(OWNER_CHAT), "ru"), reply)
    finally:
        await bot.session.close()

    photo, message = server.delivered
    assert (photo.photo, photo.text) == (PNG + b"chart", "")
    assert (message.photo, message.text) == (None, text)
