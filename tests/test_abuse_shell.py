"""The shell under attack (issue 8, the robustness half): forged buttons, client text that
fakes lines for staff, replays and repeats, a stop in the middle of work, a second copy on
one database, secrets in logs and start-up problems. Each test failed on the code before."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlmodel import select

from bot.composition import Core, build_core_on
from bot.config import ConfigError, load_business_config
from domain.business import BusinessConfig
from domain.text import has_letter, one_line, without_format_characters
from scheduler.messages import Messages
from storage.db import Database
from storage.tables import Client, Outbox, Staff, VisitStatus
from tests.chat import ChatClient, Clock
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
    assert visit_line.startswith("15:00 — Пётр Иванов, ")
    assert notes == [
        "   “tea, please 12:00 — Фальшивый клиент, Фейд [2J done”",
        "   “first 11:00 — Ещё один, Фейд”",
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
