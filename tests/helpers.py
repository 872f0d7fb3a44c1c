"""Shared steps for conversation tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import col, select

from bot.composition import Core
from domain.replies import Reply
from scheduler.delivery import Recipient
from scheduler.engine import Engine, SimulatedClock
from storage.tables import Client, ClientIdentity, Visit, VisitStatus
from testing.chat import ChatClient, Clock

# The chats of the `shop` fixture's staff (tests/conftest.py): Artem the owner, Ilya a master.
OWNER, MASTER = "7001", "7002"


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
    await to_summary(chat, service=service, master=master, day=day, time=time)
    await chat.click("Confirm")


async def to_summary(
    chat: ChatClient, *, service: str, master: str, day: str, time: str, addon: bool = False
) -> None:
    """From the main menu to the booking summary, before Confirm; a service offered with
    another (`pairs_with`) is taken alone unless `addon`."""
    await chat.send("/start")
    await chat.click("Book a visit")
    await chat.click(service)
    if "Yes, add it" in chat.labels:
        await chat.click("Yes, add it" if addon else "No, thanks")
    if any(master in label for label in chat.labels):
        await chat.click(master)
    await chat.click(day)
    await pick_time(chat, time)


async def pick_time(chat: ChatClient, time: str) -> None:
    """A time on the day shown, through its part of the day and screens when the day has
    too many free times for one screen (as a person would look for it)."""
    if time not in chat.labels:
        hour = int(time.split(":")[0])
        part = "Morning" if hour < 12 else "Afternoon" if hour < 17 else "Evening"
        if part in chat.labels:
            await chat.click(part)
    while time not in chat.labels and "Later times »" in chat.labels:
        await chat.click("Later times »")
    await chat.click(time)


async def visits(core: Core) -> list[Visit]:
    async with core.db.reading() as session:
        return list((await session.exec(select(Visit).order_by(Visit.id))).all())  # type: ignore[arg-type]


async def clients(core: Core) -> list[Client]:
    async with core.db.reading() as session:
        return list((await session.exec(select(Client).order_by(Client.id))).all())  # type: ignore[arg-type]


# Client fields of the old per-channel columns, now rows of client_identity.
_CHAT_FIELDS = {
    "telegram_id": ("telegram", "external_id"),
    "whatsapp_id": ("whatsapp", "external_id"),
    "telegram_unreachable_at": ("telegram", "unreachable_since"),
    "whatsapp_unreachable_at": ("whatsapp", "unreachable_since"),
    "last_inbound_telegram_at": ("telegram", "last_inbound_at"),
    "last_inbound_whatsapp_at": ("whatsapp", "last_inbound_at"),
}
# Rows a test writes are dated by the test, never by the machine's clock: long before any
# simulated day unless the test says otherwise.
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def add_client(core: Core, **fields: object) -> Client:
    """A client as staff or an import would enter them: a given phone is verified. Chats
    are given as `telegram_id=…`, `whatsapp_id=…` (and their `last_inbound_…_at`,
    `…_unreachable_at`)."""
    chats: dict[str, dict[str, object]] = {}
    for name, (channel, attribute) in _CHAT_FIELDS.items():
        if name in fields:
            chats.setdefault(channel, {})[attribute] = fields.pop(name)
    fields.setdefault("phone_verified", fields.get("phone") is not None)
    fields.setdefault("created_at", fields.get("consent_at") or LONG_AGO)
    async with core.db.transaction() as session:
        client = Client(**fields)  # type: ignore[arg-type]
        session.add(client)
        await session.flush()
        assert client.id is not None
        for channel, chat in chats.items():
            if chat.get("external_id") is None:
                continue
            chat["external_id"] = str(chat["external_id"])
            session.add(
                ClientIdentity(
                    client_id=client.id,
                    channel=channel,
                    verified=True,
                    created_at=client.created_at,
                    **chat,  # type: ignore[arg-type]
                )
            )
        return client


async def chats(core: Core, client_id: int | None) -> dict[str, ClientIdentity]:
    """The client's chats by messenger (the first one of each)."""
    async with core.db.reading() as session:
        query = select(ClientIdentity).where(ClientIdentity.client_id == client_id)
        rows = (await session.exec(query.order_by(col(ClientIdentity.id)))).all()
    found: dict[str, ClientIdentity] = {}
    for row in rows:
        found.setdefault(row.channel, row)
    return found


async def chat_id(core: Core, client_id: int | None, channel: str = "telegram") -> str | None:
    chat = (await chats(core, client_id)).get(channel)
    return chat.external_id if chat else None


async def add_visit(
    core: Core,
    *,
    client_id: int,
    master: str,
    service: str,
    start: datetime,
    status: str = VisitStatus.completed,
    created_at: datetime | None = None,
    source: str = "import",
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
            source=source,
            created_at=created_at or LONG_AGO,
        )
        session.add(visit)
        await session.flush()
        return visit


def utc_visit(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A visit start given in Moscow wall time (UTC+3), as aware UTC."""
    from datetime import timedelta

    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=3)


def staff_chat(core: Core, clock: Clock, external_id: str, **kw: object) -> ChatClient:
    """A member of staff of the `shop` fixture, reading English."""
    return ChatClient(core.conversations, clock, external_id=external_id, language="en", **kw)  # type: ignore[arg-type]


@dataclass
class RecordingDelivery:
    """A Telegram stand-in that takes every message."""

    delivered: list[tuple[Recipient, Reply]] = field(default_factory=list)

    async def deliver(self, recipient: Recipient, reply: Reply) -> None:
        self.delivered.append((recipient, reply))

    def to(self, chat: str, kind: str | None = None) -> list[Reply]:
        """What went to this chat (of this kind), in order."""
        return [
            reply
            for recipient, reply in self.delivered
            if recipient.address == chat and (kind is None or reply.kind == kind)
        ]


def engine_of(core: Core, clock: Clock, inbox: RecordingDelivery) -> tuple[Engine, SimulatedClock]:
    simulated = SimulatedClock(clock.now)
    return core.engine(channels={"telegram": inbox}, clock=simulated, paces=None), simulated


async def send_due(
    core: Core, clock: Clock, inbox: RecordingDelivery, *, plan: bool = False
) -> None:
    """One pass of the engine at the test clock's time (plan, when asked, then send)."""
    engine, _ = engine_of(core, clock, inbox)
    if plan:
        await engine.plan()
    await engine.send()
