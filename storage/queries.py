"""Queries the conversations and the scheduler share. Keyword-only, session first."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Update,
    and_,
    bindparam,
    delete,
    literal,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from domain.slots import Interval
from storage.entities import CLIENT, CONVERSATION, IDENTITY, STAFF, VISIT
from storage.identities import identity_of, link_chat
from storage.prepared import Prepared, any_of, items, one_of, run_sync
from storage.tables import (
    ACTIVE_VISIT,
    Channel,
    Client,
    ClientIdentity,
    Conversation,
    Staff,
    Visit,
    VisitStatus,
)
from storage.types import UTCDateTime


@lru_cache(maxsize=64)
def _busy_query(masters: int) -> Prepared:
    """The visits and the time off of `masters` masters overlapping a window, in one
    statement (UNION ALL), one per number of masters. The times come as the driver gives
    them (`_interval`), not through UTCDateTime."""
    return Prepared(lambda: union_all(*_busy_selects(masters)))


def _busy_selects(masters: int) -> tuple[Select[Any], Select[Any]]:
    visit, off = SQLModel.metadata.tables["visit"], SQLModel.metadata.tables["time_off"]
    start, end = bindparam("start", type_=UTCDateTime), bindparam("end", type_=UTCDateTime)
    visits = select(
        visit.c.master_id,
        type_coerce(visit.c.starts_at, String),
        type_coerce(visit.c.ends_at, String),
        # Filtered in Python: with the status in the WHERE clause SQLite's planner takes the
        # (status, starts_at) index and reads every master's booked visits of the window.
        visit.c.status,
    ).where(
        any_of(visit.c.master_id, "id", masters),
        # No visit lasts longer than a day: the lower bound keeps the index range to the
        # window instead of the master's whole history.
        visit.c.starts_at > bindparam("earliest", type_=UTCDateTime),
        visit.c.starts_at < end,
        visit.c.ends_at > start,
    )
    time_off = select(
        off.c.staff_id,
        type_coerce(off.c.starts_at, String),
        type_coerce(off.c.ends_at, String),
        literal(VisitStatus.booked),
    ).where(any_of(off.c.staff_id, "id", masters), off.c.starts_at < end, off.c.ends_at > start)
    return visits, time_off


@lru_cache(maxsize=16_384)
def _interval(starts_at: str | datetime, ends_at: str | datetime) -> Interval:
    """A busy interval from a row's two times: text on SQLite ("2026-11-23 06:00:00.000000",
    naive UTC), naive UTC datetimes on PostgreSQL. The same visits are read again and
    again while people look at days and times, so each is parsed once."""
    return Interval(_utc(starts_at), _utc(ends_at))


def _utc(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def busy_intervals(
    *, session: AsyncSession, master_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, list[Interval]]:
    """Active visits and time off of these masters that overlap [start, end)."""
    ids = list(master_ids)
    if not ids:
        return {}
    statement = _busy_query(len(ids))
    params = {**items("id", ids), "start": start, "end": end, "earliest": start - timedelta(days=1)}

    def read(sync: Session) -> dict[int, list[Interval]]:
        busy: dict[int, list[Interval]] = defaultdict(list)
        for master_id, starts_at, ends_at, status in statement.rows(sync, **params):
            if status in ACTIVE_VISIT:
                busy[master_id].append(_interval(starts_at, ends_at))
        return busy

    return await run_sync(session, read)


def _locks_rows(session: AsyncSession) -> bool:
    """Whether SELECT … FOR UPDATE locks anything: on PostgreSQL it does; SQLite has one
    write lock for the whole database, which a write transaction holds from its BEGIN
    IMMEDIATE, so there the statement would only cost a trip."""
    return session.get_bind().dialect.name != "sqlite"


async def lock_master(*, session: AsyncSession, master_id: int) -> None:
    """Serialise bookings for one master. PostgreSQL locks the staff row; SQLite already
    holds the database write lock (BEGIN IMMEDIATE), so nothing is sent there."""
    if _locks_rows(session):
        await session.exec(select(Staff.id).where(Staff.id == master_id).with_for_update())


async def lock_client(*, session: AsyncSession, client_id: int) -> None:
    """Serialise one client's bookings (two masters at once must not both say yes).
    PostgreSQL locks the client row; SQLite holds the write lock already."""
    if _locks_rows(session):
        await session.exec(select(Client.id).where(Client.id == client_id).with_for_update())


def _visit_table() -> Any:
    return SQLModel.metadata.tables["visit"]


# The client's upcoming active visits, and the visits a client booked from a channel in a
# window.
UPCOMING_COUNT = Prepared(
    lambda: select(func.count()).where(
        _visit_table().c.client_id == bindparam("client_id"),
        one_of(_visit_table().c.status, ACTIVE_VISIT),
        _visit_table().c.ends_at > bindparam("now", type_=UTCDateTime),
    )
)
BOOKED_IN = Prepared(
    lambda: select(func.count()).where(
        _visit_table().c.client_id == bindparam("client_id"),
        _visit_table().c.source == bindparam("source"),
        _visit_table().c.created_at >= bindparam("start", type_=UTCDateTime),
        _visit_table().c.created_at < bindparam("end", type_=UTCDateTime),
    )
)


async def upcoming_count(*, session: AsyncSession, client_id: int, now: datetime) -> int:
    row = await UPCOMING_COUNT.fetch_first(session, client_id=client_id, now=now)
    return int(row[0]) if row else 0


async def booked_in(
    *, session: AsyncSession, client_id: int, source: str, start: datetime, end: datetime
) -> int:
    """Visits this client booked from this channel in [start, end), cancelled ones too."""
    row = await BOOKED_IN.fetch_first(
        session, client_id=client_id, source=source, start=start, end=end
    )
    return int(row[0]) if row else 0


async def clashing_visit(
    *, session: AsyncSession, client_id: int, interval: Interval, moving: int | None = None
) -> Visit | None:
    """The client's active visit that overlaps `interval` (with any master), but `moving`."""
    return await CLASHING.load_first(
        session,
        VISIT,
        client_id=client_id,
        start=interval.start,
        end=interval.end,
        moving=-1 if moving is None else moving,  # ids are positive: -1 excludes none
    )


