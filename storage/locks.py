"""Locks between replicas on one PostgreSQL database (advisory locks; on SQLite one process
writes at a time anyway and these always succeed)."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

# The advisory lock keys of Regulars, "REGU". The poller's session lock (bot/app.py) is
# the two-int form (this space, the bot's id); the planner's transaction lock the
# one-bigint form, which PostgreSQL keeps apart from the two-int ones.
POLLER_LOCK_SPACE = 0x5245_4755
PLANNER_LOCK = 0x5245_4755_0000_0001


async def planner_turn(session: AsyncSession) -> bool:
    """Whether this replica may plan now: False while another one's pass is running. The
    lock ends with the transaction; the other replica's pass plans the same minute, so
    skipping it loses nothing, and two passes never read the same candidates at once."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    taken = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PLANNER_LOCK}
    )
    return bool(taken)
