"""Broadcasts (/broadcast): who of a group will really get one, the campaign and its outbox
rows, and its progress. The preview and the confirmation sort the group out with the same
function, on the guards of storage/guards.py the sender applies, so the number previewed
is the number queued."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select as sa_select
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.broadcast import BIRTHDAY_FIRST_DAYS, WAITING, Audience, LeftOut
from domain.retention import (
    MARKETING_PRIORITY,
    Caps,
    cap_allows,
    days_to_birthday,
    in_whatsapp_window,
)
from storage.guards import MESSENGERS, chosen_chat, marketing_allowed_sql, reachable_sql
from storage.outbox import enqueue, marketing_times
from storage.tables import Broadcast, Channel, Client, ClientIdentity, Outbox


async def sort_out(
    *,
    session: AsyncSession,
    conditions: Sequence[Sequence[Any]],
    due: datetime,
    tz: ZoneInfo,
    caps: Caps,
) -> Audience:
    """Who of the clients the `conditions` select (together; `Groups.conditions`) gets a
    broadcast going at `due`, and why the others do not (the first reason that applies,
    in the order of `LeftOut`). Consent and reachability are the SQL twins of the rules
    the composer checks (tests/test_guards.py holds them equal); the chat, the WhatsApp
    window and the caps are the composer's and the planner's own functions."""
    connection = await session.connection()
    left: Counter[LeftOut] = Counter()
    size = 0
    maybe: list[int] = []
    today = due.astimezone(tz).date()
    for where in conditions:
        clients = await connection.execute(
            sa_select(
                col(Client.id),
                marketing_allowed_sql().label("offers"),
                reachable_sql().label("reachable"),
                col(Client.preferred_channel),
                col(Client.birthday),
            ).where(*where)
        )
        chats: dict[int, list[Any]] = defaultdict(list)
        rows = await connection.execute(
            sa_select(
                col(ClientIdentity.client_id),
                col(ClientIdentity.channel),
                col(ClientIdentity.unreachable_since),
                col(ClientIdentity.last_inbound_at),
            )
            .join(Client, col(Client.id) == col(ClientIdentity.client_id))
            .where(*where, col(ClientIdentity.channel).in_(MESSENGERS))
            .order_by(col(ClientIdentity.id))
        )
        for row in rows.all():
            chats[row.client_id].append(row)
        for client_id, offers, reachable, preferred, birthday in clients.all():
            size += 1
            chat = chosen_chat(preferred, chats[client_id])  # rows of the identity's columns
            if not offers:
                left[LeftOut.no_offers] += 1
            elif not reachable or chat is None:
                left[LeftOut.unreachable] += 1
            elif chat.channel == Channel.whatsapp and not in_whatsapp_window(
                chat.last_inbound_at, due
            ):
                left[LeftOut.whatsapp_window] += 1  # no approved template takes free text
            elif birthday and days_to_birthday(birthday, today) <= BIRTHDAY_FIRST_DAYS:
                left[LeftOut.birthday] += 1
            else:
                maybe.append(client_id)
    history = await marketing_times(
        session=session, client_ids=maybe, kinds=MARKETING_PRIORITY, since=due - timedelta(days=30)
    )
    recipients = []
    for client_id in maybe:
        if cap_allows(history.get(client_id, []), due, caps):
            recipients.append(client_id)
        else:
            left[LeftOut.capped] += 1
    return Audience(size, tuple(sorted(recipients)), left, due)


async def queue_broadcast(
    *,
    session: AsyncSession,
    staff_id: int,
    group: str,
    text: str,
    audience: Audience,
    now: datetime,
) -> Broadcast:
    """The campaign, and its outbox rows: one per client, under one key per campaign and
    client, due when the audience was sorted out for."""
    due = audience.due or now
    broadcast = Broadcast(
        created_by=staff_id,
        audience=group,
        text=text,
        group_size=audience.group_size,
        recipients=len(audience.recipients),
        created_at=now,
        due_at=due,
    )
    session.add(broadcast)
    await session.flush()
    rows = [
        {
            "kind": "broadcast",
            "client_id": client_id,
            "due_at": due,
            "dedupe_key": f"broadcast:{broadcast.id}:client:{client_id}",
            "payload": {"broadcast_id": broadcast.id},
            "campaign": broadcast.campaign,
        }
        for client_id in audience.recipients
    ]
    for start in range(0, len(rows), 500):
        await enqueue(session=session, rows=rows[start : start + 500], now=now)
    return broadcast


async def progress(*, session: AsyncSession, broadcast: Broadcast) -> Counter[str]:
    """The campaign's outbox rows by status."""
    counts = await session.exec(
        select(Outbox.status, func.count())
        .where(Outbox.campaign == broadcast.campaign)
        .group_by(col(Outbox.status))
    )
    return Counter(dict(counts.all()))


async def recent_broadcasts(*, session: AsyncSession, limit: int = 5) -> list[Broadcast]:
    query = select(Broadcast).order_by(col(Broadcast.created_at).desc(), col(Broadcast.id).desc())
    return list((await session.exec(query.limit(limit))).all())


async def _settled(*, session: AsyncSession, now: datetime) -> list[Broadcast]:
    """Campaigns not reported yet whose rows are all settled (sent, skipped, failed)."""
    waiting = await session.exec(
        select(Broadcast).where(col(Broadcast.finished_at).is_(None), col(Broadcast.due_at) <= now)
    )
    settled = []
    for broadcast in waiting.all():
        counts = await progress(session=session, broadcast=broadcast)
        if not any(counts[status] for status in WAITING):
            settled.append(broadcast)
    return settled


async def finish_broadcasts(*, session: AsyncSession, now: datetime) -> list[Broadcast]:
    """The campaigns that are done and not reported yet, marked finished now: the planner
    reports each to its sender."""
    done = await _settled(session=session, now=now)
    for broadcast in done:
        broadcast.finished_at = now
        session.add(broadcast)
    return done


async def broadcasts_to_report(*, session: AsyncSession, now: datetime) -> bool:
    return bool(await _settled(session=session, now=now))
