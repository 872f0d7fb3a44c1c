"""The shell under attack (issue 8, the robustness half): forged buttons, client text that
fakes lines for staff, replays and repeats, a stop in the middle of work, a second copy on
one database, secrets in logs and start-up problems. Each test failed on the code before."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, select

from bot import i18n
from bot.adapters.telegram import build_dispatcher, create_bot
from bot.adapters.whatsapp import SIGNATURE_HEADER, add_whatsapp_webhook, whatsapp_channel
from bot.adapters.whatsapp_outbound import create_whatsapp
from bot.app import run
from bot.cli import main
from bot.composition import Core, build_core, build_core_on
from bot.config import ConfigError, Settings, load_business_config
from domain.business import BusinessConfig
from domain.text import has_letter, one_line, without_format_characters
from handlers.conversation import Conversations
from handlers.events import Command, Inbound
from scheduler.messages import Messages
from storage.db import Database, create_engine, sqlite_url_for
from storage.tables import (
    Client,
    Conversation,
    Outbox,
    ProcessedMessage,
    Service,
    Staff,
    Visit,
    VisitStatus,
)
from testing.chat import ChatClient, Clock
from testing.fake_bot_api import serving
from testing.telegram_fakes import TOKEN as TELEGRAM_TOKEN
from testing.telegram_fakes import FakeBotAPI, RecordingSession, message_update, person, texts
from testing.whatsapp_fakes import (
    API_URL,
    APP_SECRET,
    PHONE_ID,
    VERIFY_TOKEN,
    FakeGraphAPI,
    WhatsAppPerson,
    from_person,
    message_of,
    sign,
    signed,
    stamp,
    undeliverable,
)
from testing.whatsapp_fakes import TOKEN as WA_TOKEN
from tests.helpers import add_client, add_visit, register, utc_visit, visits

ROOT = Path(__file__).resolve().parent.parent
HUGE = "9" * 40
MASTER_CHAT = "7002"

# --- forged buttons --------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        f"1:dy:r{HUGE}:20261124",
        f"1:ms:r{HUGE}",
        f"1:tm:r{HUGE}:29385120",
        f"1:ok:n1.{HUGE}:29385120",
        f"1:vi:{HUGE}",
        f"1:fb:{HUGE}:5",
        f"1:fa:{HUGE}",
        f"1:tm:n1.1:{HUGE}",
        "1:vi:-1",
        "1:vi:١٢",  # Arabic-Indic digits: int() reads them, a payload never has them
    ],
)
async def test_a_forged_button_with_a_huge_number_is_out_of_date(
    chat: ChatClient, core: Core, payload: str, caplog: pytest.LogCaptureFixture
) -> None:
    chat.language = "en"
    await register(chat)
    caplog.set_level(logging.INFO)
    [reply] = await chat.press(payload)
    assert reply.text.startswith("That button is out of date.")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await visits(core) == []


# --- staff marks only visits that began ------------------------------------------------


async def _with_master_chat(db: Database, config: BusinessConfig) -> Core:
    masters = [
        m.model_copy(update={"telegram_id": int(MASTER_CHAT)}) if m.key == "ilya" else m
        for m in config.masters
    ]
    return await build_core_on(db=db, config=config.model_copy(update={"masters": masters}))


@pytest.mark.parametrize("button", ["mc", "ma", "mx"])
async def test_staff_cannot_mark_a_visit_that_has_not_started(
    db: Database, config: BusinessConfig, clock: Clock, button: str
) -> None:
    core = await _with_master_chat(db, config)
    client = await add_client(core, name="Пётр", phone="+79990000001", consent_at=clock.now)
    assert client.id is not None
    tomorrow = await add_visit(
        core,
        client_id=client.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 24, 12),
        status=VisitStatus.booked,
    )
    master = ChatClient(core.conversations, clock, external_id=MASTER_CHAT, language="en")

    [reply] = await master.press(f"1:{button}:{tomorrow.id}")

    assert reply.text == "Визит ещё не начался. Отметить его можно после начала."
    [stored] = await visits(core)
    assert stored.status == VisitStatus.booked and stored.paid_amount is None
    clock.advance(days=1, hours=3, minutes=1)  # 12:01 in Moscow on the 24th: it has begun
    await master.press(f"1:mc:{tomorrow.id}")
    [stored] = await visits(core)
    assert stored.status == VisitStatus.completed


# --- client text shown to staff --------------------------------------------------------


async def test_a_note_with_line_breaks_cannot_fake_lines_of_the_day_plan(
    db: Database, config: BusinessConfig, clock: Clock
) -> None:
    core = await _with_master_chat(db, config)
    forged = "tea, please\n12:00 — Фальшивый клиент, Фейд\r\n\x1b[2J\u2028done"
    client = await add_client(
        core,
        name="Пётр\nИванов",
        phone="+79990000001",
        consent_at=clock.now,
        preference_note=forged,
    )
    assert client.id is not None
    visit = await add_visit(
        core,
        client_id=client.id,
        master="ilya",
        service="fade",
        start=utc_visit(2026, 11, 24, 15),
        status=VisitStatus.booked,
    )
    async with core.db.transaction() as session:
        stored = await session.get(type(visit), visit.id)
        assert stored is not None
        stored.comment = "first\n\n11:00 — Ещё один, Фейд"
        session.add(stored)
        ilya = (await session.exec(select(Staff).where(Staff.key == "ilya"))).one()
        row = Outbox(
            due_at=clock.now,
            dedupe_key="plan:test",
            kind="staff_day_plan",
            staff_id=ilya.id,
            payload={"day": "2026-11-24"},
            created_at=clock.now,
        )
        session.add(row)
        await session.flush()
        messages = Messages(
            config=core.config, catalog=core.deps.catalog, translators=core.deps.translators
        )
        plan = (await messages.compose(session, row, clock.now)).reply

    _, visit_line, *notes = plan.text.split("\n")
    assert visit_line.startswith("15:00–16:15 — Пётр Иванов, ")
    assert notes == [
        "   «tea, please 12:00 — Фальшивый клиент, Фейд [2J done»",
        "   «first 11:00 — Ещё один, Фейд»",
    ]


def test_client_text_rules() -> None:
    assert without_format_characters("\u200bИ\u200dван\u202e") == "Иван"
    assert one_line(" a\nb\r\n\tc\x00d\u2028e\u200b ") == "a b c d e"
    assert has_letter("Ёж") and has_letter("Li 2")
    assert not has_letter("\u200b\u200c") and not has_letter("123 .") and not has_letter("🙂")


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("\u200b\u200b\u200b", "Please type your name."),  # nothing is left of it
        ("12345", "A name needs at least one letter."),
        ("🙂🙂", "A name needs at least one letter."),
    ],
)
async def test_a_name_needs_a_letter(chat: ChatClient, core: Core, name: str, refusal: str) -> None:
    chat.language = "en"
    await chat.send("/start")
    await chat.send(name)
    assert chat.last.text.startswith(refusal)
    await chat.send("\u200bАн\u200bна\u2066")
    assert chat.last.text.startswith("Your phone number, please")
    await chat.send("+7 912 345-67-89")
    await chat.click("I agree")
    await chat.click("No, thanks")
    await chat.click("Skip")
    async with core.db.reading() as session:
        [client] = (await session.exec(select(Client))).all()
    assert client.name == "Анна"


async def test_an_invisible_messenger_name_is_not_taken(chat: ChatClient) -> None:
    chat.language, chat.display_name = "en", "\u200b\u2060"
    await chat.send("/start")
    await chat.press("1:rn")
    assert chat.last.text.startswith("A name needs at least one letter.")


async def test_format_characters_are_stripped_from_notes(chat: ChatClient, core: Core) -> None:
    chat.language = "en"
    await register(chat)
    await chat.click("Preferences")
    await chat.click("Note")
    await chat.send("\u200b\u200b")
    assert chat.last.text.startswith("Please type the note.")
    await chat.send("no\u200b talking\u202e")
    async with core.db.reading() as session:
        [client] = (await session.exec(select(Client))).all()
    assert client.preference_note == "no talking"


# --- configuration bounds --------------------------------------------------------------


def test_absurd_config_numbers_are_reported_with_their_paths(tmp_path: Path) -> None:
    example = (ROOT / "business.example.toml").read_text(encoding="utf-8")
    broken = (
        example.replace("horizon_days = 14", "horizon_days = 100000")
        .replace("slot_step = 15", "slot_step = 1")
        .replace("min_lead = 60", "min_lead = 99999999")
        .replace("duration = 60", "duration = 100000", 1)
        .replace("price = 1800", "price = 1e30", 1)
    )
    path = tmp_path / "business.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_business_config(path)
    assert error.value.problems == [
        "booking.slot_step: must be at least 5 minutes",
        "booking.min_lead: Input should be less than or equal to 43200",
        "booking.horizon_days: must be at most 90 days",
        "services[0].duration: must be at most 720 minutes",
        "services[0].price: must be at most 10000000",
    ]


# --- WhatsApp: a failed turn is retried, a replay is ignored ---------------------------


@pytest.fixture
def graph() -> FakeGraphAPI:
    return FakeGraphAPI()


@pytest.fixture
async def maria(core: Core, clock: Clock, graph: FakeGraphAPI) -> AsyncIterator[WhatsAppPerson]:
    http = graph.http()
    app = web.Application()
    wa = create_whatsapp(phone_id=PHONE_ID, token=WA_TOKEN, api_url=API_URL, http=http)
    add_whatsapp_webhook(
        app,
        core=core,
        client=wa,
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
        clock=lambda: clock.now,
    )
    async with TestClient(TestServer(app)) as client:
        yield WhatsAppPerson(client, whatsapp_channel(app), graph, name="Maria")
    await http.aclose()


def fail_next_turn(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next turn hits "database is locked" after it began, as a busy SQLite would."""
    conversations = core.conversations
    real = conversations._load

    async def locked(session: Any, inbound: Inbound) -> Any:
        monkeypatch.setattr(conversations, "_load", real)
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(conversations, "_load", locked)


