"""What is kept about a client, for /mydata, and its erasure, for /forget (152-FZ / GDPR):
the person's data goes, the anonymous visit rows stay for the statistics."""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import (
    ChurnReason,
    Client,
    ClientIdentity,
    Conversation,
    Feedback,
    Outbox,
    OutboxStatus,
    Visit,
)

log = logging.getLogger(__name__)

ERASED_NAME = "—"
KEPT_CHURN_ANSWERS = ("moved", "price", "quality", "time", "other")  # codes, not text
LAST_MESSAGES = 50


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(row: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: _plain(v) for k, v in row.model_dump().items() if k not in skip}


async def personal_data(*, session: AsyncSession, client_id: int) -> dict[str, Any]:
    """Everything stored about the client, as plain JSON values."""
    client = await session.get(Client, client_id)
    if client is None:
        return {}
    identities = await session.exec(
        select(ClientIdentity).where(ClientIdentity.client_id == client_id)
    )
    visits = (
        await session.exec(
            select(Visit).where(Visit.client_id == client_id).order_by(col(Visit.starts_at))
        )
    ).all()
    visit_ids = [v.id for v in visits]
    feedback = await session.exec(select(Feedback).where(col(Feedback.visit_id).in_(visit_ids)))
    reasons = await session.exec(select(ChurnReason).where(ChurnReason.client_id == client_id))
    messages = await session.exec(
        select(Outbox)
        .where(Outbox.client_id == client_id)
        .order_by(col(Outbox.due_at).desc())
        .limit(LAST_MESSAGES)
    )
    return {
        "client": _row(client, skip=("holdout",)),
        "chats": [_row(i, skip=("id", "client_id")) for i in identities.all()],
        "visits": [_row(v, skip=("client_id",)) for v in visits],
        "ratings": [_row(f, skip=("resolved_by_id",)) for f in feedback.all()],
        "churn_reasons": [_row(r, skip=("client_id",)) for r in reasons.all()],
        "messages": [
            {
                "kind": m.kind,
                "due_at": _plain(m.due_at),
                "status": m.status,
                "sent_at": _plain(m.sent_at),
            }
            for m in messages.all()
        ],
    }


async def erase_client(*, session: AsyncSession, client: Client, now: datetime, by: str) -> int:
    """Erase the client's personal data; returns how many pending messages were cancelled.
    The log line names the client's id and who asked, never the data."""
    assert client.id is not None
    client_id = client.id
    client.name, client.phone, client.phone_verified = ERASED_NAME, None, False
    client.birthday, client.referral_code = None, None
    client.staff_notes, client.preference_note = "", ""
    client.preferred_channel, client.preferred_time_of_day = None, None
    client.favourite_master_id = None
    client.consent_text = ""
    client.marketing_opt_in_at = None
    client.deleted_at = now
    session.add(client)
    await session.exec(delete(ClientIdentity).where(col(ClientIdentity.client_id) == client_id))
    await session.exec(delete(Conversation).where(col(Conversation.client_id) == client_id))
    await session.exec(update(Visit).where(col(Visit.client_id) == client_id).values(comment=""))
    visit_ids = select(Visit.id).where(Visit.client_id == client_id)
    await session.exec(
        update(Feedback)
        .where(col(Feedback.visit_id).in_(visit_ids))
        .values(comment="", resolution="")
    )
    await session.exec(
        update(ChurnReason)
        .where(
            col(ChurnReason.client_id) == client_id,
            col(ChurnReason.answer).not_in(KEPT_CHURN_ANSWERS),
        )
        .values(answer="other")
    )
    cancelled = await session.exec(
        update(Outbox)
        .where(
            col(Outbox.client_id) == client_id,
            col(Outbox.status).in_([OutboxStatus.pending, OutboxStatus.sending]),
        )
        .values(status=OutboxStatus.skipped, last_error="the client's data was erased")
    )
    await session.flush()
    log.info("client #%s: personal data erased on request (%s)", client_id, by)
    return int(cancelled.rowcount or 0)
