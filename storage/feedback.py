"""Ratings and complaints in the database: a complaint with what staff need to act on
it, the open ones, who is alerted, and the alert rows of the outbox."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.feedback import Complaint
from storage.entities import FEEDBACK
from storage.outbox import enqueue
from storage.prepared import Prepared, any_of, items
from storage.staff import staff_with_chats
from storage.tables import (
    Client,
    Feedback,
    FeedbackStatus,
    Role,
    Visit,
    VisitStatus,
)

ServiceTitle = Callable[[Visit], str]
MasterName = Callable[[int], str]


async def feedback_of_visit(*, session: AsyncSession, visit_id: int) -> Feedback | None:
    return (await session.exec(select(Feedback).where(Feedback.visit_id == visit_id))).first()


async def ratings_of(*, session: AsyncSession, visit_ids: Iterable[int]) -> dict[int, Feedback]:
    ids = list(visit_ids)
    if not ids:
        return {}
    rows = await _ratings_query(len(ids)).load_all(session, FEEDBACK, **items("visit", ids))
    return {row.visit_id: row for row in rows}


@lru_cache(maxsize=16)
def _ratings_query(visits: int) -> Prepared:
    return Prepared(
        lambda: select(*FEEDBACK.columns).where(any_of(col(Feedback.visit_id), "visit", visits))
    )


async def complaint_of(
    *,
    session: AsyncSession,
    feedback: Feedback,
    service_title: ServiceTitle,
    master_name: MasterName,
) -> Complaint | None:
    """The complaint with its visit and the client's history; None when the visit or the
    client is gone (a client who erased their data included)."""
    visit = await session.get(Visit, feedback.visit_id)
    client = await session.get(Client, visit.client_id) if visit else None
    if visit is None or client is None or client.id is None or client.deleted_at is not None:
        return None
    first = await session.exec(
        select(func.min(Visit.starts_at)).where(
            Visit.client_id == client.id, Visit.status == VisitStatus.completed
        )
    )
    return Complaint(
        feedback_id=feedback.id or 0,
        rating=feedback.rating,
        comment=feedback.comment,
        given_at=feedback.created_at,
        client_id=client.id,
        client=client.name,
        phone=client.phone,
        service=service_title(visit),
        master=master_name(visit.master_id),
        visit_start=visit.starts_at,
        visits=client.completed_visits,
        first_visit=first.one(),
        last_visit=client.last_visit_at,
    )


async def open_complaints(*, session: AsyncSession, limit: int = 10) -> tuple[list[Feedback], int]:
    """The oldest open complaints first (at most `limit`), and how many are open in all."""
    query = select(Feedback).where(Feedback.status == FeedbackStatus.open)
    rows = await session.exec(query.order_by(col(Feedback.created_at)).limit(limit))
    total = await session.exec(
        select(func.count()).where(col(Feedback.status) == FeedbackStatus.open)
    )
    return list(rows.all()), int(total.one())


async def alerted_staff(*, session: AsyncSession, repeat: bool = False) -> list[int]:
    """Who gets a complaint alert: the owner and every administrator with a Telegram chat.
    A repeat goes to the owner (to the administrators when no owner has a chat)."""
    people = [
        (person.id, person.role)
        for person in await staff_with_chats(session=session)
        if person.id is not None and person.role in (Role.owner, Role.admin)
    ]
    owners = [staff_id for staff_id, role in people if role == Role.owner]
    if repeat and owners:
        return sorted(owners)
    return sorted(staff_id for staff_id, _ in people)


def alert_row(
    *, feedback_id: int, staff_id: int, due_at: datetime, stage: str | int
) -> dict[str, Any]:
    """One complaint alert to one member of staff. `stage` is 0 for the first alert, n for
    the repeat n days later, "comment" for a comment that came after the first one."""
    return {
        "kind": "complaint_alert",
        "staff_id": staff_id,
        "channel": "telegram",
        "due_at": due_at,
        "dedupe_key": f"complaint_alert:feedback:{feedback_id}:{stage}:staff:{staff_id}",
        "payload": {"feedback_id": feedback_id, "stage": stage},
    }


async def alert_now(
    *,
    session: AsyncSession,
    feedback: Feedback,
    now: datetime,
    staff: Iterable[int],
    stage: str | int = 0,
) -> int:
    """Alert these members of staff (`alerted_staff`) of this complaint at once; how many
    alerts are new (0 when this stage was alerted before)."""
    await session.flush()
    rows = [
        alert_row(feedback_id=feedback.id or 0, staff_id=staff_id, due_at=now, stage=stage)
        for staff_id in staff
    ]
    return await enqueue(session=session, rows=rows, now=now)