async def test_whatsapp_retry_of_a_failed_turn_is_answered(
    maria: WhatsAppPerson, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = maria.payload("text")
    fail_next_turn(core, monkeypatch)
    [sorry] = await maria.post(payload)
    assert sorry.text.startswith("Извините, у нас что-то пошло не так")

    answer = await maria.post(payload)  # Meta delivers the same message again

    assert [sent.text for sent in answer][-1] == "Как вас зовут?"
    assert await maria.post(payload) == []  # and once handled, only once


@pytest.mark.parametrize(
    "age", [timedelta(hours=24, seconds=1), timedelta(days=30), -timedelta(minutes=6)]
)
async def test_a_whatsapp_message_dated_out_of_range_is_acknowledged_not_answered(
    maria: WhatsAppPerson, core: Core, clock: Clock, age: timedelta
) -> None:
    payload = maria.payload("text")
    stamp(payload, clock.now - age)

    assert await maria.post(payload, dated=False) == []  # post() asserts the 200

    async with core.db.reading() as session:
        assert (await session.exec(select(Conversation))).all() == []


async def test_a_whatsapp_message_a_few_minutes_off_is_answered(
    maria: WhatsAppPerson, clock: Clock
) -> None:
    late, early = maria.payload("text"), maria.payload("text")
    stamp(late, clock.now - timedelta(hours=23, minutes=59))
    stamp(early, clock.now + timedelta(minutes=4))
    assert await maria.post(late, dated=False)
    assert await maria.post(early, dated=False)


# --- Telegram: an update id is handled once --------------------------------------------


async def test_a_repeated_telegram_update_is_answered_once(core: Core, clock: Clock) -> None:
    session = RecordingSession()
    bot = create_bot(TELEGRAM_TOKEN, session=session)
    dp = build_dispatcher(core.conversations, clock=lambda: clock.now)
    update = message_update(person(), 1, text="/start")

    await dp.feed_update(bot, update)
    first = texts([method for _, method in session.requests])
    await dp.feed_update(bot, update)  # polling restarted before confirming it

    assert texts([method for _, method in session.requests]) == first
    assert first[-1] == "What is your name?"
    async with core.db.reading() as reading:
        [seen] = (await reading.exec(select(ProcessedMessage))).all()
    assert (seen.channel, seen.message_id, seen.received_at) == (
        "telegram",
        str(update.update_id),
        clock.now,
    )


async def test_handled_ids_are_forgotten_after_a_week(core: Core, clock: Clock) -> None:
    chat = ChatClient(core.conversations, clock)
    old = Inbound("telegram", "1001", Command("start"), clock.now, message_id="1")
    assert await core.conversations.handle(old)
    clock.advance(days=7, hours=1)
    await chat.send("/start")  # no id, nothing recorded: the old one stays
    newer = Inbound("telegram", "1001", Command("start"), clock.now, message_id="2")
    await Conversations(db=core.db, deps=core.deps).handle(newer)  # a restarted process
    async with core.db.reading() as session:
        kept = (await session.exec(select(ProcessedMessage))).all()
    assert [row.message_id for row in kept] == ["2"]


# --- a real `regulars run`: stop, logs, one process per SQLite file ----------------------

ILYA, MARINA = 7002, 7003
EXAMPLE = (ROOT / "business.example.toml").read_text(encoding="utf-8")
WITH_MASTER_CHATS = EXAMPLE.replace(
    'name = "Илья"\n', f'name = "Илья"\ntelegram_id = {ILYA}\n'
).replace('name = "Марина"\n', f'name = "Марина"\ntelegram_id = {MARINA}\n')


class SlowBotAPI(FakeBotAPI):
    """The fake Bot API, slow to accept a message: a reply is "in flight" for `delay`
    seconds. A message whose sender went away meanwhile is lost, as with Telegram."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.in_flight = 0
        self.lost = 0

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["method"] != "sendMessage":
            return await super()._handle(request)
        async with self._changed:
            self.in_flight += 1
            self._changed.notify_all()
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        if request.transport is None or request.transport.is_closing():
            self.lost += 1
            return web.Response(status=499)
        return await super()._handle(request)

    def sent_to(self, chat: int) -> list[str]:
        return [p["text"] for p in self.calls_of("sendMessage") if int(p["chat_id"]) == chat]


@pytest.fixture
async def slow_api() -> AsyncIterator[tuple[SlowBotAPI, str]]:
    fake = SlowBotAPI(delay=2.0)
    async with serving(fake) as url:
        yield fake, url


BOT_SETTINGS = ("TELEGRAM_", "WHATSAPP_", "DATABASE_URL", "BUSINESS_CONFIG", "WEB_", "LOG_")


def run_env(**settings: str) -> dict[str, str]:
    """The environment of a `regulars run` child: ours without any bot settings, plus
    `settings` (names upper-cased)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(BOT_SETTINGS)}
    # Each run serves /healthz and /metrics: on a port of its own, not the default 8080.
    env["WEB_PORT"] = str(free_port())
    env.update({name.upper(): value for name, value in settings.items()})
    return env


