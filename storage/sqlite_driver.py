"""The bot's SQLite driver: a SQLAlchemy async dialect on the standard `sqlite3` module.

SQLAlchemy's `aiosqlite` adapter sends every call to a worker thread and back: a SELECT
is four trips (cursor, execute, fetchall, close), a BEGIN or an UPDATE three, and the pool
adds a ROLLBACK after every COMMIT. On a local file the trip costs more than the statement
(~0.17 ms against a few microseconds). This dialect keeps SQLAlchemy's SQLite dialect
(`pysqlite`: types, SQL, reflection) and changes only how calls reach SQLite:

- **inline** transactions (`execution_options(sqlite_inline=True)`; what a conversation's
  turn uses, see `storage.db.Database.transaction`) call sqlite3 directly on the event
  loop's thread: no trip at all. Only for short transactions of indexed statements — the
  loop runs nothing else meanwhile;
- every other transaction sends each statement to a worker thread in **one trip** (execute
  and fetch together), so a long pass (the planner, the digest) never stalls the loop;
- BEGIN happens with the first statement (a transaction that runs none costs nothing) and
  is `BEGIN IMMEDIATE` unless the transaction is `read_only`; an inline turn on the
  connection kept for turns has it made when it takes the lock (`begin_ahead`); COMMIT
  and ROLLBACK of a connection with nothing open are skipped, so the pool's reset
  ROLLBACK costs nothing;
- **write lock**: write transactions of one engine take an in-process asyncio lock
  (first come, first served) before `BEGIN IMMEDIATE` (inline turns before their first
  statement, `Connection.hold`), so concurrent turns queue in the loop instead of in
  SQLite's busy handler, which sleeps (1, 2, 5 … 100 ms) and would
  stall the whole loop when run on its thread. SQLite's own busy handler is off: when
  another *process* holds the database, the driver waits asynchronously (1 ms doubling
  to 50 ms) and gives up with "database is locked" after the `timeout` connect argument
  (seconds), as sqlite3 would.

Errors are sqlite3's own (`IntegrityError`, `OperationalError` …), so SQLAlchemy maps them
to its exceptions as for any SQLite driver. `storage.db.create_engine` uses this dialect
for every SQLite URL (`sqlite+aiosqlite:///…`, `sqlite:///…`); nothing is registered or
created when this module is imported.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor, ExecutionContext
from sqlalchemy.util.concurrency import await_, in_greenlet

T = TypeVar("T")

DRIVER = "regulars"
INLINE = "sqlite_inline"  # execution option: run this transaction on the loop's thread
READ_ONLY = "read_only"  # execution option: a plain BEGIN, no write lock
DEFAULT_WAIT = 5.0  # seconds, sqlite3's own default timeout
FIRST_PAUSE, LONGEST_PAUSE = 0.001, 0.05  # waiting for another process's write lock
SQLITE_BUSY = 5
SQLITE_BUSY_RECOVERY = 5 | (1 << 8)
RETRIED = frozenset({SQLITE_BUSY, SQLITE_BUSY_RECOVERY})


def register() -> None:
    """Make `sqlite+regulars://` known to SQLAlchemy (idempotent)."""
    registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_regulars")


class _Ready(Awaitable[None]):
    """An awaitable that is done at once. `AsyncConnection.execute` insists that a driver
    awaited something (else AwaitRequired); awaiting this costs a greenlet switch
    (~1 µs) and no trip through the event loop."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


READY = _Ready()


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in RETRIED


