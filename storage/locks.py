"""Locks between replicas on one PostgreSQL database (advisory locks; on SQLite one process
writes at a time anyway and these always succeed)."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

# Transaction-level advisory lock of the planner (the one-bigint form, apart from the
# poller's two-int locks in bot/app.py).
PLANNER_LOCK = 0x5245_4755_0000_0001  # "REGU", 1


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
