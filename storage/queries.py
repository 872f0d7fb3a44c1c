"""Queries the conversations and the scheduler share. Keyword-only, session first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.slots import Interval
from storage.identities import client_of_chat, link_chat
from storage.tables import (
    ACTIVE_VISIT,
    Channel,
    Client,
    Conversation,
    Staff,
    TimeOff,
    Visit,
    VisitStatus,
)


async def busy_intervals(
    *, session: AsyncSession, master_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, list[Interval]]:
    """Active visits and time off of these masters that overlap [start, end)."""
    # No visit lasts longer than a day: the lower bound keeps the index range to the window
    # instead of the master's whole history.
    earliest = start - timedelta(days=1)
    ids = list(master_ids)
    busy: dict[int, list[Interval]] = defaultdict(list)
    visits = await session.exec(
        select(Visit.master_id, Visit.starts_at, Visit.ends_at).where(
            col(Visit.master_id).in_(ids),
            col(Visit.status).in_(ACTIVE_VISIT),
            col(Visit.starts_at) > earliest,
            col(Visit.starts_at) < end,
            col(Visit.ends_at) > start,
        )
    )
    for master_id, starts_at, ends_at in visits.all():
        busy[master_id].append(Interval(starts_at, ends_at))
    time_off = await session.exec(
        select(TimeOff.staff_id, TimeOff.starts_at, TimeOff.ends_at).where(
            col(TimeOff.staff_id).in_(ids),
            col(TimeOff.starts_at) < end,
            col(TimeOff.ends_at) > start,
        )
    )
    for staff_id, starts_at, ends_at in time_off.all():
        busy[staff_id].append(Interval(starts_at, ends_at))
    return busy


async def lock_master(*, session: AsyncSession, master_id: int) -> None:
    """Serialise bookings for one master. PostgreSQL locks the staff row; SQLite already
    holds the database write lock (BEGIN IMMEDIATE), so this is a no-op there."""
    await session.exec(select(Staff.id).where(Staff.id == master_id).with_for_update())


async def lock_client(*, session: AsyncSession, client_id: int) -> None:
    """Serialise one client's bookings (two masters at once must not both say yes).
    PostgreSQL locks the client row; SQLite holds the write lock already."""
    await session.exec(select(Client.id).where(Client.id == client_id).with_for_update())


async def upcoming_count(*, session: AsyncSession, client_id: int, now: datetime) -> int:
    query = select(func.count()).where(
        Visit.client_id == client_id, col(Visit.status).in_(ACTIVE_VISIT), col(Visit.ends_at) > now
    )
    return int((await session.exec(query)).one())


async def booked_in(
    *, session: AsyncSession, client_id: int, source: str, start: datetime, end: datetime
) -> int:
    """Visits this client booked from this channel in [start, end), cancelled ones too."""
    query = select(func.count()).where(
        Visit.client_id == client_id,
        Visit.source == source,
        col(Visit.created_at) >= start,
        col(Visit.created_at) < end,
    )
    return int((await session.exec(query)).one())


async def clashing_visit(
    *, session: AsyncSession, client_id: int, interval: Interval, moving: int | None = None
) -> Visit | None:
    """The client's active visit that overlaps `interval` (with any master), but `moving`."""
    query = select(Visit).where(
        Visit.client_id == client_id,
        col(Visit.status).in_(ACTIVE_VISIT),
        col(Visit.starts_at) < interval.end,
        col(Visit.ends_at) > interval.start,
    )
    if moving is not None:
        query = query.where(Visit.id != moving)
    return (await session.exec(query.order_by(col(Visit.starts_at)))).first()


async def create_visit(
    *,
    session: AsyncSession,
    client_id: int,
    master_id: int,
    service_id: int,
    interval: Interval,
    price: Decimal,
    source: str,
    comment: str = "",
    addon_service_id: int | None = None,
    discount: Decimal | None = None,
    discount_source: str | None = None,
    now: datetime,
) -> Visit:
    """A booked visit; `price` is what the client pays, `discount` what was taken off."""
    visit = Visit(
        client_id=client_id,
        master_id=master_id,
        service_id=service_id,
        addon_service_id=addon_service_id,
        starts_at=interval.start,
        ends_at=interval.end,
        price=price,
        discount=discount,
        discount_source=discount_source,
        source=source,
        comment=comment,
        created_at=now,
    )
    session.add(visit)
    await session.flush()
    return visit


