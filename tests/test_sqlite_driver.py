"""The bot's SQLite driver (storage/sqlite_driver.py) through SQLAlchemy, as the bot uses it:
statements inline (a turn) and in a worker thread (everything else), the rows, counts and
ids they give, errors as SQLAlchemy's exceptions, and the write lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import in_greenlet
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import sqlite_driver
from storage.db import Database, create_engine, sqlite_url_for
from storage.prepared import run_sync

SCHEMA = (
    "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES item(id))",
)
MODES = pytest.mark.parametrize("inline", [True, False], ids=["inline", "worker thread"])


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "driver.db"


@pytest.fixture
async def db(path: Path) -> AsyncIterator[Database]:
    database = Database(create_engine(sqlite_url_for(str(path))))
    async with database.transaction() as session:
        for statement in SCHEMA:
            await run(session, statement)
    yield database
    await database.dispose()


async def run(session: AsyncSession, sql: str, params: Any = None) -> CursorResult[Any]:
    """A statement on the session's connection (sqlmodel's session.execute is deprecated)."""
    connection = await session.connection()
    return await connection.execute(text(sql), params)


@contextmanager
def traced(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL SQLite itself runs on connections opened from now on (BEGIN, COMMIT and
    ROLLBACK included, which SQLAlchemy's events do not see)."""
    seen: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(seen.append)

    event.listen(engine.sync_engine, "connect", trace)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "connect", trace)


def words(seen: list[str]) -> list[str]:
    return [" ".join(statement.split()[:2]).upper() for statement in seen]


async def test_the_documented_url_runs_on_the_bots_driver(db: Database) -> None:
    assert db.engine.dialect.driver == sqlite_driver.DRIVER
    assert db.engine.dialect.name == "sqlite" and db.is_sqlite


@MODES
async def test_executemany_inserts_every_row_and_counts_them(db: Database, inline: bool) -> None:
    rows = [{"name": f"item {n}", "n": n} for n in range(5)]
    async with db.transaction(inline=inline) as session:
        connection = await session.connection()
        result = await connection.execute(
            text("INSERT INTO item (name, n) VALUES (:name, :n)"), rows
        )
        assert result.rowcount == 5
    async with db.reading() as session:
        found = (await run(session, "SELECT name, n FROM item ORDER BY n")).all()
    assert [tuple(row) for row in found] == [(r["name"], r["n"]) for r in rows]


@MODES
async def test_returning_gives_the_new_rows(db: Database, inline: bool) -> None:
    async with db.transaction(inline=inline) as session:
        result = await run(
            session, "INSERT INTO item (name, n) VALUES ('a', 1), ('b', 2) RETURNING id, name"
        )
        returned = [tuple(row) for row in result.all()]
    assert returned == [(1, "a"), (2, "b")]


@MODES
async def test_rowcount_of_an_update_and_a_delete(db: Database, inline: bool) -> None:
    async with db.transaction(inline=inline) as session:
        await run(session, "INSERT INTO item (name, n) VALUES ('a', 1), ('b', 1), ('c', 2)")
        updated = await run(session, "UPDATE item SET n = 3 WHERE n = 1")
        deleted = await run(session, "DELETE FROM item WHERE n = 7")
        assert (updated.rowcount, deleted.rowcount) == (2, 0)


@MODES
async def test_lastrowid_is_the_inserted_id(db: Database, inline: bool) -> None:
    async with db.transaction(inline=inline) as session:
        first = await run(session, "INSERT INTO item (name) VALUES ('a')")
        second = await run(session, "INSERT INTO item (name) VALUES ('b')")
        assert (first.lastrowid, second.lastrowid) == (1, 2)


@MODES
async def test_rows_are_read_one_some_or_all(db: Database, inline: bool) -> None:
    async with db.transaction(inline=inline) as session:
        connection = await session.connection()
        await connection.execute(
            text("INSERT INTO item (name, n) VALUES (:name, :n)"),
            [{"name": str(n), "n": n} for n in range(7)],
        )
        result = await connection.execute(text("SELECT n FROM item ORDER BY n"))
        assert result.fetchone() == (0,)
        assert [tuple(row) for row in result.fetchmany(2)] == [(1,), (2,)]
        assert [tuple(row) for row in result.fetchall()] == [(3,), (4,), (5,), (6,)]
        assert result.fetchone() is None


