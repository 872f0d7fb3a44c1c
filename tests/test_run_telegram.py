"""`regulars run` against a fake Bot API server on 127.0.0.1: a new client registers and
books by tapping buttons, like a person would, and the visit lands in the database."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

import bot.app
from bot.adapters.telegram import serve_telegram
from bot.app import run, settled_heap
from bot.composition import Core
from bot.config import Settings
from storage.db import Database, create_engine, sqlite_url_for
from storage.tables import Client, ClientIdentity, Visit, VisitStatus
from testing.chat import Clock
from testing.fake_bot_api import serving
from testing.telegram_fakes import TOKEN, FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
CHAT = 4242
USER = {"id": CHAT, "is_bot": False, "first_name": "Anna", "language_code": "en"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeBotAPI, str]]:
    fake = FakeBotAPI()
    async with serving(fake) as url:
        yield fake, url


class Person:
    """Anna in a private chat with the bot, on the other side of the fake Bot API."""

    def __init__(self, api: FakeBotAPI) -> None:
        self.api = api
        self.message_ids = iter(range(1, 1000))

    @property
    def chat(self) -> dict[int, dict[str, Any]]:
        return self.api.chats.get(CHAT, {})

    def _said(self, text: str, after: int) -> bool:
        return any(
            text in params["text"]
            for name, params in self.api.calls[after:]
            if name in ("sendMessage", "editMessageText")
        )

    async def _expect(self, text: str, after: int) -> None:
        await self.api.wait_for(lambda: self._said(text, after))

    async def send(self, text: str, *, expect: str) -> None:
        before = len(self.api.calls)
        await self.api.queue(message=self._message(text=text))
        await self._expect(expect, before)

    async def share_contact(self, phone: str, *, expect: str) -> None:
        before = len(self.api.calls)
        contact = {"phone_number": phone, "first_name": "Anna", "user_id": CHAT}
        await self.api.queue(message=self._message(contact=contact))
        await self._expect(expect, before)

    def _message(self, **content: Any) -> dict[str, Any]:
        chat = {"id": CHAT, "type": "private", "first_name": "Anna"}
        return {
            "message_id": next(self.message_ids),
            "date": 1_790_000_000,
            "chat": chat,
            "from": USER,
            **content,
        }

    def buttons(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The newest message with inline buttons, and its buttons."""
        for message_id in sorted(self.chat, reverse=True):
            message = self.chat[message_id]
            keyboard = message.get("reply_markup", {}).get("inline_keyboard")
            if keyboard:
                return message, [button for row in keyboard for button in row]
        raise AssertionError("no message with buttons")

    async def tap(self, label: str | None = None, *, expect: str) -> str:
        """Tap the button whose label contains `label` (or the first one); its label."""
        message, buttons = self.buttons()
        found = [b for b in buttons if label is None or label in b["text"]]
        assert found, f"no button {label!r} in {[b['text'] for b in buttons]}"
        before = len(self.api.calls)
        query = {
            "id": f"q{len(self.api.calls)}",
            "from": USER,
            "chat_instance": "ci",
            "message": message,
            "data": found[0]["callback_data"],
        }
        await self.api.queue(callback_query=query)
        await self._expect(expect, before)
        return str(found[0]["text"])


async def book_a_visit(anna: Person) -> None:
    await anna.send("/start", expect="What is your name?")
    await anna.tap("Anna", expect="Your phone number, please")
    await anna.share_contact("79123456789", expect="To book you we need your consent")
    await anna.tap("I agree", expect="May we sometimes write to you")
    await anna.tap("Yes, please", expect="When is your birthday?")
    await anna.tap("Skip", expect="Anna, what would you like to do?")
    await anna.tap("Book a visit", expect="Choose a service:")
    await anna.tap("Men's haircut", expect="Choose a master:")
    await anna.tap("Any available master", expect="Choose a day:")
    # The first day with free time, whenever now is; a day with many asks the part first.
    await anna.tap(expect="time")
    if anna.buttons()[1][0]["text"] in ("Morning", "Afternoon", "Evening"):
        await anna.tap(expect="Which time suits you")
    await anna.tap(expect="Please check your booking:")
    await anna.tap("Confirm", expect="Done! You are booked.")


async def telegram_chat_in(database_url: str, client_id: int | None) -> str | None:
    db = Database(create_engine(database_url))
    try:
        async with db.reading() as session:
            query = select(ClientIdentity.external_id).where(
                ClientIdentity.client_id == client_id, ClientIdentity.channel == "telegram"
            )
            return (await session.exec(query)).first()
    finally:
        await db.dispose()


async def visits_in(database_url: str) -> list[tuple[Visit, Client]]:
    db = Database(create_engine(database_url))
    try:
        async with db.reading() as session:
            rows = await session.exec(select(Visit, Client).join(Client))
            return list(rows.all())
    finally:
        await db.dispose()


