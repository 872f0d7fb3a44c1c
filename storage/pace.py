"""Sending slots booked in the database, so that several replicas together keep one
messenger account's pace (scheduler/sender.py, SharedPacer).

One statement books a block: the row's next free slot moves on by the block's length from
whichever is later, itself or the server's clock now, and the answer is how far from now the
block starts. The row lock of that statement orders the replicas; the server's clock is the
one ruler they share (their own clocks may differ by a few milliseconds, and a process's
monotonic clock means nothing to another)."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

# Seconds on the server's clock: PostgreSQL's clock_timestamp() moves within a
# transaction (now() would not); SQLite's julianday('now') has millisecond steps.
_SERVER_SECONDS = {
    "postgresql": "EXTRACT(EPOCH FROM clock_timestamp())::float8",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_LATER = {"postgresql": "GREATEST", "sqlite": "MAX"}


def _statement(dialect: str, next_at: str) -> str:
    """The booking statement, its new `next_at` written with {later} and {clock}."""
    template = (
        "INSERT INTO send_pace (channel, next_at) VALUES (:channel, {clock} + :span) "
        f"ON CONFLICT (channel) DO UPDATE SET next_at = {next_at} "
        "RETURNING next_at - :span - {clock}"
    )
    return template.format(clock=_SERVER_SECONDS[dialect], later=_LATER[dialect])


async def book_slots(*, session: AsyncSession, channel: str, span: float) -> float:
    """Book the next `span` seconds of the channel's sending time; returns how many seconds
    from now they start (0 when at once)."""
    dialect = session.get_bind().dialect.name
    statement = _statement(dialect, "{later}(send_pace.next_at, {clock}) + :span")
    ahead = await session.scalar(text(statement), {"channel": channel, "span": span})
    return max(0.0, float(ahead or 0.0))


async def pause_sending(*, session: AsyncSession, channel: str, seconds: float) -> None:
    """No replica books a slot of the channel in the next `seconds` (the messenger asked
    for a pause: it counts the bot's messages, not a replica's)."""
    dialect = session.get_bind().dialect.name
    statement = _statement(dialect, "{later}(send_pace.next_at, {clock} + :span)")
    await session.scalar(text(statement), {"channel": channel, "span": seconds})
