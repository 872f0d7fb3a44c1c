"""Rules about a client that both the planner (in SQL, over many clients) and the composer
(in Python, for one message about to go) apply. Each rule is written here once, as a SQL
expression and the query that uses the same expression for one client, so the two cannot
drift apart. docs/retention.md ("Guards") says why each exists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import ACTIVE_VISIT, Client, Visit


def open_visit_sql() -> Any:
    """The client has an open visit: booked or confirmed and not yet marked completed,
    no-show or cancelled, whether its start is ahead or has just passed (the client may be
    sitting in the chair). Such a client gets no nudge, gift or win-back."""
    return exists().where(
        col(Visit.client_id) == col(Client.id),
        col(Visit.status).in_(ACTIVE_VISIT),
    )


async def has_open_visit(*, session: AsyncSession, client_id: int) -> bool:
    query = select(col(Client.id)).where(col(Client.id) == client_id, open_visit_sql())
    return (await session.exec(query)).first() is not None