async def test_regulars_run_serves_telegram_until_stopped(
    api: tuple[FakeBotAPI, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, api_url = api
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    database_url = sqlite_url_for(str(tmp_path / "regulars.db"))
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        business_config=ROOT / "business.example.toml",
        telegram_bot_token=TOKEN,
        telegram_api_url=api_url,
        telegram_webhook_url=None,
        web_host="127.0.0.1",
        web_port=(port := free_port()),
    )
    monkeypatch.setattr(bot.app, "CHECKPOINT_EVERY", 0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(run(settings, stop=stop))
    try:
        await fake.wait_for(lambda: bool(fake.calls_of("setMyCommands")) or running.done())
        assert not running.done(), running.exception()
        await book_a_visit(Person(fake))
        assert gc.get_freeze_count() > 0  # what the built bot holds is out of the collector
        # The visit reaches the database file itself: the background WAL checkpoint (a
        # few pages of log; SQLite's own would wait for 1,000, or the last connection).
        for _ in range(200):
            if visits_in_the_file(tmp_path / "regulars.db") == 1:
                break
            await asyncio.sleep(0.02)
        assert visits_in_the_file(tmp_path / "regulars.db") == 1
        async with httpx.AsyncClient() as http:  # polling mode serves the metrics too
            metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'regulars_updates_total{channel="telegram"}' in metrics
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=5)  # polling stops promptly
    assert gc.get_freeze_count() == 0  # handed back once the bot stopped

    [(visit, client)] = await visits_in(database_url)
    assert visit.status == VisitStatus.booked and visit.source == "telegram"
    assert (client.name, client.phone) == ("Anna", "+79123456789")
    assert await telegram_chat_in(database_url, client.id) == str(CHAT)
    assert fake.calls_of("deleteWebhook") == [{"drop_pending_updates": "false"}]
    menu = fake.calls_of("setMyCommands")
    assert {params.get("language_code") for params in menu} == {"ru", "en", None}
    answered = len(fake.calls_of("answerCallbackQuery"))
    assert answered in (10, 11)  # every tap (one more when the day asks the part of the day)
    # The token is in every Bot API path: only the fake server's access log may show it.
    leaks = [r for r in caplog.records if TOKEN in r.getMessage() and r.name != "aiohttp.access"]
    assert not leaks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_webhook_is_set_and_served_when_configured(
    api: tuple[FakeBotAPI, str], core: Core, clock: Clock
) -> None:
    fake, api_url = api
    port = free_port()
    settings = Settings(
        _env_file=None,
        telegram_bot_token=SecretStr(TOKEN),
        telegram_api_url=api_url,
        telegram_webhook_url="https://bot.example",
        telegram_webhook_secret=SecretStr("s3cret"),
        web_host="127.0.0.1",
        web_port=port,
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_telegram(core=core, settings=settings, stop=stop, clock=lambda: clock.now)
    )
    try:
        await fake.wait_for(lambda: bool(fake.calls_of("setWebhook")) or serving.done())
        assert not serving.done(), serving.exception()
        [webhook] = fake.calls_of("setWebhook")
        assert webhook["url"] == "https://bot.example/webhook/telegram"
        assert webhook["secret_token"] == "s3cret"
        assert "getUpdates" not in {name for name, _ in fake.calls}

        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 1_790_000_000,
                "chat": {"id": CHAT, "type": "private"},
                "from": USER,
                "text": "/start",
            },
        }
        url = f"http://127.0.0.1:{port}/webhook/telegram"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=update) as response:
                assert response.status == 401
            headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 200
        await fake.wait_for(
            lambda: any(p["text"] == "What is your name?" for p in fake.calls_of("sendMessage"))
        )
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=5)


class _Node:
    me: _Node | None = None


def visits_in_the_file(path: Path) -> int:
    """The visits the SQLite file itself holds, its WAL left unread."""
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as raw:
        return int(raw.execute("SELECT count(*) FROM visit").fetchone()[0])


def test_the_heap_is_settled_after_its_garbage_is_collected() -> None:
    """Garbage of the start-up is collected, not frozen for good; what lives is frozen
    while the block runs and handed back after it."""
    garbage, alive = _Node(), _Node()
    garbage.me, alive.me = garbage, alive  # cycles: only the collector frees them
    gone = weakref.ref(garbage)
    del garbage
    gc.disable()  # no collection but settled_heap's own
    try:
        with settled_heap():
            assert gone() is None
            assert not any(each is alive for each in gc.get_objects())  # frozen
        assert any(each is alive for each in gc.get_objects())
    finally:
        gc.enable()
    assert gc.get_freeze_count() == 0
