"""The rows the owner's digest and the payroll are computed from (domain/digest.py,
domain/payroll.py): what the figures need, tallied in SQL over indexes, so a digest reads a
few thousand rows however long the history is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, String, and_, case, func, or_, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.digest import (
    DigestFacts,
    DigestWindows,
    FeedbackRow,
    FirstVisit,
    VisitRow,
    WeekPoint,
    WinbackDecision,
    WinbackOutcome,
)
from domain.payroll import PaidVisit
from domain.retention import Segment
from storage.guards import open_visit_sql
from storage.tables import Client, Feedback, Outbox, OutboxStatus, Visit, VisitStatus
from storage.types import Money, UTCDateTime


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


_TIMESTAMP, _MONEY = UTCDateTime(), Money()
_NO_DIALECT: Any = None  # the conversions do not depend on the database


@lru_cache(maxsize=1 << 14)
def _instant(raw: Any) -> Any:
    return _TIMESTAMP.process_result_value(raw, _NO_DIALECT)


@lru_cache(maxsize=1 << 12)
def _money(raw: Any) -> Any:
    return _MONEY.process_result_value(raw, _NO_DIALECT)


# The visits the figures count; a booked or confirmed one counts in none.
_CLOSED = (VisitStatus.completed, VisitStatus.no_show, VisitStatus.cancelled)


async def digest_visits(*, session: AsyncSession, start: datetime, end: datetime) -> list[VisitRow]:
    """Every completed, no-show or cancelled visit starting in [start, end), with the
    client's previous completed visit (one probe per completed visit on the (client,
    status, start) index)."""
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
        .where(
            col(Visit.status).in_(_CLOSED),
            col(Visit.starts_at) >= start,
            col(Visit.starts_at) < end,
        )
        .cte("period_visit")
        .prefix_with("MATERIALIZED")
    )
    previous = aliased(Visit)
    # Raw values, converted below by the columns' own conversions, memoised: visits start
    # on a few slot times and cost a few prices, and SQLAlchemy's per-value processing
    # would take longer than the query.
    query = sa_select(
        window.c.id,
        window.c.client_id,
        window.c.master_id,
        type_coerce(window.c.starts_at, String),
        window.c.status,
        type_coerce(window.c.price, BigInteger),
        type_coerce(col(previous.starts_at), String),
        col(previous.master_id),
        type_coerce(col(previous.price), BigInteger),
    ).outerjoin(previous, col(previous.id) == window.c.previous_id)
    rows = await (await session.connection()).execute(query)
    return [
        VisitRow(
            id=visit_id,
            client_id=client_id,
            master_id=master_id,
            starts_at=_instant(starts_at),
            status=status,
            price=_money(price),
            previous_at=_instant(previous_at),
            previous_master_id=previous_master,
            previous_price=_money(previous_price),
        )
        for (
            visit_id,
            client_id,
            master_id,
            starts_at,
            status,
            price,
            previous_at,
            previous_master,
            previous_price,
        ) in rows.all()
    ]


def _completed(visit: Any = Visit) -> Any:
    return col(visit.status) == VisitStatus.completed


def _first_completed_after(client_id: Any, after: Any, until: datetime) -> Any:
    """The start of the client's first completed visit after `after` and before `until`."""
    other = aliased(Visit)
    return (
        sa_select(func.min(col(other.starts_at)))
        .where(
            col(other.client_id) == client_id,
            _completed(other),
            col(other.starts_at) > after,
            col(other.starts_at) < until,
        )
        .scalar_subquery()
    )


async def segment_counts(*, session: AsyncSession, windows: DigestWindows) -> dict[Segment, int]:
    """The clients of the base as of D (created before it, not deleted) by segment, from the
    last completed visit before D (`segment_of`'s lines, drawn at `windows`' instants)."""
    # The client's last completed visit is kept on the client row (storage/stats.py); only a
    # client who came on or after D needs the index probed for the one before it.
    before_end = (
        sa_select(func.max(col(Visit.starts_at)))
        .where(
            col(Visit.client_id) == col(Client.id),
            _completed(),
            col(Visit.starts_at) < windows.end,
        )
        .scalar_subquery()
    )
    last_at = case(
        (col(Client.last_visit_at) < windows.end, col(Client.last_visit_at)),
        (col(Client.last_visit_at).is_(None), None),
        else_=before_end,
    )
    hot = last_at >= windows.hot_since
    warm = and_(~hot, last_at >= windows.warm_since)
    # Sums, not GROUP BY: one pass over the clients, no sorting.
    row = (
        await (await session.connection()).execute(
            sa_select(
                func.count(),
                func.count(last_at),
                func.sum(case((hot, 1), else_=0)),
                func.sum(case((warm, 1), else_=0)),
            ).where(col(Client.deleted_at).is_(None), col(Client.created_at) < windows.end)
        )
    ).one()
    clients, came, hot_count, warm_count = (int(value or 0) for value in row)
    return {
        Segment.hot: hot_count,
        Segment.warm: warm_count,
        Segment.sleeping: came - hot_count - warm_count,
        Segment.prospect: clients - came,
    }


