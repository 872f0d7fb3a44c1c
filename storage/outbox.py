"""The outbox: planned messages, written once per dedupe key, claimed and settled by the
sender."""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any

from sqlalchemy import Date, String, and_, cast, exists, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.business import BusinessConfig
from storage.sqltime import iso_date
from storage.tables import ChurnReason, Outbox, OutboxStatus, Visit

LIVE = (OutboxStatus.pending, OutboxStatus.sending, OutboxStatus.sent)
_ROW_DEFAULTS: dict[str, Any] = {
    "client_id": None,
    "staff_id": None,
    "channel": None,
    "campaign": None,
    "last_error": None,
    "payload": {},
    "status": OutboxStatus.pending,
}


async def enqueue(
    *, session: AsyncSession, rows: Sequence[dict[str, Any]], now: datetime, count: bool = True
) -> int:
    """Insert the rows whose dedupe key is new; a key planned before is left alone, so
    planning the same minute twice (or after a restart) creates nothing. Returns how many
    rows were new (`count=False`: 0, and the rows go as one executemany, without the
    RETURNING that counting needs — the planner's many rows, checked for their keys)."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # A multi-row INSERT needs every row to name the same columns: staff messages have no
    # client, offers have a campaign, skipped ones a reason.
    values = [{**_ROW_DEFAULTS, **row} for row in rows]
    # One statement run for many rows (executemany): compiled once, however many rows.
    # RETURNING names the rows really inserted, on every backend (asyncpg reports no
    # rowcount for a batch); SQLAlchemy still sends the batch in few statements.
    statement = insert(Outbox).on_conflict_do_nothing(index_elements=["dedupe_key"])
    connection = await session.connection()
    values = [{"attempts": 0, "created_at": now, **value} for value in values]
    if not count:
        await connection.execute(statement, values)
        return 0
    result = await connection.execute(statement.returning(col(Outbox.id)), values)
    return len(result.all())


async def enqueue_for_visit(
    *, session: AsyncSession, kind: str, visit: Visit, now: datetime, key: str = "", **payload: Any
) -> int:
    """A message about one visit to its client, due now, once per visit (`key` tells apart
    several of one kind, such as each move of a visit). Returns 1 when it is new."""
    row = {
        "kind": kind,
        "client_id": visit.client_id,
        "due_at": now,
        "dedupe_key": f"{kind}:visit:{visit.id}{key}",
        "payload": {"visit_id": visit.id, **payload},
    }
    return await enqueue(session=session, rows=[row], now=now)


def dedupe_key(*parts: object) -> str:
    """A message's key for its purpose, its parts joined by ":" (a date as YYYY-MM-DD):
    `dedupe_key("care_tip:visit", 812)` is "care_tip:visit:812". `dedupe_key_sql` writes
    the same text in SQL, so a query can tell what was planned already."""
    return ":".join(str(part) for part in parts)


def dedupe_key_sql(*parts: Any) -> Any:
    """`dedupe_key` in SQL: the parts are text, numbers and dates, or integer and date
    columns."""
    segments: list[Any] = []
    text = ""
    for number, part in enumerate(parts):
        text += ":" if number else ""
        if isinstance(part, str | int | date):
            text += str(part)
            continue
        if text:
            segments.append(literal(text, String))
            text = ""
        segments.append(iso_date(part) if isinstance(part.type, Date) else cast(part, String))
    if text:
        segments.append(literal(text, String))
    return reduce(operator.add, segments)


def planned_sql(key: Any) -> Any:
    """A message with this key is in the outbox, whatever became of it: `planned_keys`
    inside a query, one index probe per row."""
    planned = aliased(Outbox, name="planned")
    return exists().where(col(planned.dedupe_key) == key)


async def planned_keys(*, session: AsyncSession, keys: Iterable[str]) -> set[str]:
    wanted = list(keys)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        result = await session.exec(
            select(Outbox.dedupe_key).where(col(Outbox.dedupe_key).in_(chunk))
        )
        found.update(result.all())
    return found


async def marketing_times(
    *, session: AsyncSession, client_ids: Iterable[int], kinds: Iterable[str], since: datetime
) -> dict[int, list[datetime]]:
    """When each client got (or is about to get) marketing messages since `since`."""
    times: dict[int, list[datetime]] = defaultdict(list)
    ids = list(client_ids)
    for start in range(0, len(ids), 500):
        # No status in the WHERE clause: it would tempt SQLite into the (status, due_at)
        # index and a scan of every recent message; (client_id, kind, due_at, status) is
        # the one, and answers alone.
        result = await session.exec(
            select(Outbox.client_id, Outbox.due_at, Outbox.status).where(
                col(Outbox.client_id).in_(ids[start : start + 500]),
                col(Outbox.kind).in_(list(kinds)),
                col(Outbox.due_at) > since,
            )
        )
        for client_id, due_at, status in result.all():
            if client_id is not None and status in LIVE:
                times[client_id].append(due_at)
    return times


async def next_due(*, session: AsyncSession) -> datetime | None:
    """When the earliest pending message falls due (None when nothing is pending)."""
    result = await session.exec(
        select(func.min(Outbox.due_at)).where(Outbox.status == OutboxStatus.pending)
    )
    return result.one()


async def claim_due(*, session: AsyncSession, now: datetime, limit: int) -> list[Outbox]:
    """Pending rows that are due, oldest first, marked `sending` in this transaction: one
    UPDATE … RETURNING for the whole batch.

    SQLite serialises writers (BEGIN IMMEDIATE); PostgreSQL skips rows another replica
    has locked, so two senders never claim the same row."""
    due = (
        select(col(Outbox.id))
        .where(Outbox.status == OutboxStatus.pending, col(Outbox.due_at) <= now)
        .order_by(col(Outbox.due_at), col(Outbox.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    result = await session.exec(
        update(Outbox)
        .where(col(Outbox.id).in_(due))
        .values(status=OutboxStatus.sending, claimed_at=now, attempts=col(Outbox.attempts) + 1)
        .returning(Outbox)
        .execution_options(synchronize_session=False)
    )
    # RETURNING gives the rows in no particular order.
    return sorted(result.scalars(), key=lambda row: (row.due_at, row.id or 0))


async def requeue_stale(
    *, session: AsyncSession, now: datetime, after: timedelta, max_attempts: int
) -> int:
    """Rows left `sending` by a sender that died: back to pending, to be tried once more;
    a row that has taken the sender down `max_attempts` times is given up as failed."""
    stale = (col(Outbox.status) == OutboxStatus.sending, col(Outbox.claimed_at) <= now - after)
    await session.exec(
        update(Outbox)
        .where(*stale, col(Outbox.attempts) >= max_attempts)
        .values(status=OutboxStatus.failed, last_error="the sender stopped while sending it")
    )
    result = await session.exec(update(Outbox).where(*stale).values(status=OutboxStatus.pending))
    return int(result.rowcount or 0)


Claim = tuple[int, datetime]  # an outbox row's id and when this sender claimed it
_IN_LIMIT = 500  # ids in one IN (...): well inside every database's parameter limit


def _under_claims(claims: Sequence[Claim]) -> Any:
    """Rows still `sending` under these claims: not requeued as stale and taken by another
    sender since (that would have changed `claimed_at`)."""
    by_claim: dict[datetime, list[int]] = defaultdict(list)
    for row_id, claimed_at in claims:
        by_claim[claimed_at].append(row_id)
    return and_(
        col(Outbox.status) == OutboxStatus.sending,
        or_(
            *(
                and_(col(Outbox.claimed_at) == claimed_at, col(Outbox.id).in_(ids))
                for claimed_at, ids in by_claim.items()
            )
        ),
    )


async def still_claimed(*, session: AsyncSession, claim: Claim) -> bool:
    """The row is still `sending` under this claim: nobody took it back as stale, and
    nothing settled or cancelled it meanwhile (a read, in the caller's transaction)."""
    found = await session.exec(select(Outbox.id).where(_under_claims([claim])))
    return found.first() is not None


async def renew_claims(
    *, session: AsyncSession, claims: Sequence[Claim], now: datetime
) -> set[int]:
    """Renew, in one statement per 500 rows, the claims of rows still ours (`claimed_at =
    now`): another sender takes a row back only once its claim is `STALE_AFTER` old.
    Returns the ids renewed; a row missing from them was taken over."""
    renewed: set[int] = set()
    for start in range(0, len(claims), _IN_LIMIT):
        result = await session.exec(
            update(Outbox)
            .where(_under_claims(claims[start : start + _IN_LIMIT]))
            .values(claimed_at=now)
            .returning(col(Outbox.id))
        )
        renewed.update(result.scalars())
    return renewed


async def give_back(*, session: AsyncSession, claims: Sequence[Claim], due_at: datetime) -> int:
    """Claimed rows the sender did not get to (a flood wait, a stop, quiet hours, a chat
    that must wait), back to `pending` and due at `due_at`, the claim's attempt not counted;
    one statement per 500 rows, only for rows still ours. Returns how many went back."""
    total = 0
    for start in range(0, len(claims), _IN_LIMIT):
        result = await session.exec(
            update(Outbox)
            .where(_under_claims(claims[start : start + _IN_LIMIT]))
            .values(
                status=OutboxStatus.pending,
                due_at=due_at,
                attempts=col(Outbox.attempts) - 1,
                last_error=None,
            )
        )
        total += int(result.rowcount or 0)
    return total


def winback_percent(row: Outbox, config: BusinessConfig) -> int:
    """The discount this win-back offered (rows planned before it was stored: the
    configured one)."""
    percent = row.payload.get("discount_percent")
    return percent if isinstance(percent, int) else config.offers.winback_discount_percent


async def unanswered_winback(
    *, session: AsyncSession, outbox_id: int, client_id: int
) -> Outbox | None:
    """The win-back sent to this client with this id, if it has no answer yet."""
    row = await session.get(Outbox, outbox_id)
    if row is None or row.kind != "winback" or row.client_id != client_id:
        return None
    if row.status != OutboxStatus.sent:
        return None  # held out, skipped or never sent: nothing was offered
    answered = await session.exec(select(ChurnReason.id).where(ChurnReason.outbox_id == row.id))
    return None if answered.first() is not None else row