def _active_visits_of_client() -> Select[Any]:
    return select(*VISIT.columns).where(
        col(Visit.client_id) == bindparam("client_id"), one_of(col(Visit.status), ACTIVE_VISIT)
    )


CLASHING = Prepared(
    lambda: (
        _active_visits_of_client()
        .where(
            col(Visit.starts_at) < bindparam("end", type_=UTCDateTime),
            col(Visit.ends_at) > bindparam("start", type_=UTCDateTime),
            col(Visit.id) != bindparam("moving"),
        )
        .order_by(col(Visit.starts_at))
        .limit(1)
    )
)


async def create_client(*, session: AsyncSession, **fields: Any) -> Client:
    """A new client, written now (one INSERT); `fields` are `Client`'s, the rest default."""
    return await run_sync(session, CLIENT.insert, **fields)


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
    return await run_sync(
        session,
        VISIT.insert,
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


UPCOMING = Prepared(
    lambda: (
        _active_visits_of_client()
        .where(col(Visit.ends_at) > bindparam("now", type_=UTCDateTime))
        .order_by(col(Visit.starts_at))
        .limit(bindparam("limit", type_=Integer))
    )
)
LAST_VISIT = Prepared(
    lambda: (
        select(*VISIT.columns)
        .where(
            col(Visit.client_id) == bindparam("client_id"),
            one_of(col(Visit.status), (VisitStatus.completed, *ACTIVE_VISIT)),
            col(Visit.starts_at) < bindparam("now", type_=UTCDateTime),
        )
        # Completed visits first: one statement instead of one per kind.
        .order_by((col(Visit.status) == VisitStatus.completed).desc(), col(Visit.starts_at).desc())
        .limit(1)
    )
)


async def upcoming_visits(
    *, session: AsyncSession, client_id: int, now: datetime, limit: int = 10
) -> Sequence[Visit]:
    return await UPCOMING.load_all(session, VISIT, client_id=client_id, now=now, limit=limit)


async def last_visit(*, session: AsyncSession, client_id: int, now: datetime) -> Visit | None:
    """The client's most recent visit that took place (or, failing that, was booked)."""
    return await LAST_VISIT.load_first(session, VISIT, client_id=client_id, now=now)


async def recent_completed(
    *, session: AsyncSession, client_id: int, now: datetime, limit: int = 3
) -> Sequence[Visit]:
    """The client's latest completed visits, the latest first."""
    return await RECENT_COMPLETED.load_all(
        session, VISIT, client_id=client_id, now=now, limit=limit
    )


RECENT_COMPLETED = Prepared(
    lambda: (
        select(*VISIT.columns)
        .where(
            col(Visit.client_id) == bindparam("client_id"),
            col(Visit.status) == VisitStatus.completed,
            col(Visit.starts_at) < bindparam("now", type_=UTCDateTime),
        )
        .order_by(col(Visit.starts_at).desc())
        .limit(bindparam("limit", type_=Integer))
    )
)


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


@dataclass(frozen=True, slots=True)
class Chat:
    """What a turn needs to know about the chat writing, read together: its conversation
    (None for a chat's first message), the client that conversation is linked to, the
    chat's identity row, and the active member of staff writing from it (Telegram)."""

    conversation: Conversation | None
    client: Client | None
    identity: ClientIdentity | None
    staff: Staff | None
    saved: tuple[Any, ...] | None = None  # the conversation as read (`save_conversation`)


def _telegram_id(channel: str, external_id: str) -> int | None:
    if channel != Channel.telegram or not external_id.lstrip("-").isdigit():
        return None
    return int(external_id)


def _chat_query() -> Select[Any]:
    """The conversation with its client, the chat's identity and the staff row in one
    SELECT (a turn's first statement after recording the message id)."""
    return (
        select(*CONVERSATION.columns, *CLIENT.columns, *IDENTITY.columns, *STAFF.columns)
        .select_from(Conversation)
        .outerjoin(Client, col(Client.id) == col(Conversation.client_id))
        .outerjoin(
            ClientIdentity,
            and_(
                col(ClientIdentity.channel) == col(Conversation.channel),
                col(ClientIdentity.external_id) == col(Conversation.external_id),
            ),
        )
        .outerjoin(
            Staff, and_(col(Staff.telegram_id) == bindparam("telegram_id"), col(Staff.active))
        )
        .where(
            col(Conversation.channel) == bindparam("channel"),
            col(Conversation.external_id) == bindparam("external_id"),
        )
        # Locked on PostgreSQL: two taps from one chat on two replicas take turns.
        .with_for_update(of=Conversation)
    )


CHAT = Prepared(_chat_query)


def read_chat(session: Session, /, *, channel: str, external_id: str) -> Chat | None:
    """The chat's rows in one SELECT, or None for a chat that has no conversation yet
    (sync: for a caller inside `AsyncSession.run_sync`). The client, identity and staff
    rows are in the session as loaded; the conversation comes detached:
    `save_conversation` writes it, not the flush."""
    row = CHAT.first(
        session,
        channel=channel,
        external_id=external_id,
        telegram_id=_telegram_id(channel, external_id),
    )
    if row is None:
        return None
    first = len(CONVERSATION)
    second = first + len(CLIENT)
    third = second + len(IDENTITY)
    conversation = CONVERSATION.load(session, row[:first], attach=False)
    assert conversation is not None
    client = CLIENT.load(session, row[first:second])
    identity = IDENTITY.load(session, row[second:third])
    staff = STAFF.load(session, row[third:])
    saved = (*_as_saved(conversation), conversation.updated_at)
    return Chat(conversation, client, identity, staff, saved=saved)


async def first_message_chat(*, session: AsyncSession, channel: str, external_id: str) -> Chat:
    """The rows of a chat without a conversation: its identity (an imported client's) and
    the member of staff writing."""
    return Chat(
        None,
        None,
        await identity_of(session=session, channel=channel, external_id=external_id),
        await staff_for(session=session, channel=channel, external_id=external_id),
    )


def _save_query() -> Update:
    table = SQLModel.metadata.tables["conversation"]
    return (
        update(table)
        .where(table.c.id == bindparam("conversation_id"))
        .values(
            client_id=bindparam("client_id"),
            flow=bindparam("flow"),
            step=bindparam("step"),
            data=bindparam("data", type_=table.c.data.type),
            updated_at=bindparam("updated_at", type_=UTCDateTime),
        )
    )


SAVE = Prepared(_save_query)


# How precisely a conversation's updated_at (its last activity: a registration left for
# 24 hours starts over) is kept: a turn that changes nothing else writes nothing within it.
ACTIVITY_PRECISION = timedelta(minutes=10)


def _as_saved(conversation: Conversation) -> tuple[Any, ...]:
    # The data as JSON text: a handler may change the dict in place.
    data = json.dumps(conversation.data, sort_keys=True, default=str)
    return conversation.client_id, conversation.flow, conversation.step, data


def save_conversation(
    session: Session, conversation: Conversation, saved: tuple[Any, ...] | None = None
) -> None:
    """Write a conversation read by `read_chat` (one UPDATE; none when it is as `saved`
    and its last activity was noted less than ACTIVITY_PRECISION ago), or insert a new
    one (sync). Flushes first: a client created this turn exists before the conversation
    names it."""
    if (
        conversation.id is not None
        and saved is not None
        and saved[:4] == _as_saved(conversation)
        and conversation.updated_at - saved[4] < ACTIVITY_PRECISION
    ):
        return
    session.flush()
    if conversation.id is None:
        fields = {key: getattr(conversation, key) for key in CONVERSATION.keys if key != "id"}
        conversation.id = CONVERSATION.insert(session, attach=False, **fields).id
        return
    SAVE.run(
        session,
        conversation_id=conversation.id,
        client_id=conversation.client_id,
        flow=conversation.flow,
        step=conversation.step,
        data=conversation.data,
        updated_at=conversation.updated_at,
    )


def _live(client: Client | None) -> Client | None:
    return client if client is not None and client.deleted_at is None else None


async def client_for(
    *, session: AsyncSession, chat: Chat, channel: str, external_id: str, now: datetime
) -> Client | None:
    """The client behind a chat: the one the conversation is linked to, else the one the
    chat belongs to (an imported client writing for the first time)."""
    client = _live(chat.client)
    if client is None and chat.identity is not None:
        client = _live(await session.get(Client, chat.identity.client_id))
    if client is None and channel == Channel.whatsapp:
        client = await _proven_owner_of_number(session=session, wa_id=external_id, now=now)
    return client


def delete_conversation(session: Session, conversation: Conversation) -> None:
    """Delete a conversation read by `read_chat` (sync); one the turn erased already
    (with its client's data) is simply gone."""
    if conversation.id is None:
        return
    session.flush()
    table = SQLModel.metadata.tables["conversation"]
    session.connection().execute(delete(table).where(table.c.id == conversation.id))


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
    """The active member of staff writing from this chat (Telegram only); `chat_of` reads
    it along with the conversation."""
    telegram_id = _telegram_id(channel, external_id)
    if telegram_id is None:
        return None
    return await STAFF_OF_CHAT.load_first(session, STAFF, telegram_id=telegram_id)


STAFF_OF_CHAT = Prepared(
    lambda: select(*STAFF.columns).where(
        col(Staff.telegram_id) == bindparam("telegram_id"), col(Staff.active)
    )
)
CLIENT_BY_PHONE = Prepared(
    lambda: select(*CLIENT.columns).where(col(Client.phone) == bindparam("phone"))
)


async def client_by_phone(*, session: AsyncSession, phone: str) -> Client | None:
    return await CLIENT_BY_PHONE.load_first(session, CLIENT, phone=phone)
