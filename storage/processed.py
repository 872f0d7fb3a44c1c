"""Inbound message ids already handled (WhatsApp wamids, Telegram update ids): a retry or
a replay of one is not answered twice. The id is recorded in the transaction of its turn,
so a turn that failed leaves no trace and its retry is handled."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import ProcessedMessage

KEY_LENGTH = 128  # the column's size


def message_key(message_id: str) -> str:
    # wamids are about 60 characters; anything longer is hashed to fit the column.
    if len(message_id) <= KEY_LENGTH:
        return message_id
    return hashlib.sha256(message_id.encode()).hexdigest()


async def mark_handled(
    session: AsyncSession, *, channel: str, message_id: str, now: datetime
) -> bool:
    """Record the message as handled in this transaction; False when it already was. The
    insert is a savepoint of its own, so a duplicate leaves the transaction usable."""
    seen = ProcessedMessage(channel=channel, message_id=message_key(message_id), received_at=now)
    try:
        async with session.begin_nested():
            session.add(seen)
    except IntegrityError:
        return False
    return True


async def forget_handled(session: AsyncSession, *, channel: str, before: datetime) -> None:
    """Drop ids recorded before `before`: no retry comes that late."""
    await session.exec(
        delete(ProcessedMessage).where(
            col(ProcessedMessage.channel) == channel,
            col(ProcessedMessage.received_at) < before,
        )
    )
