"""The WhatsApp adapter: recorded Cloud API webhook bodies, signed, through the aiohttp app;
everything the bot sends captured by a fake Graph API behind `httpx.MockTransport`; the
sender's reminders through the real engine.

pywa and our background tasks log failures instead of raising them, so every test here
fails on an ERROR log record (except the one that breaks a handler on purpose)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pywa_async import WhatsApp, utils
from pywa_async.errors import WhatsAppError
from sqlmodel import select

from bot.adapters.whatsapp import (
    SIGNATURE_HEADER,
    WEBHOOK_PATH,
    add_whatsapp_webhook,
    whatsapp_channel,
)
from bot.adapters.whatsapp_delivery import THROUGHPUT_PAUSE, WhatsAppDelivery
from bot.adapters.whatsapp_inbound import event_of
from bot.adapters.whatsapp_outbound import Outgoing, create_whatsapp, fit, graph_base, split_body
from bot.composition import Core
from domain.business import BusinessConfig, Template
from domain.business import WhatsApp as WhatsAppConfig
from domain.payloads import pack
from domain.replies import Button, Reply, rows
from handlers.conversation import Conversations
from handlers.events import Choice, Command, Inbound, Text
from scheduler.delivery import Delivery
from scheduler.engine import Engine
from storage.tables import (
    Client,
    Conversation,
    Outbox,
    OutboxStatus,
    ProcessedMessage,
    Visit,
    VisitStatus,
)
from testing.chat import Clock
from testing.whatsapp_fakes import (
    API_URL,
    APP_SECRET,
    PHONE_ID,
    TOKEN,
    VERIFY_TOKEN,
    FakeGraphAPI,
    WhatsAppPerson,
    cloud_error,
    from_person,
    message_of,
    pair_rate_limit,
    recorded,
    sign,
    signed,
    throughput_limit,
    undeliverable,
)
from tests.helpers import RecordingDelivery, add_client, add_visit, chats, utc_visit

# WhatsApp does not tell a person's language: a new client is served in the business's
# (Russian for the demo barbershop) until they choose another in Preferences.
GREETING = (
    "Здравствуйте! Барбершоп «Бритва» на связи: здесь можно записаться в пару касаний, "
    "а мы напомним вам о визите."
)
NAME = "Как вас зовут?"
HINT = "Выберите, пожалуйста, одну из кнопок ниже."
MENU = "Ivan, чем можем помочь?"
HAIRCUT = "Мужская стрижка · 1 ч · 1\xa0800\xa0₽"  # too long for a row: "Мужская стрижка · 1 ч…"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def allow_error_logs() -> None:
    """Requested by the test that breaks a handler on purpose."""


@pytest.fixture(autouse=True)
def no_error_logs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    yield
    if "allow_error_logs" in request.fixturenames:
        return
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    errors = [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.ERROR]
    assert not errors, f"ERROR logged: {errors}"


@pytest.fixture
def api() -> FakeGraphAPI:
    return FakeGraphAPI()


@pytest.fixture
async def wa(api: FakeGraphAPI) -> AsyncIterator[WhatsApp]:
    http = api.http()
    try:
        yield create_whatsapp(phone_id=PHONE_ID, token=TOKEN, api_url=API_URL, http=http)
    finally:
        await http.aclose()


@pytest.fixture
def app(core: Core, wa: WhatsApp, clock: Clock) -> web.Application:
    return _webhook_app(core, wa, clock)


@pytest.fixture
async def http(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
def ivan(
    http: TestClient[web.Request, web.Application], app: web.Application, api: FakeGraphAPI
) -> WhatsAppPerson:
    return WhatsAppPerson(http, whatsapp_channel(app), api)


async def register(person: WhatsAppPerson) -> None:
    await person.send("hi")
    await person.tap(person.name)
    await person.tap("Даю согласие")
    await person.tap("Да, пишите")
    await person.tap("Пропустить")


def texts(sent: list[Any]) -> list[str]:
    return [message.text for message in sent]


async def rows_of(core: Core, table: Any) -> list[Any]:
    async with core.db.reading() as session:
        return list((await session.exec(select(table))).all())


# --- the webhook: handshake and signature --------------------------------------------------


async def test_the_handshake_answers_the_challenge_only_for_the_right_verify_token(
    http: TestClient[web.Request, web.Application],
) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}

    right = await http.get(WEBHOOK_PATH, params={**query, "hub.verify_token": VERIFY_TOKEN})
    assert (right.status, await right.text()) == (200, "1158201444")

    wrong = await http.get(WEBHOOK_PATH, params={**query, "hub.verify_token": "guess"})
    assert wrong.status == 403 and "1158201444" not in await wrong.text()
    assert (await http.get(WEBHOOK_PATH, params=query)).status == 403


async def test_unsigned_or_wrongly_signed_webhooks_are_refused_and_nothing_is_processed(
    http: TestClient[web.Request, web.Application],
    ivan: WhatsAppPerson,
    api: FakeGraphAPI,
    core: Core,
) -> None:
    body, headers = signed(ivan.payload("text"))
    json_only = {"Content-Type": "application/json"}

    unsigned = await http.post(WEBHOOK_PATH, data=body, headers=json_only)
    assert unsigned.status == 401
    other_secret = {**json_only, SIGNATURE_HEADER: sign(body, "not-the-app-secret")}
    assert (await http.post(WEBHOOK_PATH, data=body, headers=other_secret)).status == 403
    tampered = body.replace(b"Does it come", b"Give me free")
    assert (await http.post(WEBHOOK_PATH, data=tampered, headers=headers)).status == 403
    bare = {**json_only, SIGNATURE_HEADER: headers[SIGNATURE_HEADER].removeprefix("sha256=")}
    assert (await http.post(WEBHOOK_PATH, data=body, headers=bare)).status == 403

    await ivan.channel.drain()
    assert api.requests == []
    assert await rows_of(core, ProcessedMessage) == []
    assert await rows_of(core, Conversation) == []


# --- what is not a conversation ------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe", b"[]", b'{"object": "whatsapp_business_account"}']
)
async def test_malformed_bodies_are_acknowledged_and_ignored(
    http: TestClient[web.Request, web.Application], ivan: WhatsAppPerson, body: bytes
) -> None:
    _, headers = signed(body)
    response = await http.post(WEBHOOK_PATH, data=body, headers=headers)
    await ivan.channel.drain()

    assert response.status == 200
    assert ivan.api.requests == []


async def test_status_callbacks_are_acknowledged_and_nothing_is_sent(
    ivan: WhatsAppPerson, core: Core
) -> None:
    assert await ivan.post(from_person("statuses", ivan.wa_id, ivan.name)) == []
    assert ivan.api.requests == []
    assert await rows_of(core, Conversation) == []


async def test_a_failed_delivery_131026_marks_the_client_unreachable_on_whatsapp(
    ivan: WhatsAppPerson, core: Core, clock: Clock
) -> None:
    client = await add_client(core, name="Ivan", whatsapp_id=ivan.wa_id, telegram_id=1001)

    assert await ivan.post(from_person("status_failed", ivan.wa_id, ivan.name)) == []

    [found] = await rows_of(core, Client)
    assert found.id == client.id
    assert (await chats(core, client.id))["whatsapp"].unreachable_since == clock.now
    assert found.unreachable_since is None  # Telegram is still there


@pytest.mark.parametrize("recording", ["image", "sticker", "location", "unsupported"])
async def test_what_the_bot_cannot_read_gets_a_polite_hint_and_the_menu_again(
    ivan: WhatsAppPerson, recording: str
) -> None:
    await register(ivan)

    [answer] = await ivan.send_recorded(recording)

    assert answer.text == f"{HINT}\n\n{MENU}"
    assert answer.kind == "list" and "Записаться" in answer.titles


async def test_a_picture_from_someone_new_starts_the_registration(ivan: WhatsAppPerson) -> None:
    sent = await ivan.send_recorded("image")
    assert texts(sent) == [GREETING, NAME]


async def test_a_reaction_gets_no_answer(ivan: WhatsAppPerson) -> None:
    await register(ivan)
    assert await ivan.send_recorded("reaction") == []


async def test_a_message_for_another_number_of_the_app_is_not_answered(
    ivan: WhatsAppPerson, core: Core
) -> None:
    payload = ivan.payload("text")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999"
    assert await ivan.post(payload) == []
    assert await rows_of(core, Conversation) == []


async def test_a_duplicate_delivery_is_processed_once(ivan: WhatsAppPerson, core: Core) -> None:
    payload = ivan.payload("text")

    await asyncio.gather(ivan.post(payload), ivan.post(payload))  # a retry racing the first
    assert await ivan.post(payload) == []  # and one a day later

    assert texts(ivan.api.requests) == [GREETING, NAME]
    [seen] = await rows_of(core, ProcessedMessage)
    assert (seen.channel, seen.message_id) == ("whatsapp", message_of(payload)["id"])


def test_recorded_messages_become_channel_neutral_events() -> None:
    def event(name: str) -> Any:
        return event_of(message_of(recorded(name)))

    assert event("text") == Text("Does it come in another color?")
    assert event("button_reply") == Choice("cancel-button")
    assert event("list_reply") == Choice("priority_express")
    # A template button sent without a payload of ours carries its own text: not a choice.
    assert event("template_button") == Text("")
    assert event("image") == event("sticker") == event("location") == Text("")
    assert event("unsupported") == Text("")
    assert event("reaction") is None
    template_button = message_of(recorded("template_button"))
    template_button["button"]["payload"] = pack("rs", 812)
    assert event_of(template_button) == Choice("1:rs:812")
    assert event_of({"type": "text", "text": {"body": "/Start now"}}) == Command("start", "now")
    assert event_of({"type": "request_welcome"}) == Command("start")


# --- a whole booking ---------------------------------------------------------------------


async def test_registration_and_booking_by_lists_and_buttons_end_with_a_visit(
    ivan: WhatsAppPerson, api: FakeGraphAPI, core: Core, clock: Clock
) -> None:
    ru = core.deps.translator("ru")
    sent = await ivan.send("hi")
    assert texts(sent) == [GREETING, NAME]
    assert sent[1].kind == "button" and sent[1].titles == ["Ivan", "English"]

    # WhatsApp vouches for the number: no phone question.
    [consent] = await ivan.tap("Ivan")
    assert consent.text.startswith("Чтобы записать вас, нам нужно ваше согласие")
    assert (consent.kind, consent.titles) == ("button", ["Даю согласие", "Нет"])
    await ivan.tap("Даю согласие")
    await ivan.tap("Да, пишите")
    thanks, menu = await ivan.tap("Пропустить")
    assert (thanks.kind, thanks.text) == ("text", "Спасибо, Ivan! Регистрация завершена.")
    assert menu.text == MENU
    assert (menu.kind, menu.list_button) == ("list", ru._("Choose"))
    assert menu.titles == [
        "Записаться",
        "Мои визиты",
        "Мои бонусы",
        "Пригласить друзей",
        "Настройки",
        "Помощь",
    ]

    [services] = await ivan.tap("Записаться")
    assert services.text == "Выберите услугу:"
    haircut = ivan.find(HAIRCUT)
    assert (haircut.title, haircut.description) == ("Мужская стрижка · 1 ч…", HAIRCUT)
    await ivan.tap(HAIRCUT)
    [days] = await ivan.tap("Илья")
    # Twelve working days and "« Назад": nine on the first page, then "More…".
    assert len(days.titles) == 10 and days.titles[-1] == ru._("More…")
    [times] = await ivan.tap("вт, 24 нояб.")
    assert times.text == "Во вторник, 24 ноября. В какое время дня вам удобно?"
    assert times.titles == ["День", "Вечер", "« Другой день"]
    [afternoon] = await ivan.tap("День")
    assert afternoon.text == "Какое время вам удобно во вторник, 24 ноября?"
    assert afternoon.titles[0] == "12:00" and "15:30" not in afternoon.titles
    [rest] = await ivan.tap(ru._("More…"))  # a WhatsApp list holds ten rows
    assert "Позже »" in rest.titles
    [later] = await ivan.tap("Позже »")
    assert later.titles[0] == "15:00" and "15:30" in later.titles
    [summary] = await ivan.tap("15:30")
    assert "Когда: во вторник, 24 ноября, 15:30" in summary.text
    assert summary.titles == ["Подтвердить", "Добавить комментарий", "Изменить время", "Отмена"]

    [confirmation] = await ivan.tap("Подтвердить")

    assert confirmation.text.startswith("Готово! Вы записаны.")
    assert "Мужская стрижка · Илья" in confirmation.text
    assert (confirmation.kind, confirmation.titles) == ("button", ["Мои визиты", "« Главное меню"])
    [visit] = await rows_of(core, Visit)
    [client] = await rows_of(core, Client)
    assert (visit.status, visit.source, visit.client_id) == (
        VisitStatus.booked,
        "whatsapp",
        client.id,
    )
    whatsapp = (await chats(core, client.id))["whatsapp"]
    assert (client.phone, client.phone_verified) == ("+79161234567", True)
    assert (whatsapp.external_id, whatsapp.last_inbound_at) == ("79161234567", clock.now)
    version = utils.Version.GRAPH_API.value  # pywa's Graph API version, on our base URL
    assert {sent.url.rsplit("/", 2)[0] for sent in api.requests} == {f"{API_URL}/v{version}"}
    assert len(await rows_of(core, ProcessedMessage)) == len(ivan.sent_ids)


async def test_a_more_row_whose_pages_were_forgotten_shows_the_step_again(
    ivan: WhatsAppPerson, core: Core, wa: WhatsApp, clock: Clock
) -> None:
    await register(ivan)
    await ivan.tap("Записаться")
    await ivan.tap(HAIRCUT)
    await ivan.tap("Илья")
    restarted = _webhook_app(core, wa, clock)  # the same bot after a restart: pages forgotten

    async with TestClient(TestServer(restarted)) as http:
        same_ivan = WhatsAppPerson(http, whatsapp_channel(restarted), ivan.api)
        [again] = await same_ivan.tap(core.deps.translator("ru")._("More…"))

    assert again.text == f"{HINT}\n\nМужская стрижка, Илья. Выберите день:"
    assert again.titles[0] == "вт, 24 нояб."


def _webhook_app(core: Core, wa: WhatsApp, clock: Clock) -> web.Application:
    """The webhook on a fresh web app (a new process after a restart, when called again)."""
    app = web.Application()
    add_whatsapp_webhook(
        app,
        core=core,
        client=wa,
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,
        clock=lambda: clock.now,
    )
    return app


# --- rendering -----------------------------------------------------------------------------


def test_titles_are_cut_at_a_word_boundary() -> None:
    assert fit("Men's haircut · ₽1,800", 24) == "Men's haircut · ₽1,800"
    assert fit("Men's haircut · ₽1,800", 20) == "Men's haircut…"
    assert fit("Моделирование бороды · 1\xa0300\xa0₽", 24) == "Моделирование бороды…"
    assert fit("Haircut with a long beard trim and wash", 24) == "Haircut with a long…"
    assert fit("Supercalifragilisticexpialidocious", 24) == "Supercalifragilisticexp…"


async def test_long_labels_go_to_a_list_with_the_full_label_in_the_description(
    core: Core, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    outgoing = Outgoing(wa, core.deps.translator)
    long_label = "Haircut with a long beard trim and a hot towel"
    reply = Reply(
        "Which one?",
        buttons=rows([Button("Short", pack("a")), Button(long_label, pack("b"))]),
        locale="en",
    )

    await outgoing.send("79160000001", reply)

    [sent] = api.requests
    assert sent.kind == "list"
    short, cut = sent.rows
    assert (short.title, short.description) == ("Short", None)
    assert cut.title == "Haircut with a long…" and len(cut.title) <= 24
    assert cut.description == long_label and cut.id == "1:b"

    # Three short titles are reply buttons; a fourth makes a list.
    three = [Button(label, pack("c", n)) for n, label in enumerate(["One", "Two", "Three"])]
    await outgoing.send("79160000001", Reply("Pick", buttons=rows(three)))
    assert api.requests[-1].kind == "button"
    await outgoing.send("79160000001", Reply("Pick", buttons=rows([*three, Button("Four", "1:d")])))
    assert api.requests[-1].kind == "list"
    # Two buttons for one payload would make WhatsApp refuse the message: the first stays.
    same = [Button("Cancel", pack("mn")), Button("« Main menu", pack("mn"))]
    await outgoing.send("79160000001", Reply("Sure?", buttons=rows(same)))
    assert api.requests[-1].titles == ["Cancel"]


async def test_a_long_list_pages_by_nine_with_more_and_each_page_works(
    ivan: WhatsAppPerson, core: Core
) -> None:
    await register(ivan)
    choices = [Button(f"Option {n}", pack("zz", n)) for n in range(1, 24)]
    await ivan.channel.outgoing.send(ivan.wa_id, Reply("Pick one:", buttons=rows(choices)))

    more = core.deps.translator("ru")._("More…")
    first = ivan.last_choices()
    assert first.titles == [*(f"Option {n}" for n in range(1, 10)), more]
    [second] = await ivan.tap(more)
    assert second.text == "Pick one:"
    assert second.titles == [*(f"Option {n}" for n in range(10, 19)), more]
    [third] = await ivan.tap(more)
    assert third.titles == [f"Option {n}" for n in range(19, 24)]  # the rest fits: no "More…"

    # A row of a later page is an ordinary choice for the conversation.
    [stale] = await ivan.tap("Option 20")
    assert stale.text.startswith("Эта кнопка устарела.")


async def test_long_text_is_split_and_the_question_stays_with_its_buttons(
    core: Core, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    outgoing = Outgoing(wa, core.deps.translator)
    paragraph = "Lorem ipsum dolor sit amet. " * 30  # 840 characters
    await outgoing.send("79160000001", Reply("\n".join([paragraph] * 6)))
    assert [s.kind for s in api.requests] == ["text", "text"]
    assert all(len(s.text) <= 4096 for s in api.requests)

    api.requests.clear()
    long = "\n".join([paragraph, paragraph, "Shall we book you?"])
    await outgoing.send("79160000001", Reply(long, buttons=rows([Button("Yes", "1:y")])))
    head, question = api.requests
    assert head.kind == "text" and question.kind == "button"
    assert len(question.text) <= 1024 and question.text.endswith("Shall we book you?")
    assert head.text + "\n" + question.text == long
    assert split_body("short") == ([], "short")


# --- failures ------------------------------------------------------------------------------


@dataclass
class Exploding:
    """Conversations that fail on the word "boom"."""

    conversations: Conversations

    async def handle(self, inbound: Inbound) -> list[Reply]:
        if inbound.event == Text("boom"):
            raise RuntimeError("a bug in a handler")
        return await self.conversations.handle(inbound)


async def test_a_failing_message_is_logged_apologised_for_and_does_not_stop_the_others(
    ivan: WhatsAppPerson,
    core: Core,
    caplog: pytest.LogCaptureFixture,
    allow_error_logs: None,
) -> None:
    ivan.channel.conversations = Exploding(core.conversations)  # type: ignore[assignment]
    payload = ivan.payload("text")
    message_of(payload)["text"]["body"] = "boom"
    other = from_person("text", "79160000002", "Anna")
    message_of(other)["text"]["body"] = "hi"
    payload["entry"][0]["changes"][0]["value"]["messages"].append(message_of(other))

    sent = await ivan.post(payload)

    assert texts(sent) == [
        "Извините, у нас что-то пошло не так. Попробуйте, пожалуйста, через минуту."
    ]
    assert texts(ivan.api.to("79160000002")) == [GREETING, NAME]
    [failure] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failure.name == "bot.adapters.whatsapp" and failure.exc_info is not None


async def test_the_token_is_never_logged(
    core: Core, wa: WhatsApp, api: FakeGraphAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.script(cloud_error(100, "Invalid parameter"))
    outgoing = Outgoing(wa, core.deps.translator)
    with pytest.raises(WhatsAppError, match="Invalid parameter"):
        await outgoing.send("79160000001", Reply("hello"))
    await outgoing.send("79160000001", Reply("hello"))
    assert caplog.records and not any(TOKEN in r.getMessage() for r in caplog.records)


def test_the_api_url_keeps_pywas_version_unless_it_names_one() -> None:
    assert (
        graph_base("https://proxy.example/graph/", "/v26.0/") == "https://proxy.example/graph/v26.0"
    )
    assert graph_base("http://127.0.0.1:8081/v23.0", "/v26.0/") == "http://127.0.0.1:8081/v23.0"


# --- proactive messages ----------------------------------------------------------------------


REMINDER_TEMPLATE = Template(
    name="visit_reminder", language="en_US", params=["name", "service", "when"]
)
WA_ID = "79161230001"


@dataclass
class Sleeps:
    seconds: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def with_templates(config: BusinessConfig, **templates: Template) -> BusinessConfig:
    return config.model_copy(update={"whatsapp": WhatsAppConfig(templates=templates)})


def engine_for(
    core: Core, clock: Clock, channels: dict[str, Delivery], sleeps: Sleeps | None = None
) -> Engine:
    return core.engine(
        channels=channels, clock=lambda: clock.now, paces=None, sleep=sleeps or Sleeps()
    )


def delivery(wa: WhatsApp, core: Core, **templates: Template) -> WhatsAppDelivery:
    config = with_templates(core.config, **templates)
    return WhatsAppDelivery(wa, config, translators=core.deps.translators)


async def a_client(core: Core, clock: Clock, *, last_seen: timedelta, **fields: Any) -> Client:
    values: dict[str, Any] = {
        "name": "Pavel",
        "whatsapp_id": WA_ID,
        "preferred_channel": "whatsapp",
        "locale": "en",
        "consent_at": clock.now - timedelta(days=60),
        "last_inbound_whatsapp_at": clock.now - last_seen,
        **fields,
    }
    return await add_client(core, **values)


async def a_reminder(core: Core, clock: Clock, client: Client, *, day: int = 24) -> Outbox:
    assert client.id is not None
    visit = await add_visit(
        core,
        client_id=client.id,
        master="artem",
        service="haircut",
        start=utc_visit(2026, 11, day, 10),
        status=VisitStatus.booked,
    )
    async with core.db.transaction() as session:
        row = Outbox(
            kind="reminder",
            client_id=client.id,
            due_at=clock.now,
            created_at=clock.now,
            dedupe_key=f"reminder:24h:visit:{visit.id}",
            payload={"visit_id": visit.id, "hours": 24},
        )
        session.add(row)
        await session.flush()
        return row


async def reread(core: Core, row: Any) -> Any:
    async with core.db.reading() as session:
        return await session.get(type(row), row.id)


REMINDER = "Reminder: Men's haircut with Artem, on Tuesday, November 24, 10:00.\nAddress: 12 Pokrovka Street, Moscow"


async def test_a_reminder_inside_the_24_hours_goes_out_free_form_with_its_buttons(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    client = await a_client(core, clock, last_seen=timedelta(hours=1))
    row = await a_reminder(core, clock, client)
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core, reminder=REMINDER_TEMPLATE)})

    assert (await engine.send())["sent"] == 1

    [sent] = api.requests
    assert (sent.to, sent.kind, sent.text) == (WA_ID, "button", REMINDER)
    assert sent.titles == ["I'll be there", "Reschedule", "Cancel visit"]
    assert (await reread(core, row)).status == OutboxStatus.sent


async def test_a_reminder_after_three_days_of_silence_goes_out_as_the_template(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    client = await a_client(core, clock, last_seen=timedelta(days=3))
    row = await a_reminder(core, clock, client)
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core, reminder=REMINDER_TEMPLATE)})

    assert (await engine.send())["sent"] == 1

    [sent] = api.requests
    assert (sent.to, sent.kind) == (WA_ID, "template")
    assert sent.template["name"] == "visit_reminder"
    assert sent.template["language"] == {"code": "en_US"}
    assert sent.template_values == ["Pavel", "Men's haircut", "on Tuesday, November 24, 10:00"]
    assert (await reread(core, row)).status == OutboxStatus.sent


async def test_without_a_template_a_reminder_outside_the_window_is_skipped_not_sent(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    client = await a_client(core, clock, last_seen=timedelta(days=3))
    row = await a_reminder(core, clock, client)
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core)})

    assert (await engine.send())["skipped"] == 1

    skipped = await reread(core, row)
    assert skipped.status == OutboxStatus.skipped
    assert (
        skipped.last_error
        == "no approved WhatsApp template for reminder outside the 24-hour window"
    )
    assert api.requests == []


async def test_a_template_missing_one_of_its_values_is_skipped_with_the_reason(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    client = await a_client(core, clock, last_seen=timedelta(days=3))
    row = await a_reminder(core, clock, client)
    needs_gift = Template(name="visit_reminder", language="en_US", params=["name", "gift"])
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core, reminder=needs_gift)})

    assert (await engine.send())["skipped"] == 1

    skipped = await reread(core, row)
    assert skipped.last_error == "template visit_reminder needs 'gift'; this reminder has none"
    assert api.requests == []


async def test_when_whatsapp_counts_the_window_closed_the_template_goes_instead(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    client = await a_client(core, clock, last_seen=timedelta(hours=23, minutes=55))
    await a_reminder(core, clock, client)
    api.script(cloud_error(131047, "Re-engagement message"))
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core, reminder=REMINDER_TEMPLATE)})

    assert (await engine.send())["sent"] == 1
    assert [(s.kind, s.status) for s in api.requests] == [("button", 400), ("template", 200)]


async def test_a_pair_rate_limit_131056_backs_off_and_the_reminder_goes_out_later(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    client = await a_client(core, clock, last_seen=timedelta(hours=1))
    row = await a_reminder(core, clock, client)
    api.script(pair_rate_limit())
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core)})
    started = clock.now

    assert (await engine.send())["retry"] == 1

    waiting = await reread(core, row)
    assert (waiting.status, waiting.attempts) == (OutboxStatus.pending, 1)
    assert waiting.due_at > started
    assert "131056" in waiting.last_error
    assert sum((await engine.send()).outcomes.values()) == 0  # not due yet

    clock.now = waiting.due_at
    assert (await engine.send())["sent"] == 1
    assert [s.status for s in api.requests] == [400, 200]
    assert (await reread(core, row)).status == OutboxStatus.sent


async def test_the_throughput_limit_130429_pauses_the_sender(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    client = await a_client(core, clock, last_seen=timedelta(hours=1))
    row = await a_reminder(core, clock, client)
    api.script(throughput_limit())
    sleeps = Sleeps()
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core)}, sleeps)

    assert (await engine.send())["paused"] == 1
    assert sleeps.seconds == [THROUGHPUT_PAUSE]
    assert (await reread(core, row)).attempts == 0

    assert (await engine.send())["sent"] == 1


async def test_not_a_whatsapp_user_131026_closes_whatsapp_and_the_next_goes_by_telegram(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    client = await a_client(core, clock, last_seen=timedelta(hours=1), telegram_id=5005)
    first = await a_reminder(core, clock, client, day=24)
    second = await a_reminder(core, clock, client, day=25)
    api.script_to(WA_ID, undeliverable(), times=None)
    telegram = RecordingDelivery()
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core), "telegram": telegram})

    stats = await engine.send()

    assert (stats["failed"], stats["sent"]) == (1, 1)
    failed = await reread(core, first)
    assert failed.status == OutboxStatus.failed and "131026" in failed.last_error
    gone = await reread(core, client)
    assert (await chats(core, client.id))["whatsapp"].unreachable_since == clock.now
    assert gone.unreachable_since is None
    [(recipient, reply)] = telegram.delivered
    assert (recipient.channel, recipient.address) == ("telegram", "5005")
    assert "November 25" in reply.text
    assert (await reread(core, second)).status == OutboxStatus.sent
    assert len(api.requests) == 1


async def test_a_client_who_stopped_marketing_131050_keeps_getting_reminders(
    core: Core, clock: Clock, wa: WhatsApp, api: FakeGraphAPI
) -> None:
    clock.now = utc_visit(2026, 11, 23, 12)  # inside the 10:00-20:00 window for offers
    client = await a_client(
        core,
        clock,
        last_seen=timedelta(hours=1),
        marketing_opt_in_at=clock.now - timedelta(days=30),
    )
    async with core.db.transaction() as session:  # the offer goes first and is refused
        offer = Outbox(
            kind="birthday",
            client_id=client.id,
            due_at=clock.now,
            created_at=clock.now,
            dedupe_key="birthday:test",
            payload={},
        )
        session.add(offer)
    reminder = await a_reminder(core, clock, client)
    api.script_to(WA_ID, cloud_error(131050, "(#131050) User stopped marketing messages"), times=1)
    engine = engine_for(core, clock, {"whatsapp": delivery(wa, core)})

    await engine.send()

    skipped = await reread(core, offer)
    assert skipped.status == OutboxStatus.skipped and "opted out" in (skipped.last_error or "")
    after = await reread(core, client)
    assert not after.marketing_allowed
    assert (await chats(core, client.id))["whatsapp"].unreachable_since is None
    assert after.unreachable_since is None
    assert (await reread(core, reminder)).status == OutboxStatus.sent
