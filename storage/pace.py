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
_EARLIER = {"postgresql": "LEAST", "sqlite": "MIN"}
# The furthest ahead a slot is ever booked. A pause longer than this is cut to it, and a
# `next_at` beyond it (the server's clock stepped back: NTP, a restored VM) is read as now
# plus this much, so a clock step holds sending for minutes at most, not for its length.
MAX_AHEAD_SECONDS = 900.0


def _statement(dialect: str, next_at: str) -> str:
    """The booking statement; `next_at` is the new value, written with {later}, {clock}
    and {kept} (the stored next slot, no further than MAX_AHEAD_SECONDS from now)."""
    clock = _SERVER_SECONDS[dialect]
    kept = f"{_EARLIER[dialect]}(send_pace.next_at, {clock} + :cap)"
    new = next_at.format(later=_LATER[dialect], kept=kept, clock=clock)
    return (
        f"INSERT INTO send_pace (channel, next_at) VALUES (:channel, {clock} + :span) "
        f"ON CONFLICT (channel) DO UPDATE SET next_at = {new} "
        f"RETURNING next_at - :span - {clock}"
    )


async def book_slots(*, session: AsyncSession, channel: str, span: float) -> float:
    """Book the next `span` seconds of the channel's sending time; returns how many seconds
    from now they start (0 when at once)."""
    dialect = session.get_bind().dialect.name
    statement = _statement(dialect, "{later}({kept}, {clock}) + :span")
    values = {"channel": channel, "span": span, "cap": MAX_AHEAD_SECONDS}
    ahead = await session.scalar(text(statement), values)
    return max(0.0, float(ahead or 0.0))


async def pause_sending(*, session: AsyncSession, channel: str, seconds: float) -> None:
    """No replica books a slot of the channel in the next `seconds` (the messenger asked
    for a pause: it counts the bot's messages, not a replica's)."""
    dialect = session.get_bind().dialect.name
    statement = _statement(dialect, "{later}({kept}, {clock} + :span)")
    values = {"channel": channel, "span": min(seconds, MAX_AHEAD_SECONDS), "cap": MAX_AHEAD_SECONDS}
    await session.scalar(text(statement), values)