async def upcoming_visits(
    *, session: AsyncSession, client_id: int, now: datetime, limit: int = 10
) -> Sequence[Visit]:
    result = await session.exec(
        select(Visit)
        .where(
            Visit.client_id == client_id,
            col(Visit.status).in_(ACTIVE_VISIT),
            col(Visit.ends_at) > now,
        )
        .order_by(col(Visit.starts_at))
        .limit(limit)
    )
    return result.all()


async def last_visit(*, session: AsyncSession, client_id: int, now: datetime) -> Visit | None:
    """The client's most recent visit that took place (or, failing that, was booked)."""
    for statuses in ((VisitStatus.completed,), ACTIVE_VISIT):
        result = await session.exec(
            select(Visit)
            .where(
                Visit.client_id == client_id,
                col(Visit.status).in_(statuses),
                col(Visit.starts_at) < now,
            )
            .order_by(col(Visit.starts_at).desc())
            .limit(1)
        )
        visit = result.first()
        if visit is not None:
            return visit
    return None


async def recent_completed(
    *, session: AsyncSession, client_id: int, now: datetime, limit: int = 3
) -> Sequence[Visit]:
    """The client's latest completed visits, the latest first."""
    result = await session.exec(
        select(Visit)
        .where(
            Visit.client_id == client_id,
            Visit.status == VisitStatus.completed,
            col(Visit.starts_at) < now,
        )
        .order_by(col(Visit.starts_at).desc())
        .limit(limit)
    )
    return result.all()


async def completed_starts(
    *, session: AsyncSession, client_id: int, limit: int = 20
) -> list[datetime]:
    result = await session.exec(
        select(Visit.starts_at)
        .where(Visit.client_id == client_id, Visit.status == VisitStatus.completed)
        .order_by(col(Visit.starts_at).desc())
        .limit(limit)
    )
    return list(result.all())


async def conversation_for(
    *, session: AsyncSession, channel: str, external_id: str
) -> Conversation | None:
    # Locked on PostgreSQL: two taps from one chat on two replicas take turns.
    result = await session.exec(
        select(Conversation)
        .where(Conversation.channel == channel, Conversation.external_id == external_id)
        .with_for_update()
    )
    return result.first()


async def client_for(
    *, session: AsyncSession, channel: str, external_id: str, client_id: int | None, now: datetime
) -> Client | None:
    """The client behind a chat: the one the conversation is linked to, else the one the
    chat belongs to (an imported client writing for the first time)."""
    if client_id is not None:
        client = await session.get(Client, client_id)
        if client is not None and client.deleted_at is None:
            return client
    client = await client_of_chat(session=session, channel=channel, external_id=external_id)
    if client is None and channel == Channel.whatsapp:
        client = await _proven_owner_of_number(session=session, wa_id=external_id, now=now)
    return client


async def _proven_owner_of_number(
    *, session: AsyncSession, wa_id: str, now: datetime
) -> Client | None:
    """The WhatsApp id is the sender's number, which WhatsApp proves: a client whose number
    is proven too (from Telegram's contact or staff) is recognised and the chat linked. A
    typed number proves nothing, so its holder is not handed this chat."""
    client = await client_by_phone(session=session, phone=f"+{wa_id}")
    if client is None or client.deleted_at is not None or not client.phone_verified:
        return None
    await link_chat(
        session=session,
        client=client,
        channel=Channel.whatsapp,
        external_id=wa_id,
        verified=True,
        now=now,
    )
    return client


async def staff_for(*, session: AsyncSession, channel: str, external_id: str) -> Staff | None:
    """The active member of staff writing from this chat (Telegram only)."""
    if channel != "telegram" or not external_id.lstrip("-").isdigit():
        return None
    result = await session.exec(
        select(Staff).where(Staff.telegram_id == int(external_id), col(Staff.active))
    )
    return result.first()


async def client_by_phone(*, session: AsyncSession, phone: str) -> Client | None:
    return (await session.exec(select(Client).where(Client.phone == phone))).first()