def _pause(seconds: float) -> None:
    """Wait without holding up the event loop when called from SQLAlchemy's greenlet."""
    if in_greenlet():
        await_(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


class WriteLock:
    """One writer at a time, first come first served; waiting is asynchronous. Not bound
    to an event loop: waiters are futures of the loop they wait in."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def locked(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        if self._held or self._waiters:
            return False
        self._held = True
        return True

    async def take(self, seconds: float) -> None:
        """`acquire`, failing as SQLite would: "database is locked" after `seconds`."""
        try:
            await self.acquire(seconds)
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None

    async def acquire(self, seconds: float) -> None:
        """Hold the lock, waiting up to `seconds` (TimeoutError after that)."""
        if self.try_acquire():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        expiry = loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        except BaseException:
            # Handed the lock just as the wait was given up (a cancellation): pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()
            raise
        finally:
            expiry.cancel()

    def release(self) -> None:
        """Hand the lock to the first waiter still waiting, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.done():  # timed out or cancelled
                continue
            loop = waiter.get_loop()
            if asyncio._get_running_loop() is loop:
                waiter.set_result(None)
            else:  # released from another thread (a connection closed by the GC)
                loop.call_soon_threadsafe(_hand_over, waiter, self)
            return
        self._held = False


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _hand_over(waiter: asyncio.Future[None], lock: WriteLock) -> None:
    if waiter.done():
        lock.release()
    else:
        waiter.set_result(None)


class Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """What SQLAlchemy's asyncio results call on a cursor with rows left: nothing to
        do, the rows stay readable."""


class BufferedCursor(Cursor):
    """A cursor whose rows were all fetched in the worker thread, with the execute."""

    rows: list[Any] | None = None
    taken: int = 0

    def fetchone(self) -> Any:
        if self.rows is None:
            return super().fetchone()
        if self.taken >= len(self.rows):
            return None
        self.taken += 1
        return self.rows[self.taken - 1]

    def fetchmany(self, size: int | None = None) -> list[Any]:
        if self.rows is None:
            return super().fetchmany(size or self.arraysize)
        start = self.taken
        self.taken = min(len(self.rows), start + (size or self.arraysize))
        return self.rows[start : self.taken]

    def fetchall(self) -> list[Any]:
        if self.rows is None:
            return super().fetchall()
        start, self.taken = self.taken, len(self.rows)
        return self.rows[start:] if start else self.rows


def _buffered(cursor: sqlite3.Cursor, method: Callable[..., object], *args: Any) -> None:
    """In the worker thread: run the statement and fetch all its rows."""
    method(*args)
    if isinstance(cursor, BufferedCursor):
        cursor.taken = 0
        cursor.rows = sqlite3.Cursor.fetchall(cursor) if cursor.description else None


class Connection(sqlite3.Connection):
    """A sqlite3 connection that begins lazily, takes the engine's write lock for writing,
    and runs each call inline or in a worker thread."""

    lock: WriteLock
    wait: float = DEFAULT_WAIT
    holding: bool = False  # this connection holds `lock`
    held_for_turn: bool = False  # until `let_go`, not just until the commit (`hold`)
    begin_pending: bool = False  # SQLAlchemy began a transaction; SQLite not yet
    begun_ahead: bool = False  # SQLite began, for the transaction SQLAlchemy begins next
    inline: bool = True  # how the open transaction runs

    # --- transactions ------------------------------------------------------------------

    def start(self, options: Mapping[str, Any]) -> None:
        """BEGIN for the transaction SQLAlchemy began, as its first statement asks."""
        self.begin_pending = False
        self.inline = bool(options.get(INLINE))
        if self.begun_ahead:  # `begin_ahead`
            self.begun_ahead = False
            return
        if options.get(READ_ONLY):
            self.call(self.execute, "BEGIN", inline=True)
            return
        self._take_lock()
        try:
            self.call(self.execute, "BEGIN IMMEDIATE", inline=True)
        except BaseException:
            self._release()
            raise

    def hold(self) -> None:
        """Take over the write lock its caller acquired for a whole inline turn (the
        connection `storage.db.Database` keeps for turns): held until `let_go`, whatever
        the turn commits or rolls back meanwhile, so no other turn gets the connection
        while this one still uses it."""
        assert self.lock.locked and not self.holding
        self.holding = self.held_for_turn = True

    def begin_ahead(self) -> bool:
        """BEGIN IMMEDIATE now, for the turn `hold` holds the lock for, so its first
        statement has nothing left to wait for (`runs_inline`); False, nothing begun,
        when another process holds the database: the first statement waits for it then,
        in the loop, as ever."""
        assert self.held_for_turn and not self.in_transaction
        try:
            self.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if _is_busy(error):
                return False
            raise
        self.begun_ahead = True
        return True

    def let_go(self) -> None:
        """The end of the turn `hold` began: the lock is released (and a BEGIN made
        ahead for a turn that ran nothing is rolled back)."""
        try:
            if self.begun_ahead:
                self.begun_ahead = False
                self.call(super().rollback, inline=True)
        finally:
            self.held_for_turn = False
            self._release()

    def _take_lock(self) -> None:
        if self.holding:
            return
        if not self.lock.try_acquire():
            if not in_greenlet():
                raise sqlite3.OperationalError("database is locked")
            try:
                await_(self.lock.acquire(self.wait))
            except TimeoutError:
                raise sqlite3.OperationalError("database is locked") from None
        self.holding = True

    def _release(self) -> None:
        if self.holding and not self.held_for_turn:
            self.holding = False
            self.lock.release()

    def commit(self) -> None:
        if self.begun_ahead:  # nothing was executed in what was begun ahead
            self.begun_ahead = self.begin_pending = False
            self.call(super().commit, inline=True)
        elif self.begin_pending:  # nothing was executed: nothing to commit
            self.begin_pending = False
        elif self.in_transaction:
            try:
                self.call(super().commit, inline=self.inline)
            finally:
                if not self.in_transaction:
                    self._release()
        self._release()

    def rollback(self) -> None:
        self.begin_pending = self.begun_ahead = False
        if self.in_transaction:
            try:
                self.call(super().rollback, inline=self.inline)
            finally:
                if not self.in_transaction:
                    self._release()
        self._release()

    def close(self) -> None:
        self.begin_pending = self.begun_ahead = False
        try:
            super().close()
        finally:
            self.held_for_turn = False
            self._release()

    # --- running calls -----------------------------------------------------------------

    def run(self, sql: str) -> list[Any]:
        """`sql` outside any transaction on this thread (connection set-up: PRAGMAs), with
        its rows; another process holding the database is waited out as for statements."""
        return self.call(lambda: self.execute(sql).fetchall(), inline=True)

    def call(self, function: Callable[..., T], *args: Any, inline: bool) -> T:
        """`function(*args)` on this thread or in a worker thread; while another process
        holds the database, again after a pause, until `wait` seconds have passed."""
        deadline: float | None = None
        pause = FIRST_PAUSE
        while True:
            try:
                if inline or not in_greenlet():
                    return function(*args)
                loop = asyncio.get_running_loop()
                return await_(loop.run_in_executor(None, function, *args))
            except sqlite3.OperationalError as error:
                if not _is_busy(error):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.wait
                if now >= deadline:
                    raise
                _pause(min(pause, deadline - now))
                pause = min(pause * 2, LONGEST_PAUSE)


class ExecutionContext_regulars(SQLiteExecutionContext):
    def create_default_cursor(self) -> DBAPICursor:
        if self.execution_options.get(INLINE):
            return self._dbapi_connection.cursor(Cursor)
        return self._dbapi_connection.cursor(BufferedCursor)


def _connection_of(cursor: sqlite3.Cursor, context: ExecutionContext | None) -> Connection:
    connection = cursor.connection
    assert isinstance(connection, Connection)
    if connection.begin_pending:
        connection.start(context.execution_options if context is not None else {})
    return connection


def _execute(
    cursor: sqlite3.Cursor,
    method: Callable[..., object],
    args: tuple[Any, ...],
    context: ExecutionContext | None,
) -> None:
    """One statement of a transaction: inline, or in one trip to a worker thread."""
    connection = _connection_of(cursor, context)
    if context is not None and context.execution_options.get(INLINE):
        # SQLAlchemy's AsyncConnection insists that a driver awaited something; a prepared
        # statement (storage.prepared) runs past it and need not.
        if in_greenlet() and getattr(context, "needs_await", True):
            await_(READY)
        try:
            method(*args)
            return
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
        connection.call(method, *args, inline=True)
    else:
        connection.call(_buffered, cursor, method, *args, inline=False)


class SQLiteDialect_regulars(SQLiteDialect_pysqlite):
    driver = DRIVER
    supports_statement_cache = True
    is_async = True
    execution_ctx_cls = ExecutionContext_regulars

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.write_lock = WriteLock()
        self.wait = DEFAULT_WAIT  # the connections' (the `timeout` connect argument)

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def connect(self, *cargs: Any, **cparams: Any) -> DBAPIConnection:
        wait = float(cparams.pop("timeout", DEFAULT_WAIT))
        cparams.update(timeout=0, isolation_level=None, check_same_thread=False)
        connection = sqlite3.connect(*cargs, factory=Connection, **cparams)
        assert isinstance(connection, Connection)
        connection.lock, connection.wait = self.write_lock, wait
        self.wait = wait
        return connection  # type: ignore[return-value]

    def prepared_cursor(self, dbapi_connection: Any, options: Mapping[str, Any]) -> Any:
        """A cursor for `storage.prepared`: the one an execution context would make."""
        return dbapi_connection.cursor(Cursor if options.get(INLINE) else BufferedCursor)

    def runs_inline(self, dbapi_connection: Any, options: Mapping[str, Any]) -> bool:
        """Whether calls on this connection may skip SQLAlchemy's greenlet
        (`storage.prepared.run_sync`): an inline transaction that has begun and holds
        the write lock, so none of its statements waits for anything (a statement that
        still met a busy database would sleep on the loop's thread, as sqlite3 does)."""
        return (
            bool(options.get(INLINE))
            and isinstance(dbapi_connection, Connection)
            and dbapi_connection.holding
            and dbapi_connection.in_transaction
        )

    def begins_inline(self, dbapi_connection: Any, options: Mapping[str, Any]) -> bool:
        """Whether a session bound to this connection may begin its transaction and run
        its first statement without SQLAlchemy's greenlet: SQLite began it already, for
        the turn holding the write lock (`Connection.begin_ahead`)."""
        return (
            bool(options.get(INLINE))
            and isinstance(dbapi_connection, Connection)
            and dbapi_connection.begun_ahead
        )

    # SQLAlchemy passes the pool's proxy; the flags live on the sqlite3 connection.
    def do_begin(self, dbapi_connection: Any) -> None:
        getattr(dbapi_connection, "dbapi_connection", dbapi_connection).begin_pending = True

    def do_execute(
        self,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None = None,
    ) -> None:
        _execute(cursor, cursor.execute, (statement, parameters), context)

    def do_execute_no_params(
        self, cursor: Any, statement: str, context: ExecutionContext | None = None
    ) -> None:
        _execute(cursor, cursor.execute, (statement,), context)

    def do_executemany(
        self,
        cursor: Any,
        statement: str,
        parameters: Sequence[Any],
        context: ExecutionContext | None = None,
    ) -> None:
        _execute(cursor, cursor.executemany, (statement, parameters), context)


dialect = SQLiteDialect_regulars
