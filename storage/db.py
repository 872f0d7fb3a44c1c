"""The async engine factory and the unit of work. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.text import search_form
from storage import sqlite_driver
from storage.prepared import run_sync

BUSY_TIMEOUT_MS = 15_000
SEARCH_FORM = "regulars_search_form"  # domain.text.search_form, callable from SQLite's SQL
# SQLite URLs people write (the documented sqlite+aiosqlite://, plain sqlite://) all run on
# the bot's own driver (storage/sqlite_driver.py).
SQLITE_DRIVERS = ("sqlite", "sqlite+aiosqlite", "sqlite+pysqlite", f"sqlite+{sqlite_driver.DRIVER}")


def sqlite_url_for(path: str) -> str:
    return f"sqlite+aiosqlite:///{path}"


def driver_url(url: str | URL) -> URL:
    """The URL the engine is built on: SQLite URLs get the bot's driver."""
    parsed = make_url(url)
    if parsed.drivername in SQLITE_DRIVERS:
        return parsed.set(drivername=f"sqlite+{sqlite_driver.DRIVER}")
    return parsed


# WAL pages after which a commit checkpoints, when the process checkpoints in the
# background (`Database.checkpoint`, every few seconds in `regulars run`): a safety net only,
# above what one transaction writes (the planner's day of offers for 1,000,000 clients:
# some 28,000 pages), so the WAL stays under some 200 MB.
BACKGROUND_CHECKPOINT_PAGES = 50_000


def create_engine(
    url: str, *, echo: bool = False, background_checkpoints: bool = False
) -> AsyncEngine:
    """Build the engine for `url`: SQLite (the bot's driver; WAL, foreign keys, write
    transactions that take the write lock up front) or PostgreSQL.

    `background_checkpoints`: the process calls `Database.checkpoint` itself. SQLite's
    own checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages: it copies
    them into the database file and syncs it, some 0.1 s, on whatever commit it lands — a
    turn's, on the event loop's thread, or the planner's pass. With this, commits leave
    that to the background until the WAL passes `BACKGROUND_CHECKPOINT_PAGES`."""
    parsed = driver_url(url)
    # SQL errors would otherwise log the statement's values: names, phones, chat ids.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.get_backend_name() != "sqlite":
        # Polling hands a bot many updates at once, each turn a transaction of its own:
        # SQLAlchemy's 5 pooled connections would make the rest open and close one per
        # turn (bench.updates, 10 chats at once: p99 387 ms against 142 ms with 15).
        # 25 at most per replica leaves room for several under PostgreSQL's 100.
        return create_async_engine(
            parsed, pool_pre_ping=True, pool_size=15, max_overflow=10, **kwargs
        )

    sqlite_driver.register()
    in_memory = parsed.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every session would see its own empty database.
        kwargs["poolclass"] = StaticPool
    # How long a write waits for another process's transaction (see storage/sqlite_driver).
    kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
    engine = create_async_engine(parsed, **kwargs)
    checkpoint_pages = BACKGROUND_CHECKPOINT_PAGES if background_checkpoints else None
    _configure_sqlite(engine, in_memory=in_memory, checkpoint_pages=checkpoint_pages)
    return engine


def _configure_sqlite(
    engine: AsyncEngine, *, in_memory: bool, checkpoint_pages: int | None
) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        assert isinstance(dbapi_connection, sqlite_driver.Connection)
        if not in_memory:
            dbapi_connection.run("PRAGMA journal_mode=WAL")
            dbapi_connection.run("PRAGMA synchronous=NORMAL")
            if checkpoint_pages is not None:
                dbapi_connection.run(f"PRAGMA wal_autocheckpoint={checkpoint_pages:d}")
        dbapi_connection.run("PRAGMA foreign_keys=ON")
        # SQLite's lower() knows only ASCII: a search folds Cyrillic names with Python's.
        dbapi_connection.create_function(SEARCH_FORM, 1, search_form, deterministic=True)


LAST_STEPS = "regulars_last_steps"  # Session.info: sync steps run just before the commit


def at_commit(session: AsyncSession, step: Callable[[Session], None]) -> None:
    """Run `step` (sync) as the transaction's last statements, in the same trip to the
    database as its COMMIT (a turn saves its conversation this way)."""
    session.info.setdefault(LAST_STEPS, []).append(step)


def _last_steps(session: Session) -> None:
    for step in session.info.pop(LAST_STEPS, ()):
        step(session)


def _commit_and_close(session: Session) -> None:
    try:
        _last_steps(session)
        session.commit()
    finally:
        session.close()


