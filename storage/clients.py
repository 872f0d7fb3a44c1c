"""Clients as staff look them up: search by phone or name, what the client card shows, the
visit history, and the groups of /segments and /broadcast (segments by the last completed
visit, VIP by the spend of the last 365 days)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, exists, func, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.loyalty import Group, vip_ranking, vip_since
from domain.retention import Segment, segment_dates
from domain.slots import local_to_utc
from domain.text import search_form
from storage.db import SEARCH_FORM
from storage.identities import identities_of
from storage.tables import (
    ACTIVE_VISIT,
    ChurnReason,
    Client,
    ClientIdentity,
    Feedback,
    Outbox,
    Visit,
    VisitStatus,
)

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ClientHit:
    """A client in a list: a search result, a page of a segment."""

    id: int
    name: str
    phone: str | None
    last_visit_at: datetime | None


def _hit(row: Any) -> ClientHit:
    return ClientHit(row[0], row[1], row[2], row[3])


_HIT_COLUMNS = (col(Client.id), col(Client.name), col(Client.phone), col(Client.last_visit_at))
_RECENT_FIRST = (
    col(Client.last_visit_at).is_(None),
    col(Client.last_visit_at).desc(),
    col(Client.id),
)


def visited(master_id: int) -> Any:
    """The client had a visit (of any status) with this master: the clients a master may
    look up."""
    return exists().where(col(Visit.client_id) == col(Client.id), col(Visit.master_id) == master_id)


def _live(master_id: int | None) -> list[Any]:
    where = [col(Client.deleted_at).is_(None)]
    if master_id is not None:
        where.append(visited(master_id))
    return where


async def client_by_phone(
    *, session: AsyncSession, phone: str, master_id: int | None = None
) -> ClientHit | None:
    """The live client with this (E.164) number, among the master's clients if given."""
    query = sa_select(*_HIT_COLUMNS).where(col(Client.phone) == phone, *_live(master_id))
    row = (await (await session.connection()).execute(query)).first()
    return _hit(row) if row else None


async def clients_by_digits(
    *, session: AsyncSession, digits: str, master_id: int | None = None, limit: int = 10
) -> tuple[int, list[ClientHit]]:
    """Live clients whose number contains these digits ("6789", the end a person
    remembers): how many, and the first `limit`, the most recent visit first."""
    if not digits.isdigit():
        return 0, []
    where = [col(Client.phone).contains(digits), *_live(master_id)]
    # One pass over the names: the matches counted beside the first of them.
    rows = await (await session.connection()).execute(
        sa_select(*_HIT_COLUMNS, func.count().over())
        .where(*where)
        .order_by(*_RECENT_FIRST)
        .limit(limit)
    )
    found = rows.all()
    return (int(found[0][-1]) if found else 0), [_hit(row) for row in found]


def _search_form(session: AsyncSession, column: Any) -> Any:
    """`domain.text.search_form` in SQL: on SQLite the Python function itself (registered
    on every connection by storage/db.py; SQLite's lower() knows only ASCII), on
    PostgreSQL its Unicode lower() with ё read as е."""
    if session.get_bind().dialect.name == "sqlite":
        return getattr(func, SEARCH_FORM)(column)
    return func.replace(func.lower(column), "ё", "е")


async def clients_by_name(
    *, session: AsyncSession, part: str, master_id: int | None = None, limit: int = 10
) -> tuple[int, list[ClientHit]]:
    """Live clients whose name contains `part` in any case (ё as е): how many, and the
    first `limit`, the most recent visit first."""
    wanted = search_form(part)
    if not wanted:
        return 0, []
    where = [
        *_live(master_id),
        _search_form(session, col(Client.name)).contains(wanted, autoescape=True),
    ]
    connection = await session.connection()
    total = (await connection.execute(sa_select(func.count()).where(*where))).scalar_one()
    rows = await connection.execute(
        sa_select(*_HIT_COLUMNS).where(*where).order_by(*_RECENT_FIRST).limit(limit)
    )
    return int(total), [_hit(row) for row in rows.all()]


async def had_visit_with(*, session: AsyncSession, client_id: int, master_id: int) -> bool:
    query = select(Visit.id).where(Visit.client_id == client_id, Visit.master_id == master_id)
    return (await session.exec(query.limit(1))).first() is not None


# --- the card ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rating:
    rating: int
    comment: str
    status: str  # ok / open / resolved
    given_at: datetime
    master_id: int


@dataclass(frozen=True, slots=True)
class SentMessage:
    kind: str
    at: datetime  # sent, or due when not sent
    status: str