@MODES
async def test_a_duplicate_is_sqlalchemys_integrity_error_and_rolls_back(
    db: Database, inline: bool
) -> None:
    with pytest.raises(IntegrityError) as raised:
        async with db.transaction(inline=inline) as session:
            await run(session, "INSERT INTO item (name) VALUES ('twin')")
            await run(session, "INSERT INTO item (name) VALUES ('twin')")
    assert isinstance(raised.value.orig, sqlite3.IntegrityError)
    async with db.reading() as session:
        assert (await run(session, "SELECT count(*) FROM item")).scalar() == 0


@MODES
async def test_a_foreign_key_violation_is_an_integrity_error(db: Database, inline: bool) -> None:
    with pytest.raises(IntegrityError):
        async with db.transaction(inline=inline) as session:
            await run(session, "INSERT INTO child (item_id) VALUES (42)")


@MODES
async def test_bad_sql_is_sqlalchemys_operational_error_and_the_engine_goes_on(
    db: Database, inline: bool
) -> None:
    with pytest.raises(OperationalError) as raised:
        async with db.transaction(inline=inline) as session:
            await run(session, "SELECT * FROM no_such_table")
    assert isinstance(raised.value.orig, sqlite3.OperationalError)
    async with db.transaction(inline=inline) as session:
        await run(session, "INSERT INTO item (name) VALUES ('after')")
    async with db.reading() as session:
        assert (await run(session, "SELECT name FROM item")).scalar() == "after"


async def test_sqlite_begins_with_the_first_statement_and_never_rolls_back_a_commit(
    path: Path,
) -> None:
    database = Database(create_engine(sqlite_url_for(str(path))))
    with traced(database.engine) as seen:
        async with database.transaction():
            pass  # nothing executed: nothing begun, nothing committed
        async with database.transaction(inline=True) as session:
            await run(session, "CREATE TABLE t (x)")
        async with database.reading() as session:
            await run(session, "SELECT count(*) FROM t")
    await database.dispose()
    ran = [w for w in words(seen) if not w.startswith("PRAGMA")]
    assert ran == [
        "BEGIN IMMEDIATE",
        "CREATE TABLE",
        "COMMIT",
        "BEGIN",
        "SELECT COUNT(*)",
        "COMMIT",
    ]


async def test_concurrent_write_transactions_queue_in_the_loop(db: Database) -> None:
    """The second writer waits for the first one's COMMIT on the in-process lock: SQLite's
    busy handler is never needed (it is off), and both turns get their write in."""
    first_inside, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with db.transaction() as session:
            await run(session, "INSERT INTO item (name) VALUES ('first')")
            first_inside.set()
            await release.wait()

    async def second() -> None:
        await first_inside.wait()
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('second')")

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await first_inside.wait()
    await asyncio.sleep(0.05)
    assert not two.done()  # waiting for the lock, not failing with "database is locked"
    assert db.engine.dialect.write_lock.locked  # type: ignore[attr-defined]
    release.set()
    await asyncio.gather(one, two)
    async with db.reading() as session:
        names = (await run(session, "SELECT name FROM item ORDER BY id")).scalars()
        assert list(names) == ["first", "second"]
    assert not db.engine.dialect.write_lock.locked  # type: ignore[attr-defined]


async def test_readers_do_not_wait_for_a_writer(db: Database) -> None:
    async with db.transaction() as writing:
        await run(writing, "INSERT INTO item (name) VALUES ('not yet')")
        async with db.reading() as reading:
            count = (await run(reading, "SELECT count(*) FROM item")).scalar()
    assert count == 0  # WAL: the reader sees the database as it was


def impatient(path: Path, seconds: float) -> Database:
    """A database whose writers wait `seconds` (the bot's own wait 15 s)."""
    sqlite_driver.register()
    url = f"sqlite+{sqlite_driver.DRIVER}:///{path}"
    return Database(create_async_engine(url, connect_args={"timeout": seconds}))


async def test_a_writer_waiting_too_long_for_another_turn_gets_database_is_locked(
    path: Path,
) -> None:
    database = impatient(path, 0.1)
    inside, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with database.transaction() as session:
            await run(session, "CREATE TABLE t (x)")
            inside.set()
            await release.wait()

    held = asyncio.create_task(holder())
    await inside.wait()
    with pytest.raises(OperationalError, match="database is locked"):
        async with database.transaction(inline=True) as session:
            await run(session, "SELECT 1")
    release.set()
    await held
    async with database.transaction(inline=True) as session:  # free again
        await run(session, "INSERT INTO t VALUES (1)")
    await database.dispose()


