"""Inbound message ids already handled (WhatsApp wamids, Telegram update ids): a retry or
a replay of one is not answered twice. The id is recorded in the transaction of its turn,
so a turn that failed leaves no trace and its retry is handled."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.prepared import Prepared
from storage.tables import ProcessedMessage

KEY_LENGTH = 128  # the column's size


def message_key(message_id: str) -> str:
    # wamids are about 60 characters; anything longer is hashed to fit the column.
    if len(message_id) <= KEY_LENGTH:
        return message_id
    return hashlib.sha256(message_id.encode()).hexdigest()


def _insert_new(dialect: str) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING (the same words on SQLite and PostgreSQL)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = SQLModel.metadata.tables[ProcessedMessage.__tablename__]
    return insert(table).on_conflict_do_nothing()


INSERT_NEW = Prepared(build_for=_insert_new)


def record_handled(session: Session, /, *, channel: str, message_id: str, now: datetime) -> bool:
    """`mark_handled` for a caller already inside `AsyncSession.run_sync` (a turn's first
    statements run together there)."""
    inserted = INSERT_NEW.run(
        session, channel=channel, message_id=message_key(message_id), received_at=now
    )
    return inserted == 1


async def mark_handled(
    session: AsyncSession, *, channel: str, message_id: str, now: datetime
) -> bool:
    """Record the message as handled in this transaction; False when it already was. A
    duplicate inserts nothing and leaves the transaction usable (one statement, no
    savepoint)."""
    return await session.run_sync(record_handled, channel=channel, message_id=message_id, now=now)


async def forget_handled(session: AsyncSession, *, channel: str, before: datetime) -> None:
    """Drop ids recorded before `before`: no retry comes that late."""
    await session.exec(
        delete(ProcessedMessage).where(
            col(ProcessedMessage.channel) == channel,
            col(ProcessedMessage.received_at) < before,
        )
    )
