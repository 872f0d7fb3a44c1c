"""The async engine factory and the unit of work. Nothing is created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.text import search_form

BUSY_TIMEOUT_MS = 15_000
SEARCH_FORM = "regulars_search_form"  # domain.text.search_form, callable from SQLite's SQL


def sqlite_url_for(path: str) -> str:
    return f"sqlite+aiosqlite:///{path}"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the engine for `url`: SQLite (WAL, busy_timeout, foreign keys, write
    transactions that take the write lock up front) or PostgreSQL."""
    parsed = make_url(url)
    # SQL errors would otherwise log the statement's values: names, phones, chat ids.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if not parsed.drivername.startswith("sqlite"):
        return create_async_engine(url, pool_pre_ping=True, **kwargs)

    in_memory = parsed.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every session would see its own empty database.
        kwargs["poolclass"] = StaticPool
    kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
    engine = create_async_engine(url, **kwargs)
    _configure_sqlite(engine, in_memory=in_memory)
    return engine


def _configure_sqlite(engine: AsyncEngine, *, in_memory: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how a transaction starts (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        # SQLite's lower() knows only ASCII: a search folds Cyrillic names with Python's.
        dbapi_connection.create_function(SEARCH_FORM, 1, search_form, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A write transaction takes the write lock at BEGIN: two writers queue on
        # busy_timeout instead of deadlocking when both try to upgrade a read lock.
        if connection.get_execution_options().get("read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engine plus the two ways in: a write unit of work and a read-only one."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(read_only=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back on error."""
        async with (
            AsyncSession(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction (no write lock on SQLite)."""
        async with (
            AsyncSession(self._reader, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