async def start_run(
    tmp_path: Path, db: Path, config: Path, env: dict[str, str], log: Path
) -> asyncio.subprocess.Process:
    with log.open("wb") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--db",
            str(db),
            "--config",
            str(config),
            cwd=tmp_path,  # no .env of the developer's
            env=env,
            stdout=output,
            stderr=output,
        )


async def prepared_database(tmp_path: Path, config_text: str) -> tuple[Path, Path]:
    config = tmp_path / "business.toml"
    config.write_text(config_text, encoding="utf-8")
    db = tmp_path / "regulars.db"
    core = await build_core(database_url=sqlite_url_for(str(db)), config_path=config)
    await core.close()
    return db, config


async def day_plans_due(db: Path, now: datetime) -> None:
    """A day plan for Илья and one for Марина, due a minute ago (staff messages have no
    quiet hours, so they go out whatever the time of day)."""
    database = Database(create_engine(sqlite_url_for(str(db))))
    start = now + timedelta(minutes=5)  # a visit each, so the plans are not empty
    day = start.astimezone(ZoneInfo("Europe/Moscow")).date().isoformat()
    try:
        async with database.transaction() as session:
            staff = (await session.exec(select(Staff).where(col(Staff.telegram_id) > 0))).all()
            service = (await session.exec(select(Service))).first()
            assert service is not None and service.id is not None
            for n, member in enumerate(staff, start=1):
                client = Client(name=f"Клиент {n}", phone=f"+7916555000{n}", created_at=now)
                session.add(client)
                await session.flush()
                session.add(
                    Visit(
                        client_id=client.id or 0,
                        master_id=member.id or 0,
                        service_id=service.id,
                        starts_at=start,
                        ends_at=start + timedelta(hours=1),
                        created_at=now,
                    )
                )
                session.add(
                    Outbox(
                        kind="staff_day_plan",
                        staff_id=member.id,
                        due_at=now - timedelta(minutes=1),
                        dedupe_key=f"staff_day_plan:{day}:staff:{member.id}",
                        payload={"day": day},
                        created_at=now,
                    )
                )
    finally:
        await database.dispose()