async def test_another_process_holding_the_database_is_waited_out_without_blocking_the_loop(
    db: Database, path: Path
) -> None:
    """SQLite's busy handler would sleep on the loop's thread; the driver waits in the loop
    instead, so other tasks keep running, and writes once the other writer commits."""
    outsider = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    outsider.execute("BEGIN IMMEDIATE")
    outsider.execute("INSERT INTO item (name) VALUES ('outsider')")
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def write() -> None:
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('ours')")

    clock = asyncio.create_task(ticking())
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.15)
    assert not writing.done()
    assert ticks >= 10  # the loop was free while the write waited
    threading.Thread(target=outsider.execute, args=("COMMIT",)).start()
    await asyncio.wait_for(writing, 5)
    clock.cancel()
    outsider.close()
    async with db.reading() as session:
        names = (await run(session, "SELECT name FROM item ORDER BY id")).scalars()
        assert list(names) == ["outsider", "ours"]


async def test_a_turn_starting_while_another_process_writes_waits_in_sqlalchemys_greenlet(
    db: Database, path: Path
) -> None:
    """A turn's BEGIN is made ahead of its first statement, so the turn needs no trip into
    SQLAlchemy's greenlet; with another process writing it cannot be, and the first
    statement takes the trip and waits there, in the loop (the test above)."""
    async with db.transaction(inline=True) as session:
        assert not await run_sync(session, _in_greenlet)
        await run(session, "INSERT INTO item (name) VALUES ('ours')")
    outsider = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    outsider.execute("BEGIN IMMEDIATE")
    try:
        async with db.transaction(inline=True) as session:
            assert await run_sync(session, _in_greenlet)
            outsider.execute("COMMIT")
            await run(session, "INSERT INTO item (name) VALUES ('after the outsider')")
    finally:
        outsider.close()
    async with db.reading() as session:
        assert (await run(session, "SELECT count(*) FROM item")).scalar() == 2


def _in_greenlet(_sync: object) -> bool:
    return in_greenlet()


async def test_gives_up_on_another_process_with_database_is_locked_after_the_timeout(
    path: Path,
) -> None:
    with closing(sqlite3.connect(path)) as setup:
        setup.execute("CREATE TABLE t (x)")
    database = impatient(path, 0.2)
    outsider = sqlite3.connect(path, isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            async with database.transaction(inline=True) as session:
                await run(session, "INSERT INTO t VALUES (1)")
        assert not database.engine.dialect.write_lock.locked  # type: ignore[attr-defined]
    finally:
        outsider.close()
        await database.dispose()


async def test_the_lock_is_released_when_a_transaction_fails(db: Database) -> None:
    lock = db.engine.dialect.write_lock  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError):
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('x'), ('x')")
    assert not lock.locked
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await run(session, "INSERT INTO item (name) VALUES ('y')")
            raise RuntimeError("a bug in the turn")
    assert not lock.locked
    async with db.reading() as session:
        assert (await run(session, "SELECT count(*) FROM item")).scalar() == 0


async def test_a_waiting_writer_that_is_cancelled_does_not_keep_the_lock() -> None:
    lock = sqlite_driver.WriteLock()
    await lock.acquire(1)
    waiter = asyncio.create_task(lock.acquire(1))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    lock.release()
    assert not lock.locked
    await lock.acquire(0.01)
    assert lock.locked


async def test_writers_get_the_lock_in_arrival_order() -> None:
    lock = sqlite_driver.WriteLock()
    await lock.acquire(1)
    order: list[int] = []

    async def writer(n: int) -> None:
        await lock.acquire(1)
        order.append(n)
        lock.release()

    tasks = [asyncio.create_task(writer(n)) for n in range(4)]
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]


async def test_an_in_memory_database_keeps_its_tables_between_sessions() -> None:
    database = Database(create_engine("sqlite+aiosqlite:///:memory:"))
    async with database.transaction(inline=True) as session:
        await run(session, "CREATE TABLE t (x)")
        await run(session, "INSERT INTO t VALUES (1)")
    async with database.reading() as session:
        assert (await run(session, "SELECT x FROM t")).scalar() == 1
    await database.dispose()


def dbapi_of(connection: Any) -> Any:
    return connection.sync_connection.connection.dbapi_connection