@dataclass(frozen=True, slots=True)
class Card:
    """What the client card shows besides the client row itself."""

    client: Client
    chats: Sequence[ClientIdentity]
    by_status: Counter[str]  # visits by status
    spent: Decimal  # what the completed visits brought (the amount paid, else the price)
    cancelled_by_shop: int
    last_visit: Visit | None  # the last completed one
    upcoming: Sequence[Visit]
    masters: Counter[int]  # completed visits by master
    starts: Sequence[datetime]  # of the completed visits, the latest first
    ratings: Sequence[Rating]  # the newest first
    churn: Sequence[tuple[str, datetime]]
    messages: Sequence[SentMessage]  # the last ones, newest first
    vip: bool


def _paid() -> Any:
    """What a completed visit brought: the amount marked at "came", else its price. Money
    is stored in minor units, so the sum is exact."""
    return type_coerce(
        func.sum(func.coalesce(col(Visit.paid_amount), col(Visit.price))), BigInteger
    )


def _money(minor: int | None) -> Decimal:
    return Decimal(minor or 0).scaleb(-2)


async def client_card(
    *, session: AsyncSession, client: Client, now: datetime, tz: ZoneInfo, messages: int = 5
) -> Card:
    assert client.id is not None
    connection = await session.connection()
    counts = await connection.execute(
        sa_select(col(Visit.status), func.count(), _paid())
        .where(col(Visit.client_id) == client.id)
        .group_by(col(Visit.status))
    )
    by_status: Counter[str] = Counter()
    spent = Decimal("0.00")
    for status, count, minor in counts.all():
        by_status[status] = count
        if status == VisitStatus.completed:
            spent = _money(minor)
    by_shop = await connection.execute(
        sa_select(func.count()).where(
            col(Visit.client_id) == client.id,
            col(Visit.status) == VisitStatus.cancelled,
            col(Visit.cancel_reason) == "staff",
        )
    )
    completed = await session.exec(
        select(Visit)
        .where(Visit.client_id == client.id, Visit.status == VisitStatus.completed)
        .order_by(col(Visit.starts_at).desc())
    )
    done = list(completed.all())
    upcoming = await session.exec(
        select(Visit)
        .where(
            Visit.client_id == client.id,
            col(Visit.status).in_(ACTIVE_VISIT),
            col(Visit.ends_at) > now,
        )
        .order_by(col(Visit.starts_at))
        .limit(3)
    )
    ratings = await connection.execute(
        sa_select(
            col(Feedback.rating),
            col(Feedback.comment),
            col(Feedback.status),
            col(Feedback.created_at),
            col(Visit.master_id),
        )
        .join(Visit, col(Visit.id) == col(Feedback.visit_id))
        .where(col(Visit.client_id) == client.id)
        .order_by(col(Feedback.created_at).desc())
    )
    churn = await session.exec(
        select(ChurnReason.answer, ChurnReason.created_at)
        .where(ChurnReason.client_id == client.id)
        .order_by(col(ChurnReason.created_at).desc())
    )
    sent = await session.exec(
        select(Outbox.kind, Outbox.sent_at, Outbox.due_at, Outbox.status)
        .where(Outbox.client_id == client.id)
        .order_by(
            func.coalesce(col(Outbox.sent_at), col(Outbox.due_at)).desc(), col(Outbox.id).desc()
        )
        .limit(messages)
    )
    today = now.astimezone(tz).date()
    return Card(
        client=client,
        chats=await identities_of(session=session, client_id=client.id),
        by_status=by_status,
        spent=spent,
        cancelled_by_shop=int(by_shop.scalar_one()),
        last_visit=done[0] if done else None,
        upcoming=list(upcoming.all()),
        masters=Counter(visit.master_id for visit in done),
        starts=[visit.starts_at for visit in done],
        ratings=[Rating(*row) for row in ratings.all()],
        churn=list(churn.all()),
        messages=[
            SentMessage(kind, sent_at or due_at, status)
            for kind, sent_at, due_at, status in sent.all()
        ],
        vip=client.id in await vip_clients(session=session, today=today, tz=tz),
    )


