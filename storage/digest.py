"""The rows the owner's digest and the payroll are computed from (domain/digest.py,
domain/payroll.py): only the date ranges they need, a handful of indexed queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, String, and_, case, func, or_, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.digest import ClientRow, FeedbackRow, History, VisitRow, WinbackDecision
from domain.payroll import PaidVisit
from storage.guards import open_visit_sql
from storage.tables import Client, Feedback, Outbox, OutboxStatus, Visit, VisitStatus
from storage.types import UTCDateTime

_TIMESTAMP = UTCDateTime()
_NO_DIALECT: Any = None  # the conversions below do not depend on the database


def _neighbour_id(*, later: bool, until: datetime | None = None) -> object:
    """The id of the client's completed visit just before (or after) the outer one. Ties on
    the same instant cannot happen: a client cannot be in two chairs at once."""
    other = aliased(Visit)
    if later:
        order, where = col(other.starts_at).asc(), col(other.starts_at) > col(Visit.starts_at)
    else:
        order, where = col(other.starts_at).desc(), col(other.starts_at) < col(Visit.starts_at)
    query = sa_select(col(other.id)).where(
        col(other.client_id) == col(Visit.client_id),
        col(other.status) == VisitStatus.completed,
        where,
    )
    if until is not None:
        query = query.where(col(other.starts_at) < until)
    return query.order_by(order).limit(1).correlate(Visit).scalar_subquery()


async def digest_visits(*, session: AsyncSession, start: datetime, end: datetime) -> list[VisitRow]:
    """Every visit starting in [start, end), with the client's previous completed visit
    (one probe per completed visit on the (client, status, start) index)."""
    # MATERIALIZED: inlined, SQLite would run the probe once per use of its result.
    window = (
        sa_select(
            col(Visit.id),
            col(Visit.client_id),
            col(Visit.master_id),
            col(Visit.starts_at),
            col(Visit.status),
            col(Visit.price),
            case(
                (col(Visit.status) == VisitStatus.completed, _neighbour_id(later=False)),
            ).label("previous_id"),
        )
        .where(col(Visit.starts_at) >= start, col(Visit.starts_at) < end)
        .cte("period_visit")
        .prefix_with("MATERIALIZED")
    )
    previous = aliased(Visit)
    query = sa_select(
        window,
        col(previous.starts_at),
        col(previous.master_id),
        col(previous.price),
    ).outerjoin(previous, col(previous.id) == window.c.previous_id)
    rows = await (await session.connection()).execute(query)
    return [
        VisitRow(
            id=visit_id,
            client_id=client_id,
            master_id=master_id,
            starts_at=starts_at,
            status=status,
            price=price,
            previous_at=previous_at,
            previous_master_id=previous_master,
            previous_price=previous_price,
        )
        for (
            visit_id,
            client_id,
            master_id,
            starts_at,
            status,
            price,
            _,
            previous_at,
            previous_master,
            previous_price,
        ) in rows.all()
    ]


async def digest_clients(
    *, session: AsyncSession, end: datetime, year_start: datetime
) -> list[ClientRow]:
    """Each client's last completed visit before `end` and revenue over [year_start, end);
    `in_base`: created before `end` and not deleted."""
    connection = await session.connection()
    # The client's last completed visit is kept on the client row (storage/stats.py); only a
    # client who came on or after `end` needs the index probed for the one before it.
    before_end = (
        sa_select(func.max(col(Visit.starts_at)))
        .where(
            col(Visit.client_id) == col(Client.id),
            col(Visit.status) == VisitStatus.completed,
            col(Visit.starts_at) < end,
        )
        .scalar_subquery()
    )
    last_at = case(
        (col(Client.last_visit_at) < end, col(Client.last_visit_at)),
        (col(Client.last_visit_at).is_(None), None),
        else_=before_end,
    )
    last = await connection.execute(
        sa_select(
            col(Client.id),
            # Raw values, converted below: SQLAlchemy's per-value processing of 100,000 rows
            # would take longer than the query.
            type_coerce(last_at, String),
            and_(col(Client.deleted_at).is_(None), col(Client.created_at) < end),
        )
    )
    last_visit: dict[int, datetime | None] = {}
    in_base: set[int] = set()
    for client_id, stamp, counted in last.all():
        if client_id is None:
            continue
        last_visit[client_id] = _TIMESTAMP.process_result_value(stamp, _NO_DIALECT)
        if counted:
            in_base.add(client_id)
    # Money is an integer column of minor units: the sum is exact.
    total = type_coerce(func.sum(col(Visit.price)), BigInteger)
    revenue = await connection.execute(
        sa_select(col(Visit.client_id), total)
        .where(
            col(Visit.status) == VisitStatus.completed,
            col(Visit.starts_at) >= year_start,
            col(Visit.starts_at) < end,
        )
        .group_by(col(Visit.client_id))
    )
    revenues: dict[int, Decimal] = {
        client_id: Decimal(minor).scaleb(-2) for client_id, minor in revenue.all()
    }
    return [
        ClientRow(
            id=client_id,
            in_base=client_id in in_base,
            last_completed_at=last_visit.get(client_id),
            revenue_last_year=revenues.get(client_id),
        )
        for client_id in last_visit.keys() | revenues.keys()
    ]


async def digest_feedback(
    *, session: AsyncSession, start: datetime, end: datetime
) -> list[FeedbackRow]:
    """Feedback given in [start, end), and complaints given before `end` that were still
    open then."""
    query = (
        sa_select(
            col(Feedback.visit_id),
            col(Visit.master_id),
            col(Feedback.rating),
            col(Feedback.status),
            col(Feedback.created_at),
            col(Feedback.resolved_at),
            col(Client.name),
            col(Feedback.comment),
        )
        .join(Visit, col(Visit.id) == col(Feedback.visit_id))
        .join(Client, col(Client.id) == col(Visit.client_id))
        .where(
            col(Feedback.created_at) < end,
            or_(
                col(Feedback.created_at) >= start,
                and_(
                    col(Feedback.status) != "ok",
                    or_(col(Feedback.resolved_at).is_(None), col(Feedback.resolved_at) >= end),
                ),
            ),
        )
    )
    rows = await (await session.connection()).execute(query)
    return [FeedbackRow(*row) for row in rows.all()]


async def winback_decisions(
    *, session: AsyncSession, start: datetime, end: datetime
) -> list[WinbackDecision]:
    """Win-backs sent or held out, decided (planned) in [start, end)."""
    query = sa_select(col(Outbox.client_id), col(Outbox.due_at), col(Outbox.status)).where(
        col(Outbox.kind) == "winback",
        col(Outbox.status).in_((OutboxStatus.sent, OutboxStatus.held_out)),
        col(Outbox.due_at) >= start,
        col(Outbox.due_at) < end,
    )
    rows = await (await session.connection()).execute(query)
    return [
        WinbackDecision(client_id, due_at, status == OutboxStatus.held_out)
        for client_id, due_at, status in rows.all()
        if client_id is not None
    ]


async def digest_history(
    *,
    session: AsyncSession,
    visits_from: datetime,
    period_start: datetime,
    year_start: datetime,
    winbacks_from: datetime,
    winbacks_to: datetime,
    end: datetime,
) -> History:
    """Everything a digest ending at `end` reads, as plain rows."""
    return History(
        visits=await digest_visits(session=session, start=visits_from, end=end),
        clients=await digest_clients(session=session, end=end, year_start=year_start),
        feedback=await digest_feedback(session=session, start=period_start, end=end),
        winbacks=await winback_decisions(session=session, start=winbacks_from, end=winbacks_to),
    )


async def paid_visits(
    *, session: AsyncSession, start: datetime, end: datetime, until: datetime
) -> list[PaidVisit]:
    """Completed visits starting in [start, end), each with the client's previous completed
    visit and the next one before `until`."""
    window = (
        sa_select(
            col(Visit.master_id),
            col(Visit.starts_at),
            col(Visit.price),
            _neighbour_id(later=False).label("previous_id"),  # type: ignore[attr-defined]
            _neighbour_id(later=True, until=until).label("next_id"),  # type: ignore[attr-defined]
        )
        .where(
            col(Visit.status) == VisitStatus.completed,
            col(Visit.starts_at) >= start,
            col(Visit.starts_at) < end,
        )
        .subquery()
    )
    previous, following = aliased(Visit), aliased(Visit)
    query = (
        sa_select(
            window.c.master_id,
            window.c.starts_at,
            window.c.price,
            col(previous.starts_at),
            col(following.starts_at),
        )
        .outerjoin(previous, col(previous.id) == window.c.previous_id)
        .outerjoin(following, col(following.id) == window.c.next_id)
    )
    rows = await (await session.connection()).execute(query)
    return [PaidVisit(*row) for row in rows.all()]


@dataclass(frozen=True, slots=True)
class DueClient:
    name: str
    phone: str | None
    due: date


async def due_without_booking(
    *, session: AsyncSession, first: date, last: date, limit: int = 5
) -> tuple[int, list[DueClient]]:
    """Clients whose predicted next visit falls in [first, last] and who have nothing
    booked: how many, and the first `limit` of them by that date."""
    due = and_(
        col(Client.deleted_at).is_(None),
        col(Client.next_visit_due) >= first,
        col(Client.next_visit_due) <= last,
        ~open_visit_sql(),
    )
    connection = await session.connection()
    total = (await connection.execute(sa_select(func.count()).where(due))).scalar_one()
    rows = await connection.execute(
        sa_select(col(Client.name), col(Client.phone), col(Client.next_visit_due))
        .where(due)
        .order_by(col(Client.next_visit_due), col(Client.id))
        .limit(limit)
    )
    return int(total), [DueClient(name, phone, day or first) for name, phone, day in rows.all()]
