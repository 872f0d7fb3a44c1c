"""Cross-sell at booking: a service names what goes with it (`pairs_with`); once per
booking, right after the service is chosen, the pair is offered when a master who does
both has the time; accepted, the visit covers both (one visit, the two durations and
prices together); declined, it is not offered at the next booking."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.composition import Core, build_core_on
from bot.config import ConfigError, load_business_config
from domain import vocabulary as press
from domain.business import BusinessConfig
from domain.payloads import pack
from domain.vocabulary import Act
from storage.db import Database
from storage.tables import Client, Staff, TimeOff
from testing.chat import ChatClient, Clock
from tests.helpers import OWNER, pick_time, register, staff_chat, utc_visit, visits

ROOT = Path(__file__).resolve().parent.parent
OFFER = (
    "Add Men's haircut: +1 h, +₽1,800?\nTogether: Beard trim + Men's haircut, 1 h 45 min, ₽3,100."
)


async def _to_beard(chat: ChatClient) -> None:
    await chat.send("/start")
    await chat.click("Book a visit")
    await chat.click("Beard trim")


async def _client(core: Core) -> Client:
    async with core.db.reading() as session:
        return (await session.exec(select(Client))).one()


async def test_the_pair_accepted_makes_one_visit_of_both(shop: Core, clock: Clock) -> None:
    chat = ChatClient(shop.conversations, clock, language="en")
    await register(chat)
    await _to_beard(chat)
    assert chat.last.text == OFFER
    assert chat.labels == ["Yes, add it", "No, thanks", "« Back"]
    await chat.click("Yes, add it")
    assert chat.last.text == "Beard trim + Men's haircut · ₽3,100, 1 h 45 min. Choose a master:"
    await chat.click("Artem")
    assert chat.last.text.startswith("Beard trim + Men's haircut, Artem. Choose a day:")
    await chat.click("Tue, Nov 24")
    await chat.click("Evening")
    # Artem works until 21:00: the last start leaves room for both, 1 h 45 min.
    assert chat.labels[-5:-1] == ["18:30", "18:45", "19:00", "19:15"]
    await chat.click("« Other part of the day")
    await pick_time(chat, "12:00")
    assert chat.last.text.splitlines()[2:7] == [
        "Service: Beard trim + Men's haircut",
        "Master: Artem",
        "When: on Tuesday, November 24, 12:00",
        "Duration: 1 h 45 min",
        "Price: ₽3,100",
    ]
    await chat.click("Confirm")
    assert chat.last.text.splitlines()[2:6] == [
        "Beard trim + Men's haircut · Artem",
        "On Tuesday, November 24, 12:00",
        "Duration: 1 h 45 min",
        "Price: ₽3,100",
    ]
    [visit] = await visits(shop)
    catalog = shop.deps.catalog
    beard, haircut = catalog.service_by_key("beard"), catalog.service_by_key("haircut")
    assert beard is not None and haircut is not None
    assert (visit.service_id, visit.addon_service_id) == (beard.id, haircut.id)
    assert (visit.starts_at, visit.ends_at - visit.starts_at) == (
        utc_visit(2026, 11, 24, 12),
        timedelta(minutes=105),
    )
    assert str(visit.price) == "3100.00"
    owner = staff_chat(shop, clock, OWNER)
    [day] = await owner.send("/day 2026-11-24")
    assert (
        "12:00–13:45 — Ivan, +79123456789, Beard trim + Men's haircut · first visit · booked"
        in day.text.splitlines()
    )


async def test_the_pair_declined_is_not_offered_at_the_next_booking(
    core: Core, clock: Clock
) -> None:
    chat = ChatClient(core.conversations, clock, language="en")
    await register(chat)
    await _to_beard(chat)
    await chat.click("No, thanks")
    assert chat.last.text == "Beard trim · ₽1,300, 45 min. Choose a master:"
    haircut = core.deps.catalog.service_by_key("haircut")
    assert haircut is not None
    assert (await _client(core)).declined_addon_id == haircut.id
    await chat.click("Artem")
    await chat.click("Tue, Nov 24")
    await pick_time(chat, "12:00")
    assert "Duration: 45 min" in chat.last.text.splitlines()
    await chat.click("Confirm")
    [visit] = await visits(core)
    assert visit.addon_service_id is None and visit.ends_at - visit.starts_at == timedelta(
        minutes=45
    )
    await _to_beard(chat)  # the next booking: not asked again
    assert chat.last.text == "Beard trim · ₽1,300, 45 min. Choose a master:"
    await _to_beard(chat)  # the one after: asked again
    assert chat.last.text == OFFER


async def test_back_from_the_days_does_not_ask_again(core: Core, clock: Clock) -> None:
    chat = ChatClient(core.conversations, clock, language="en")
    await register(chat)
    await _to_beard(chat)
    await chat.click("Yes, add it")
    await chat.click("Ilya")
    await chat.click("« Back")
    assert chat.last.text == "Beard trim + Men's haircut · ₽3,100, 1 h 45 min. Choose a master:"


async def test_not_offered_when_no_master_has_the_time_for_both(
    db: Database, config: BusinessConfig, clock: Clock
) -> None:
    # A beard trim goes with a kids' haircut here: only Marina does both, and she is away.
    services = [
        s.model_copy(update={"pairs_with": ["kids"]}) if s.key == "beard" else s
        for s in config.services
    ]
    core = await build_core_on(db=db, config=config.model_copy(update={"services": services}))
    async with core.db.transaction() as session:
        marina = (await session.exec(select(Staff).where(Staff.key == "marina"))).one()
        assert marina.id is not None
        session.add(
            TimeOff(
                staff_id=marina.id,
                starts_at=clock.now,
                ends_at=clock.now + timedelta(days=20),
                reason="holiday",
            )
        )
    chat = ChatClient(core.conversations, clock, language="en")
    await register(chat)
    await _to_beard(chat)
    assert chat.last.text == "Beard trim · ₽1,300, 45 min. Choose a master:"
    assert (await _client(core)).declined_addon_id is None


async def test_a_forged_pair_is_refused_and_nothing_is_stored(core: Core, clock: Clock) -> None:
    chat = ChatClient(core.conversations, clock, language="en")
    await register(chat)
    catalog = core.deps.catalog
    beard, haircut = catalog.service_by_key("beard"), catalog.service_by_key("haircut")
    assert beard is not None and haircut is not None
    # A haircut does not name a beard trim in business.example.toml (the other way round).
    [reply] = await chat.press(press.answer_addon(haircut.id, beard.id, False))
    assert reply.text.startswith("That choice is no longer available, so let's start again.")
    [reply] = await chat.press(pack(Act.ANSWER_ADDON, beard.id, haircut.id, 7))
    assert reply.text.startswith("That button is out of date.")
    [reply] = await chat.press(press.choose_days_for(press.NewVisit(haircut.id, 0, beard.id)))
    assert reply.text.startswith("That choice is no longer available")
    assert (await _client(core)).declined_addon_id is None


def test_pairs_with_names_known_services_only(tmp_path: Path) -> None:
    example = (ROOT / "business.example.toml").read_text(encoding="utf-8")
    broken = example.replace('pairs_with = ["haircut"]', 'pairs_with = ["manicure", "beard"]')
    path = tmp_path / "business.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_business_config(path)
    assert error.value.problems == [
        "services[2].pairs_with: unknown service 'manicure'",
        "services[2].pairs_with: 'beard' is the service itself",
    ]


async def test_a_visit_of_both_moves_as_a_whole(core: Core, clock: Clock) -> None:
    chat = ChatClient(core.conversations, clock, language="en")
    await register(chat)
    await _to_beard(chat)
    await chat.click("Yes, add it")
    await chat.click("Marina")
    await chat.click("Tue, Nov 24")
    await pick_time(chat, "12:00")
    await chat.click("Confirm")
    await chat.click("My visits")
    assert "On Tuesday, November 24, 12:00 — Beard trim + Men's haircut, Marina" in chat.last.text
    await chat.click("Tue, Nov 24, 12:00")
    await chat.click("Reschedule")
    await chat.click("Thu, Nov 26")
    await pick_time(chat, "15:00")
    assert "Duration: 1 h 45 min" in chat.last.text.splitlines()
    await chat.click("Confirm")
    [visit] = await visits(core)
    assert (visit.starts_at, visit.ends_at) == (
        utc_visit(2026, 11, 26, 15),
        utc_visit(2026, 11, 26, 16, 45),
    )
    assert str(visit.price) == "3100.00"
