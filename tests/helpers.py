"""Shared steps for conversation tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import select

from bot.composition import Core
from storage.tables import Client, Visit, VisitStatus
from tests.chat import ChatClient


async def register(
    chat: ChatClient, *, phone: str = "+7 912 345-67-89", marketing: bool = True
) -> None:
    """Registration in English, the quick way a person would go through it."""
    await chat.send("/start")
    await chat.click(chat.display_name or "")
    await chat.send(phone)
    await chat.click("I agree")
    await chat.click("Yes, please" if marketing else "No, thanks")
    await chat.click("Skip")


async def book(chat: ChatClient, *, service: str, master: str, day: str, time: str) -> None:
    """From the main menu to a confirmed visit."""
    await chat.send("/start")
    await chat.click("Book a visit")
    await chat.click(service)
    if any(master in label for label in chat.labels):
        await chat.click(master)
    await chat.click(day)
    await chat.click(time)
    await chat.click("Confirm")


async def visits(core: Core) -> list[Visit]:
    async with core.db.reading() as session:
        return list((await session.exec(select(Visit).order_by(Visit.id))).all())  # type: ignore[arg-type]


async def clients(core: Core) -> list[Client]:
    async with core.db.reading() as session:
        return list((await session.exec(select(Client).order_by(Client.id))).all())  # type: ignore[arg-type]


# Rows a test writes are dated by the test, never by the machine's clock: long before any
# simulated day unless the test says otherwise.
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def add_client(core: Core, **fields: object) -> Client:
    async with core.db.transaction() as session:
        client = Client(**{"created_at": LONG_AGO, **fields})  # type: ignore[arg-type]
        session.add(client)
        await session.flush()
        return client


async def add_visit(
    core: Core,
    *,
    client_id: int,
    master: str,
    service: str,
    start: datetime,
    status: str = VisitStatus.completed,
    created_at: datetime | None = None,
) -> Visit:
    catalog = core.deps.catalog
    master_info = catalog.master_by_key(master)
    service_info = catalog.service_by_key(service)
    assert master_info and service_info
    async with core.db.transaction() as session:
        visit = Visit(
            client_id=client_id,
            master_id=master_info.id,
            service_id=service_info.id,
            starts_at=start,
            ends_at=start + service_info.duration,
            status=status,
            price=Decimal(service_info.price),
            source="import",
            created_at=created_at or LONG_AGO,
        )
        session.add(visit)
        await session.flush()
        return visit


def utc_visit(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A visit start given in Moscow wall time (UTC+3), as aware UTC."""
    from datetime import timedelta

    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=3)