async def test_inline_turns_share_one_connection_of_their_own(db: Database) -> None:
    """Turns run one at a time on a connection kept for them: none takes a connection from
    the pool or gives one back, and every other transaction still gets its own."""
    used = []
    for name in ("a", "b", "c"):
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES (:name)", {"name": name})
            used.append(dbapi_of(await session.connection()))
    assert used[0] is used[1] is used[2]
    assert db.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    async with db.transaction(inline=True) as turn:
        await run(turn, "INSERT INTO item (name) VALUES ('d')")
        async with db.reading() as reading:
            assert dbapi_of(await reading.connection()) is not used[0]
            assert (await run(reading, "SELECT count(*) FROM item")).scalar() == 3
    async with db.transaction() as session:  # a worker-thread transaction: its own
        assert dbapi_of(await session.connection()) is not used[0]
        assert (await run(session, "SELECT count(*) FROM item")).scalar() == 4


async def test_a_turn_that_runs_nothing_fails_or_is_cancelled_lets_the_next_one_in(
    db: Database,
) -> None:
    lock = db.engine.dialect.write_lock  # type: ignore[attr-defined]
    async with db.transaction(inline=True):
        assert lock.locked  # taken before the turn's first statement
    assert not lock.locked
    with pytest.raises(RuntimeError):
        async with db.transaction(inline=True):
            raise RuntimeError("a bug before the first statement")
    assert not lock.locked
    with pytest.raises(RuntimeError):
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('lost')")
            raise RuntimeError("a bug after it")
    assert not lock.locked

    inside, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('kept')")
            inside.set()
            await release.wait()

    async def waiter() -> None:
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('never')")

    held = asyncio.create_task(holder())
    await inside.wait()
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    waiting.cancel()  # a turn given up while it waits for the lock
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await held
    assert not lock.locked
    async with db.transaction(inline=True) as session:
        await run(session, "INSERT INTO item (name) VALUES ('after')")
    async with db.reading() as session:
        names = (await run(session, "SELECT name FROM item ORDER BY id")).scalars()
        assert list(names) == ["kept", "after"]


async def test_a_turn_whose_connection_breaks_fails_and_the_next_one_gets_a_fresh_one(
    db: Database,
) -> None:
    """Here the turn's connection is closed behind SQLAlchemy's back in the middle of it."""
    with pytest.raises(DBAPIError, match="closed database"):
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('lost')")
            broken = dbapi_of(await session.connection())
            broken.close()
            await run(session, "INSERT INTO item (name) VALUES ('lost too')")
    assert not db.engine.dialect.write_lock.locked  # type: ignore[attr-defined]
    async with db.transaction(inline=True) as session:
        await run(session, "INSERT INTO item (name) VALUES ('kept')")
        assert dbapi_of(await session.connection()) is not broken
    async with db.reading() as session:
        assert (await run(session, "SELECT name FROM item")).scalars().all() == ["kept"]


async def test_a_turn_that_rolls_back_halfway_keeps_the_connection_to_itself(
    db: Database,
) -> None:
    """A turn may roll back and go on (a conflict caught): the write lock stays with it
    until its end, so a waiting turn does not get the kept connection in between."""
    async with db.transaction(inline=True) as session:
        await run(session, "INSERT INTO item (name) VALUES ('taken')")
    inside, events = asyncio.Event(), []

    async def first() -> None:
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('undone')")
            inside.set()
            await asyncio.sleep(0.01)
            with pytest.raises(IntegrityError):
                await run(session, "INSERT INTO item (name) VALUES ('taken')")
            await session.rollback()
            await asyncio.sleep(0.01)  # the waiting turn would run now, if it could
            await run(session, "INSERT INTO item (name) VALUES ('first')")
            events.append("first ends")

    async def second() -> None:
        await inside.wait()
        async with db.transaction(inline=True) as session:
            events.append("second begins")
            await run(session, "INSERT INTO item (name) VALUES ('second')")

    await asyncio.gather(first(), second())
    assert events == ["first ends", "second begins"]
    async with db.reading() as session:
        names = (await run(session, "SELECT name FROM item ORDER BY id")).scalars()
        assert list(names) == ["taken", "first", "second"]