async def client_visits(
    *,
    session: AsyncSession,
    client_id: int,
    master_id: int | None = None,
    offset: int = 0,
    limit: int = 10,
) -> tuple[int, list[Visit]]:
    """A page of the client's visits (only those with `master_id` if given), the newest
    first, and how many there are."""
    where = [col(Visit.client_id) == client_id]
    if master_id is not None:
        where.append(col(Visit.master_id) == master_id)
    total = (await session.exec(select(func.count()).select_from(Visit).where(*where))).one()
    page = await session.exec(
        select(Visit)
        .where(*where)
        .order_by(col(Visit.starts_at).desc(), col(Visit.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total), list(page.all())


# --- groups: segments, VIP, everyone ------------------------------------------------------


def midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local day begins, in UTC."""
    return local_to_utc(day, time(), tz)


async def spend_by_client(
    *, session: AsyncSession, since: datetime, until: datetime | None = None
) -> dict[int, Decimal]:
    """What each live client's completed visits starting in [since, until) brought."""
    where = [
        col(Visit.status) == VisitStatus.completed,
        col(Visit.starts_at) >= since,
        col(Client.deleted_at).is_(None),
    ]
    if until is not None:
        where.append(col(Visit.starts_at) < until)
    rows = await (await session.connection()).execute(
        sa_select(col(Visit.client_id), _paid())
        .join(Client, col(Client.id) == col(Visit.client_id))
        .where(*where)
        .group_by(col(Visit.client_id))
    )
    return {client_id: _money(minor) for client_id, minor in rows.all()}


async def vip_clients(*, session: AsyncSession, today: date, tz: ZoneInfo) -> list[int]:
    """The VIP clients as of the local day `today`, the biggest spender first."""
    spend = await spend_by_client(session=session, since=midnight(vip_since(today), tz))
    return vip_ranking(spend)


def segment_where(segment: Segment, *, today: date, tz: ZoneInfo, warm_days: int) -> list[Any]:
    """The SQL condition of `segment` over live clients: the lines of `segment_of`, drawn
    on the last completed visit kept on the client row."""
    where: list[Any] = [col(Client.deleted_at).is_(None)]
    last = col(Client.last_visit_at)
    if segment is Segment.prospect:
        return [*where, last.is_(None)]
    first, before = segment_dates(segment, today, warm_days=warm_days)
    where.append(last.is_not(None))
    if first is not None:
        where.append(last >= midnight(first, tz))
    if before is not None:
        where.append(last < midnight(before, tz))
    return where


@dataclass(frozen=True, slots=True)
class Groups:
    """How to find the clients of each group as of one local day."""

    today: date
    tz: ZoneInfo
    warm_days: int
    vip: list[int] | None  # the VIP ranking, best first (None: not computed)

    def vip_ranking(self) -> list[int]:
        if self.vip is None:
            raise ValueError("these groups were read without VIP")
        return self.vip

    def where(self, group: Group) -> list[Any] | None:
        """The SQL condition of a segment or of everyone; None for VIP (a ranking)."""
        if group is Group.vip:
            return None
        if group is Group.everyone:
            return [col(Client.deleted_at).is_(None)]
        return segment_where(
            Segment(group.value), today=self.today, tz=self.tz, warm_days=self.warm_days
        )

    def conditions(self, group: Group) -> list[list[Any]]:
        """SQL conditions that together select the group: one for a segment or everyone,
        one per slice of the VIP ranking (an IN list small enough for any database)."""
        where = self.where(group)
        if where is not None:
            return [where]
        vip = self.vip_ranking()
        return [[col(Client.id).in_(vip[i : i + _CHUNK])] for i in range(0, len(vip), _CHUNK)]


async def groups_on(
    *, session: AsyncSession, today: date, tz: ZoneInfo, warm_days: int, vip: bool = True
) -> Groups:
    """The groups as of the local day `today`; `vip=False` spares ranking the spend of the
    year when VIP is not asked for."""
    ranking = await vip_clients(session=session, today=today, tz=tz) if vip else None
    return Groups(today, tz, warm_days, ranking)


async def group_size(*, session: AsyncSession, groups: Groups, group: Group) -> int:
    where = groups.where(group)
    if where is None:
        return len(groups.vip_ranking())
    count = await session.exec(select(func.count()).select_from(Client).where(*where))
    return int(count.one())


async def group_page(
    *, session: AsyncSession, groups: Groups, group: Group, offset: int, limit: int
) -> tuple[int, list[ClientHit]]:
    """A page of the group: how many clients it has, and these, the most recent visit
    first (VIP: the biggest spender first)."""
    connection = await session.connection()
    where = groups.where(group)
    if where is None:
        vip = groups.vip_ranking()
        chosen = vip[offset : offset + limit]
        rows = await connection.execute(sa_select(*_HIT_COLUMNS).where(col(Client.id).in_(chosen)))
        hits = {hit.id: hit for hit in map(_hit, rows.all())}
        return len(vip), [hits[i] for i in chosen if i in hits]
    total = (await connection.execute(sa_select(func.count()).where(*where))).scalar_one()
    rows = await connection.execute(
        sa_select(*_HIT_COLUMNS).where(*where).order_by(*_RECENT_FIRST).offset(offset).limit(limit)
    )
    return int(total), [_hit(row) for row in rows.all()]