async def first_visits(*, session: AsyncSession, windows: DigestWindows) -> list[FirstVisit]:
    """The first completed visits ever in the cohort's days (kept on the client row), each
    with the client's next completed visit before D."""
    first = col(Client.first_visit_at)
    query = sa_select(
        col(Client.id), first, _first_completed_after(col(Client.id), first, windows.end)
    ).where(first >= windows.cohort.start, first < windows.cohort.end)
    rows = await (await session.connection()).execute(query)
    return [FirstVisit(*row) for row in rows.all()]


async def winback_outcomes(
    *, session: AsyncSession, windows: DigestWindows
) -> list[WinbackOutcome]:
    """Win-backs sent or held out, decided (planned) in the measured days, each with the
    client's first completed visit after the decision and before D."""
    query = sa_select(
        col(Outbox.client_id),
        col(Outbox.due_at),
        col(Outbox.status),
        _first_completed_after(col(Outbox.client_id), col(Outbox.due_at), windows.end),
    ).where(
        col(Outbox.kind) == "winback",
        col(Outbox.status).in_((OutboxStatus.sent, OutboxStatus.held_out)),
        col(Outbox.due_at) >= windows.winbacks.start,
        col(Outbox.due_at) < windows.winbacks.end,
    )
    rows = await (await session.connection()).execute(query)
    return [
        WinbackOutcome(WinbackDecision(client_id, due_at, status == OutboxStatus.held_out), back)
        for client_id, due_at, status, back in rows.all()
        if client_id is not None
    ]


async def revenue_spread(*, session: AsyncSession, windows: DigestWindows) -> dict[Decimal, int]:
    """How many clients brought each amount over the year before D (completed visits)."""
    # Money is an integer column of minor units: the sums are exact. The (status, starts_at,
    # client_id, price) index holds all of it: no table row is read.
    per_client = (
        sa_select(type_coerce(func.sum(col(Visit.price)), BigInteger).label("revenue"))
        .where(
            _completed(),
            col(Visit.starts_at) >= windows.year_start,
            col(Visit.starts_at) < windows.end,
        )
        .group_by(col(Visit.client_id))
        .subquery()
    )
    rows = await (await session.connection()).execute(
        sa_select(per_client.c.revenue, func.count()).group_by(per_client.c.revenue)
    )
    return {Decimal(minor).scaleb(-2): clients for minor, clients in rows.all()}


async def _per_week(
    session: AsyncSession, windows: DigestWindows, moment: Any, *where: Any
) -> dict[int, int]:
    """How many rows fall in each of the chart's weeks by `moment` (the week's index)."""
    starts = [start for _, start in windows.week_starts]
    week = case(
        *((moment < end, index) for index, end in enumerate(starts[1:])),
        else_=len(starts) - 1,
    )
    # Grouped by the column of a subquery: PostgreSQL would not match a CASE with bound
    # values in GROUP BY to the one in the select list.
    weeks = (
        sa_select(week.label("week"))
        .where(*where, moment >= starts[0], moment < windows.end)
        .subquery()
    )
    rows = await (await session.connection()).execute(
        sa_select(weeks.c.week, func.count()).group_by(weeks.c.week)
    )
    return {index: count for index, count in rows.all()}


async def week_points(*, session: AsyncSession, windows: DigestWindows) -> list[WeekPoint]:
    """The chart: each week's completed visits (from the (status, start, …) index), and the
    new clients among them: those whose first completed visit ever it was."""
    completed = await _per_week(session, windows, col(Visit.starts_at), _completed())
    new = await _per_week(session, windows, col(Client.first_visit_at))
    return [
        WeekPoint(day, new.get(index, 0), completed.get(index, 0) - new.get(index, 0))
        for index, (day, _) in enumerate(windows.week_starts)
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


async def digest_facts(*, session: AsyncSession, windows: DigestWindows) -> DigestFacts:
    """Everything a digest reads, reduced in SQL (domain/digest.py `DigestFacts`): the last
    two weeks' visits and ratings as rows, the rest as tallies, however long the history."""
    return DigestFacts(
        visits=await digest_visits(session=session, start=windows.visits.start, end=windows.end),
        feedback=await digest_feedback(
            session=session, start=windows.period_start, end=windows.end
        ),
        segments=await segment_counts(session=session, windows=windows),
        first_visits=await first_visits(session=session, windows=windows),
        winbacks=await winback_outcomes(session=session, windows=windows),
        revenues=await revenue_spread(session=session, windows=windows),
        weeks=await week_points(session=session, windows=windows),
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