async def test_a_turn_and_a_writer_waiting_for_the_last_pooled_connection_both_write(
    path: Path,
) -> None:
    """The kept connection is taken before the write lock, as every other transaction
    takes its connection before the lock: the other order would leave the turn holding
    the lock while waiting for the connection that the writer, waiting for the lock,
    holds (until "database is locked"). A pool of one connection makes it certain."""
    sqlite_driver.register()
    url = f"sqlite+{sqlite_driver.DRIVER}:///{path}"
    database = Database(
        create_async_engine(url, pool_size=1, max_overflow=0, connect_args={"timeout": 2})
    )
    async with database.transaction() as session:
        await run(session, "CREATE TABLE t (x)")

    async def reader() -> None:  # holds the pool's one connection for a moment
        async with database.reading() as session:
            await run(session, "SELECT 1")
            await asyncio.sleep(0.05)

    async def writer() -> None:  # the scheduler, say
        await asyncio.sleep(0.01)
        async with database.transaction() as session:
            await run(session, "INSERT INTO t VALUES ('writer')")

    async def turn() -> None:  # the first turn after a start: no kept connection yet
        await asyncio.sleep(0.02)
        async with database.transaction(inline=True) as session:
            await run(session, "INSERT INTO t VALUES ('turn')")

    await asyncio.wait_for(asyncio.gather(reader(), writer(), turn()), 1.5)
    async with database.transaction(inline=True) as session:
        assert (await run(session, "SELECT x FROM t ORDER BY x")).scalars().all() == [
            "turn",
            "writer",
        ]
    await database.dispose()


async def test_a_turn_whose_rollback_fails_leaves_nothing_open_for_the_next_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's transaction stays open when its ROLLBACK fails: the kept connection is
    dropped (closing it rolls back), and the next turn starts on a new one."""
    rollback = sqlite_driver.Connection.rollback
    failures = [sqlite3.OperationalError("disk I/O error")]

    def failing_once(self: sqlite_driver.Connection) -> None:
        if failures:
            raise failures.pop()
        rollback(self)

    monkeypatch.setattr(sqlite_driver.Connection, "rollback", failing_once)
    with pytest.raises(OperationalError, match="disk I/O error"):
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('lost')")
            raise RuntimeError("a bug in the turn")
    assert not failures
    assert not db.engine.dialect.write_lock.locked  # type: ignore[attr-defined]
    async with db.transaction(inline=True) as session:
        await run(session, "INSERT INTO item (name) VALUES ('kept')")
    async with db.reading() as session:
        assert (await run(session, "SELECT name FROM item")).scalars().all() == ["kept"]


async def test_a_turn_whose_commit_fails_leaves_nothing_for_the_next_ones(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A COMMIT that fails the way a full disk fails it (SQLite rolls back, the driver
    raises) leaves SQLAlchemy's transaction on the kept connection: the connection is
    dropped, and the next turns start on a new one."""
    commit = sqlite_driver.Connection.commit
    failures = [sqlite3.OperationalError("database or disk is full")]

    def failing_once(self: sqlite_driver.Connection) -> None:
        if failures and self.in_transaction and not self.begun_ahead:
            sqlite3.Connection.rollback(self)
            raise failures.pop()
        commit(self)

    monkeypatch.setattr(sqlite_driver.Connection, "commit", failing_once)
    with pytest.raises(OperationalError, match="disk is full"):
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('lost')")
    for name in ("one", "two"):
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES (:name)", {"name": name})
    assert not db.engine.dialect.write_lock.locked  # type: ignore[attr-defined]
    async with db.reading() as session:
        names = (await run(session, "SELECT name FROM item ORDER BY id")).scalars()
        assert list(names) == ["one", "two"]


async def test_an_error_at_a_turns_begin_is_sqlalchemys_and_the_next_turn_works(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn's BEGIN is made ahead, outside SQLAlchemy: its errors still come out as
    SQLAlchemy's (the conversation answers those with "something went wrong")."""
    execute = sqlite_driver.Connection.execute
    failures = [sqlite3.OperationalError("attempt to write a readonly database")]

    def failing_once(self: sqlite_driver.Connection, sql: str, *args: Any) -> Any:
        if sql == "BEGIN IMMEDIATE" and failures:
            raise failures.pop()
        return execute(self, sql, *args)

    monkeypatch.setattr(sqlite_driver.Connection, "execute", failing_once)
    with pytest.raises(OperationalError, match="readonly database"):
        async with db.transaction(inline=True) as session:
            await run(session, "INSERT INTO item (name) VALUES ('lost')")
    assert not db.engine.dialect.write_lock.locked  # type: ignore[attr-defined]
    async with db.transaction(inline=True) as session:
        await run(session, "INSERT INTO item (name) VALUES ('kept')")
    async with db.reading() as session:
        assert (await run(session, "SELECT name FROM item")).scalars().all() == ["kept"]


async def test_disposing_closes_the_turns_connection(path: Path) -> None:
    database = Database(create_engine(sqlite_url_for(str(path))))
    async with database.transaction(inline=True) as session:
        await run(session, "CREATE TABLE t (x)")
        kept = dbapi_of(await session.connection())
    await database.dispose()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        kept.execute("SELECT 1")