async def outbox_of(db: Path) -> list[Outbox]:
    database = Database(create_engine(sqlite_url_for(str(db))))
    try:
        async with database.reading() as session:
            return list((await session.exec(select(Outbox).order_by(col(Outbox.id)))).all())
    finally:
        await database.dispose()


def private_message(chat: int, text: str, message_id: int = 1) -> dict[str, Any]:
    user = {"id": chat, "is_bot": False, "first_name": f"Client{chat}", "language_code": "en"}
    return {
        "message_id": message_id,
        "date": 1_790_000_000,
        "chat": {"id": chat, "type": "private"},
        "from": user,
        "text": text,
    }


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_signal_lets_replies_and_sends_in_flight_finish(
    slow_api: tuple[SlowBotAPI, str], tmp_path: Path, stop_signal: signal.Signals
) -> None:
    fake, api_url = slow_api
    db, config = await prepared_database(tmp_path, WITH_MASTER_CHATS)
    await day_plans_due(db, datetime.now(UTC))
    env = run_env(telegram_bot_token=TELEGRAM_TOKEN, telegram_api_url=api_url)
    log = tmp_path / "run.log"
    process = await start_run(tmp_path, db, config, env, log)
    try:
        await fake.wait_for(lambda: bool(fake.calls_of("deleteWebhook")), seconds=60)
        await fake.queue(message=private_message(5001, "/start"))
        await fake.queue(message=private_message(5002, "/start"))
        # Both greetings and the first day plan are on their way; the second plan waits.
        await fake.wait_for(lambda: fake.in_flight >= 3, seconds=30)
        process.send_signal(stop_signal)
        code = await asyncio.wait_for(process.wait(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    output = log.read_text(encoding="utf-8", errors="replace")
    assert code == 0, output
    assert fake.lost == 0
    for chat in (5001, 5002):
        assert fake.sent_to(chat)[-1] == "What is your name?", output
    rows = await outbox_of(db)
    assert [row.status for row in rows].count("sent") >= 1
    assert not [row for row in rows if row.status == "sending"], output
    for row in rows:
        if row.status == "pending":  # put back untried: the next start sends it
            assert row.attempts == 0


async def test_a_second_run_on_the_same_sqlite_file_refuses_to_start(
    slow_api: tuple[SlowBotAPI, str], tmp_path: Path
) -> None:
    fake, api_url = slow_api
    db, config = await prepared_database(tmp_path, EXAMPLE)
    env = run_env(telegram_bot_token=TELEGRAM_TOKEN, telegram_api_url=api_url)
    first = await start_run(tmp_path, db, config, env, tmp_path / "first.log")
    try:
        await fake.wait_for(lambda: bool(fake.calls_of("deleteWebhook")), seconds=60)
        second = await start_run(tmp_path, db, config, env, tmp_path / "second.log")
        code = await asyncio.wait_for(second.wait(), timeout=60)
    finally:
        first.terminate()
        await asyncio.wait_for(first.wait(), timeout=30)

    [line] = (tmp_path / "second.log").read_text(encoding="utf-8").splitlines()
    assert code == 2
    assert line.startswith(f"regulars: another `regulars run` is using {db.resolve()}")
    assert "PostgreSQL" in line
    assert first.returncode == 0  # the first one was never disturbed


SECRETS = {
    "telegram token": TELEGRAM_TOKEN,
    "WhatsApp token": "EAAJB-secret-wa-token",
    "app secret": "app-secret-41678a4f",
    "verify token": "verify-me-9f3c2b",
}
PHONE_DIGITS = "9123456789"
NAME = "Зинаида Тайнова"
TYPED = "secret words of the client"


async def test_the_log_at_info_holds_no_phone_name_text_or_secret(
    slow_api: tuple[SlowBotAPI, str], tmp_path: Path
) -> None:
    fake, api_url = slow_api
    fake.delay = 0
    db, config = await prepared_database(tmp_path, EXAMPLE)
    port = free_port()
    env = run_env(
        telegram_bot_token=TELEGRAM_TOKEN,
        telegram_api_url=api_url,
        whatsapp_phone_id="123456789",
        whatsapp_token=SECRETS["WhatsApp token"],
        whatsapp_app_secret=SECRETS["app secret"],
        whatsapp_verify_token=SECRETS["verify token"],
        whatsapp_api_url="http://127.0.0.1:9/",  # refused: the reply fails, and is logged
        web_host="127.0.0.1",
        web_port=str(port),
        log_level="INFO",
    )
    log = tmp_path / "run.log"
    process = await start_run(tmp_path, db, config, env, log)
    try:
        await fake.wait_for(lambda: bool(fake.calls_of("deleteWebhook")), seconds=60)
        await register_on_telegram(fake)
        await whatsapp_visitor(port)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)

    output = log.read_text(encoding="utf-8", errors="replace")
    assert "GET /webhook/whatsapp" in output and "POST /webhook/whatsapp" in output
    for what, secret in {**SECRETS, "phone": PHONE_DIGITS, "name": NAME, "text": TYPED}.items():
        assert secret not in output, f"the {what} is in the log"
    assert "Тайнова" not in output and "79161234567" not in output


async def register_on_telegram(fake: FakeBotAPI) -> None:
    chat, said = 6001, len(fake.calls)

    async def answer(update: dict[str, Any], expect: str) -> None:
        nonlocal said
        await fake.queue(**update)
        start = said
        await fake.wait_for(
            lambda: any(expect in p.get("text", "") for _, p in fake.calls[start:]), seconds=30
        )
        said = len(fake.calls)

    await answer({"message": private_message(chat, "/start")}, "What is your name?")
    await answer({"message": private_message(chat, NAME, 2)}, "Your phone number, please")
    await answer({"message": private_message(chat, f"+7{PHONE_DIGITS}", 3)}, "consent")
    await answer({"message": private_message(chat, TYPED, 4)}, "")


async def whatsapp_visitor(port: int) -> None:
    """Meta's handshake (the verify token in the query) and a signed message."""
    base = f"http://127.0.0.1:{port}/webhook/whatsapp"
    async with aiohttp.ClientSession() as http:
        query = {
            "hub.mode": "subscribe",
            "hub.challenge": "1",
            "hub.verify_token": SECRETS["verify token"],
        }
        async with http.get(base, params=query) as handshake:
            assert handshake.status == 200
        payload = from_person("text", "79161234567", NAME)
        message_of(payload)["text"]["body"] = TYPED
        stamp(payload, datetime.now(UTC))
        body, headers = signed(payload)
        headers[SIGNATURE_HEADER] = sign(body, SECRETS["app secret"])
        async with http.post(base, data=body, headers=headers) as response:
            assert response.status == 200
        await asyncio.sleep(1.0)  # the turn runs after the answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_sql_error_does_not_show_the_values(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url_for(str(tmp_path / "x.db")))
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE person (phone TEXT UNIQUE)")
            insert = text("INSERT INTO person (phone) VALUES (:phone)")
            await connection.execute(insert, {"phone": "+79123456789"})
            with pytest.raises(IntegrityError) as error:
                await connection.execute(insert, {"phone": "+79123456789"})
    finally:
        await engine.dispose()
    assert "9123456789" not in str(error.value)


async def test_a_failed_whatsapp_apology_does_not_log_the_number(
    maria: WhatsAppPerson,
    graph: FakeGraphAPI,
    core: Core,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(inbound: Inbound) -> list[Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(core.conversations, "handle", broken)
    graph.script_to(maria.wa_id, undeliverable(), times=None)
    caplog.set_level(logging.DEBUG, logger="bot")  # pywa's own DEBUG is capped by the CLI
    await maria.send("hello")
    logged = [record.getMessage() for record in caplog.records]
    assert any("could not apologise" in line for line in logged)
    assert not [line for line in logged if maria.wa_id in line]


# --- start-up problems -----------------------------------------------------------------


def run_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, **settings: str) -> int:
    """`regulars run` in this process; every case here ends before Telegram is called."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in list(os.environ):
        if name.startswith(BOT_SETTINGS):
            monkeypatch.delenv(name)
    settings = {
        "telegram_bot_token": TELEGRAM_TOKEN,
        "telegram_api_url": "http://127.0.0.1:9",
        **settings,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name.upper(), value)
    # A run that wrongly starts would wait for Telegram forever: stopped as SIGTERM would.
    alarm = threading.Timer(20, os.kill, (os.getpid(), signal.SIGTERM))
    alarm.start()
    try:
        return main(["run", "--config", str(ROOT / "business.example.toml"), *args])
    finally:
        alarm.cancel()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nonsense", "regulars: DATABASE_URL is not a database URL"),
        (
            "nosuchdb://user:pw@host/x",
            "regulars: cannot use the database nosuchdb://user:***@host/x",
        ),
        ("sqlite+aiosqlite:////nonexistent/dir/x.db", "regulars: cannot use the database /"),
    ],
)
def test_a_bad_database_url_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
    says: str,
) -> None:
    code = run_main(tmp_path, monkeypatch, "--database-url", url)
    [line] = capsys.readouterr().err.splitlines()
    assert (code, line[: len(says)]) == (2, says)
    assert "pw" not in line


def test_a_read_only_database_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite3.connect(tmp_path / "ro.db").close()
    url = f"sqlite+aiosqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true"
    code = run_main(tmp_path, monkeypatch, "--database-url", url)
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and "readonly database" in line


def test_a_port_in_use_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = run_main(
            tmp_path,
            monkeypatch,
            "--db",
            str(tmp_path / "x.db"),
            web_host="127.0.0.1",
            web_port=str(port),
            telegram_webhook_url="https://bot.example",
        )
    [line] = capsys.readouterr().err.splitlines()
    assert (code, line) == (
        2,
        f"regulars: cannot listen on 127.0.0.1:{port}: Address already in use",
    )


def test_a_broken_translation_file_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    locales = tmp_path / "locales"
    for locale in ("ru", "en"):
        folder = locales / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "regulars.mo").write_bytes(b"\x00garbage, not a catalog")
    monkeypatch.setattr(i18n, "LOCALES_DIR", locales)
    monkeypatch.setattr(i18n.build_translators, "__defaults__", (locales,))
    code = run_main(tmp_path, monkeypatch, "--db", str(tmp_path / "x.db"))
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and "regulars.mo is not a usable translation catalog" in line


async def test_telegram_unreachable_at_start_is_retried_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = Settings(
        _env_file=None,
        database_url=sqlite_url_for(str(tmp_path / "regulars.db")),
        business_config=ROOT / "business.example.toml",
        telegram_bot_token=TELEGRAM_TOKEN,
        telegram_api_url=f"http://127.0.0.1:{port}",  # nothing listens there yet
        web_port=free_port(),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run(settings, stop=stop, polling_timeout=1))
    fake = FakeBotAPI()
    server = TestServer(fake.app, host="127.0.0.1", port=port)
    try:
        await asyncio.sleep(1.5)
        assert not running.done(), running.exception()
        await server.start_server()  # Telegram is back
        await fake.wait_for(lambda: bool(fake.calls_of("deleteWebhook")), seconds=20)
        await fake.queue(message=private_message(5001, "/start"))
        await fake.wait_for(
            lambda: any(p["text"] == "What is your name?" for p in fake.calls_of("sendMessage"))
        )
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=15)
        await server.close()
    assert any("Telegram unreachable at getMe" in r.getMessage() for r in caplog.records)
