"""Staff rows: who a chat belongs to, the one-time invitations of /invite, a day's visits,
the clients staff look up and the time off they set."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.agenda import AgendaVisit
from domain.slots import Interval
from storage.tables import (
    ACTIVE_VISIT,
    Client,
    Role,
    Staff,
    StaffInvite,
    TimeOff,
    Visit,
    VisitStatus,
)

# A day's list shows what is ahead and what happened; cancelled visits are gone from it.
SHOWN_ON_AGENDA = (*ACTIVE_VISIT, VisitStatus.completed, VisitStatus.no_show)


async def staff_by_key(*, session: AsyncSession, key: str) -> Staff | None:
    found = await session.exec(select(Staff).where(Staff.key == key, col(Staff.active)))
    return found.first()


async def staff_with_chats(*, session: AsyncSession) -> list[Staff]:
    found = await session.exec(
        select(Staff).where(col(Staff.active), col(Staff.telegram_id).is_not(None))
    )
    return list(found.all())


async def create_invite(
    *,
    session: AsyncSession,
    code: str,
    role: str,
    staff_id: int | None,
    created_by: int,
    now: datetime,
    expires_at: datetime,
) -> StaffInvite:
    invite = StaffInvite(
        code=code,
        role=role,
        staff_id=staff_id,
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(invite)
    await session.flush()
    return invite


async def accept_invite(
    *, session: AsyncSession, code: str, telegram_id: int, name: str, now: datetime
) -> Staff | None:
    """Bind the chat to the invitation's role, once: the UPDATE claims the invitation only
    while it is unused and unexpired, so two people opening one link get one seat. None for
    an unknown, used or expired code, or a chat that is staff already."""
    if (await session.exec(select(Staff.id).where(Staff.telegram_id == telegram_id))).first():
        return None
    claimed = await session.exec(
        update(StaffInvite)
        .where(
            col(StaffInvite.code) == code,
            col(StaffInvite.used_at).is_(None),
            col(StaffInvite.expires_at) > now,
        )
        .values(used_at=now, used_by=telegram_id)
    )
    if claimed.rowcount != 1:
        return None
    invite = (await session.exec(select(StaffInvite).where(StaffInvite.code == code))).one()
    person = await session.get(Staff, invite.staff_id) if invite.staff_id else None
    if person is None or not person.active:
        person = Staff(
            key=f"invited-{invite.id}",
            name=name,
            role=invite.role if invite.role in (Role.master, Role.admin) else Role.master,
            source="invite",
        )
    person.telegram_id = telegram_id
    session.add(person)
    await session.flush()
    return person


async def agenda(
    *,
    session: AsyncSession,
    start: datetime,
    end: datetime,
    service_title: Callable[[Visit], str],
    master_id: int | None = None,
    statuses: Collection[str] = SHOWN_ON_AGENDA,
) -> list[AgendaVisit]:
    """The visits starting in [start, end), by start time (one master's, or everyone's),
    with what staff need to know about each client."""
    query = (
        select(Visit, Client)
        .join(Client, col(Client.id) == col(Visit.client_id))
        .where(
            col(Visit.status).in_(list(statuses)),
            col(Visit.starts_at) >= start,
            col(Visit.starts_at) < end,
        )
        .order_by(col(Visit.starts_at), col(Visit.master_id))
    )
    if master_id is not None:
        query = query.where(Visit.master_id == master_id)
    return [
        AgendaVisit(
            visit_id=visit.id or 0,
            master_id=visit.master_id,
            starts_at=visit.starts_at,
            ends_at=visit.ends_at,
            status=visit.status,
            service=service_title(visit),
            client=client.name,
            phone=client.phone,
            visits_before=max(0, client.completed_visits - (visit.status == VisitStatus.completed)),
            notes=tuple(
                n for n in (client.preference_note, client.staff_notes, visit.comment) if n
            ),
        )
        for visit, client in (await session.exec(query)).all()
    ]


async def master_visits_in(
    *,
    session: AsyncSession,
    master_id: int,
    interval: Interval,
    statuses: Collection[str] = (*ACTIVE_VISIT, VisitStatus.completed),
) -> list[Visit]:
    """The master's visits overlapping `interval`, by start: a master serves one client at
    a time, so a visit that took place counts as well as one booked."""
    query = select(Visit).where(
        Visit.master_id == master_id,
        col(Visit.status).in_(list(statuses)),
        col(Visit.starts_at) < interval.end,
        col(Visit.ends_at) > interval.start,
    )
    return list((await session.exec(query.order_by(col(Visit.starts_at)))).all())


async def time_off_in(
    *, session: AsyncSession, staff_id: int, start: datetime, end: datetime
) -> list[TimeOff]:
    """The master's time off overlapping [start, end), by start."""
    query = select(TimeOff).where(
        TimeOff.staff_id == staff_id, col(TimeOff.starts_at) < end, col(TimeOff.ends_at) > start
    )
    return list((await session.exec(query.order_by(col(TimeOff.starts_at)))).all())


async def add_time_off(
    *, session: AsyncSession, staff_id: int, start: datetime, end: datetime, reason: str
) -> TimeOff | None:
    """Record time off for [start, end); None when time off already covers all of it."""
    known = await time_off_in(session=session, staff_id=staff_id, start=start, end=end)
    if _covered(Interval(start, end), [Interval(t.starts_at, t.ends_at) for t in known]):
        return None
    row = TimeOff(staff_id=staff_id, starts_at=start, ends_at=end, reason=reason)
    session.add(row)
    await session.flush()
    return row


def _covered(wanted: Interval, known: list[Interval]) -> bool:
    reached = wanted.start
    for interval in sorted(known, key=lambda i: i.start):
        if interval.start > reached:
            return False
        reached = max(reached, interval.end)
        if reached >= wanted.end:
            return True
    return reached >= wanted.end