class Database:
    """The engine plus the ways in: a write unit of work and a read-only one.

    On SQLite a write transaction starts with BEGIN IMMEDIATE behind an in-process write
    lock (two writers queue instead of deadlocking when both try to upgrade a read lock);
    a read-only one with a plain BEGIN."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{sqlite_driver.READ_ONLY: True})
        self._inline = engine.execution_options(**{sqlite_driver.INLINE: True})
        # Inline turns run one at a time (the write lock) on a connection of their own,
        # so a turn takes no connection from the pool and gives none back. Not with an
        # in-memory database, whose one connection every session shares.
        self._keeps_turn_connection = self.is_sqlite and not isinstance(engine.pool, StaticPool)
        self._turns: AsyncConnection | None = None
        self._connecting = asyncio.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self, *, inline: bool = False) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back on error.

        `inline`: a short transaction of indexed statements (a conversation's turn). On
        SQLite its statements run on the event loop's thread, which saves a trip to a
        worker thread per statement but holds up the loop for as long as they take; other
        transactions send each statement to a worker thread. No effect on PostgreSQL."""
        if inline and self.is_sqlite:
            async with self._inline_transaction() as session:
                yield session
            return
        async with (
            AsyncSession(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session
            if session.info.get(LAST_STEPS):
                await session.run_sync(_last_steps)

    @asynccontextmanager
    async def _inline_transaction(self) -> AsyncIterator[AsyncSession]:
        # Commit and close in one call. AsyncSession's own `async with` closes in a task of
        # its own, shielded from cancellation (three turns of the event loop); an inline
        # close cannot be interrupted, there is nothing to await in it.
        connection = await self._turn_connection() if self._keeps_turn_connection else None
        driver = None if connection is None else _driver_connection(connection)
        session = AsyncSession(connection or self._inline, expire_on_commit=False)
        try:
            try:
                yield session
            except BaseException:
                await session.close()  # rolls back
                raise
            await run_sync(session, _commit_and_close)
        finally:
            if connection is not None and driver is not None:
                try:
                    if not connection.invalidated and _unfit(connection, driver):
                        await connection.invalidate()  # the next turn makes a new one
                finally:
                    driver.let_go()

    async def _turn_connection(self) -> AsyncConnection:
        """The connection kept for inline turns, the write lock held for the turn: no other
        turn uses it meanwhile. The connection is taken first, the lock second, as every
        other transaction takes them (a pool connection, then the lock at its first
        statement): the other order could leave a turn holding the lock while it waits
        for a connection that a writer waiting for the lock holds."""
        dialect = self.engine.dialect
        assert isinstance(dialect, sqlite_driver.SQLiteDialect_regulars)
        while True:
            connection = await self._kept_connection()
            try:
                await dialect.write_lock.take(dialect.wait)
            except sqlite3.Error as error:
                raise _wrapped("BEGIN IMMEDIATE", error) from error
            if connection is self._turns and not connection.invalidated:
                driver = _driver_connection(connection)
                if not _unfit(connection, driver):
                    driver.hold()
                    try:
                        driver.begin_ahead()
                    except BaseException as error:
                        driver.let_go()
                        if isinstance(error, sqlite3.Error):
                            raise _wrapped("BEGIN IMMEDIATE", error) from error
                        raise
                    return connection
                await connection.invalidate()  # left in a transaction by a failed turn
            dialect.write_lock.release()  # dropped by the turn before: take the new one

    async def _kept_connection(self) -> AsyncConnection:
        async with self._connecting:  # two turns at start-up make one connection
            connection = self._turns
            if connection is None or connection.closed or connection.invalidated:
                if connection is not None:
                    await connection.close()
                connection = self._turns = await self._inline.connect()
            return connection

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction (no write lock on SQLite)."""
        async with (
            AsyncSession(self._reader, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    async def checkpoint(self) -> tuple[int, int] | None:
        """Copy what the WAL holds into the SQLite file, in a worker thread, waiting for no
        reader or writer (PASSIVE: what a transaction still needs stays for the next
        time); the WAL's pages and how many of them are in the file now. None when there
        is no WAL (PostgreSQL, an in-memory database) or it was busy (another checkpoint)."""
        url = self.engine.url
        if not self.is_sqlite or url.database in (None, "", ":memory:"):
            return None
        return await asyncio.to_thread(_checkpoint, url.database)

    async def dispose(self) -> None:
        if self._turns is not None:
            turns, self._turns = self._turns, None
            await turns.close()
        await self.engine.dispose()


def _checkpoint(path: str) -> tuple[int, int] | None:
    uri = path.startswith("file:")  # "file:…?mode=ro&uri=true"
    with closing(sqlite3.connect(path, timeout=0, isolation_level=None, uri=uri)) as connection:
        busy, pages, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return None if busy or pages < 0 else (pages, copied)


def _unfit(connection: AsyncConnection, driver: sqlite_driver.Connection) -> bool:
    """Whether the kept connection cannot start the next turn: a transaction left on it
    (SQLAlchemy's, after a failed COMMIT; SQLite's, after a failed ROLLBACK), or closed
    under SQLAlchemy's feet. The BEGIN made ahead for this turn is not one (`let_go`
    ends it when the turn ran nothing)."""
    sync = connection.sync_connection
    if sync is not None and sync.get_transaction() is not None:
        return True
    try:
        return driver.in_transaction and not driver.begun_ahead
    except sqlite3.ProgrammingError:  # closed
        return True


def _wrapped(statement: str, error: sqlite3.Error) -> StatementError:
    """A driver error raised outside SQLAlchemy, as SQLAlchemy would raise it."""
    return DBAPIError.instance(statement, None, error, sqlite3.Error)


def _driver_connection(connection: AsyncConnection) -> sqlite_driver.Connection:
    assert connection.sync_connection is not None
    dbapi = connection.sync_connection.connection.dbapi_connection
    assert isinstance(dbapi, sqlite_driver.Connection)
    return dbapi
