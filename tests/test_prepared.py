"""Prepared statements (storage/prepared.py): the SQL a turn runs on every update, compiled
once and run on the driver's cursor. Run on SQLite, and on PostgreSQL in the PostgreSQL
pass: the values come back as the ORM gives them, counts and RETURNING are right,
executemany writes every row, the driver's errors are SQLAlchemy's, and the statements
share the ORM's transaction."""

from __future__ import annotations

import asyncio
import gc
import weakref
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.util.concurrency import in_greenlet
from sqlmodel import col
from sqlmodel import select as orm_select

from storage.db import Database
from storage.entities import CLIENT, CONVERSATION
from storage.prepared import Prepared, any_of, items, one_of, run_sync
from storage.tables import Client, Conversation, ProcessedMessage, Staff

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PROCESSED = ProcessedMessage.__table__  # type: ignore[attr-defined]
CLIENTS = Client.__table__  # type: ignore[attr-defined]

CONVERSATION_OF = Prepared(
    lambda: select(*CONVERSATION.columns).where(
        col(Conversation.channel) == bindparam("channel"),
        col(Conversation.external_id) == bindparam("external_id"),
    )
)
CLIENT_NAMED = Prepared(
    lambda: select(*CLIENT.columns).where(col(Client.name) == bindparam("name"))
)
RENAME = Prepared(
    lambda: update(CLIENTS).where(CLIENTS.c.name == bindparam("old")).values(name=bindparam("new"))
)
RECORD = Prepared(
    lambda: insert(PROCESSED).values(
        channel=bindparam("channel"),
        message_id=bindparam("message_id"),
        received_at=bindparam("received_at", type_=PROCESSED.c.received_at.type),
    )
)
NEW_CLIENT = Prepared(
    lambda: (
        insert(CLIENTS)
        .values(name=bindparam("name"), phone=bindparam("phone"), created_at=bindparam("at"))
        .returning(CLIENTS.c.id, CLIENTS.c.name, CLIENTS.c.created_at)
    )
)
RECEIVED = Prepared(
    lambda: (
        select(PROCESSED.c.message_id, PROCESSED.c.received_at)
        .where(PROCESSED.c.channel == "telegram")  # a value fixed in the statement
        .order_by(PROCESSED.c.message_id)
    )
)
COUNT_OF = Prepared(
    lambda: select(func.count()).where(
        one_of(PROCESSED.c.channel, ("telegram", "whatsapp")),
        PROCESSED.c.received_at >= bindparam("since", type_=PROCESSED.c.received_at.type),
    )
)


def ids_among(count: int) -> Prepared:
    return Prepared(
        lambda: (
            select(PROCESSED.c.message_id)
            .where(any_of(PROCESSED.c.message_id, "id", count))
            .order_by(PROCESSED.c.message_id)
        )
    )


async def test_rows_come_back_with_the_columns_types(db: Database) -> None:
    async with db.transaction() as session:
        session.add(
            Conversation(
                channel="telegram",
                external_id="42",
                step="book_day",
                data={"service": 3, "days": ["2026-03-03"], "name": "Пётр"},
                updated_at=NOW,
            )
        )
    async with db.transaction(inline=True) as session:
        rows = await CONVERSATION_OF.fetch(session, channel="telegram", external_id="42")
        none = await CONVERSATION_OF.fetch_first(session, channel="telegram", external_id="43")
    assert none is None
    assert len(rows) == 1
    row = dict(zip((column.key for column in CONVERSATION.columns), rows[0], strict=True))
    assert row["step"] == "book_day"
    assert row["data"] == {"service": 3, "days": ["2026-03-03"], "name": "Пётр"}
    assert row["updated_at"] == NOW and row["updated_at"].tzinfo is not None


async def test_rowcount_of_an_update_and_of_an_insert_that_meets_a_conflict(db: Database) -> None:
    from storage.processed import INSERT_NEW

    async with db.transaction(inline=True) as session:
        session.add(Client(name="Anna", created_at=NOW))
        await session.flush()
        assert await RENAME.execute(session, old="Anna", new="Anya") == 1
        assert await RENAME.execute(session, old="Nobody", new="X") == 0
        first = await INSERT_NEW.execute(
            session, channel="telegram", message_id="7", received_at=NOW
        )
        again = await INSERT_NEW.execute(
            session, channel="telegram", message_id="7", received_at=NOW
        )
    assert (first, again) == (1, 0)
    async with db.reading() as session:
        names = (await session.exec(orm_select(Client.name))).all()
    assert names == ["Anya"]


async def test_returning_gives_the_new_row_with_its_id(db: Database) -> None:
    async with db.transaction(inline=True) as session:
        rows = await NEW_CLIENT.fetch(session, name="Boris", phone="+79990001122", at=NOW)
    assert len(rows) == 1
    new_id, name, created_at = rows[0]
    assert name == "Boris" and created_at == NOW
    async with db.reading() as session:
        stored = await session.get(Client, new_id)
    assert stored is not None and stored.phone == "+79990001122"


async def test_executemany_writes_every_row(db: Database) -> None:
    times = [NOW + timedelta(minutes=minute) for minute in range(3)]
    async with db.transaction() as session:
        count = await session.run_sync(
            RECORD.run_many,
            [
                {"channel": "telegram", "message_id": f"m{index}", "received_at": at}
                for index, at in enumerate(times)
            ],
        )
        assert await session.run_sync(RECORD.run_many, []) == 0
    assert count == (3 if db.is_sqlite else -1)  # asyncpg does not count executemany
    async with db.reading() as session:
        rows = await RECEIVED.fetch(session)
        counted = await COUNT_OF.fetch_first(session, since=times[1])
        some = await ids_among(2).fetch(session, **items("id", ["m2", "m0"]))
    assert rows == [("m0", times[0]), ("m1", times[1]), ("m2", times[2])]
    assert counted == (2,)
    assert some == [("m0",), ("m2",)]


async def test_a_duplicate_is_sqlalchemys_integrity_error_and_nothing_of_the_turn_stays(
    db: Database,
) -> None:
    async with db.transaction() as session:
        session.add(Client(name="Vera", phone="+79990001111", created_at=NOW))
    with pytest.raises(IntegrityError) as raised:
        async with db.transaction(inline=True) as session:
            await RECORD.execute(session, channel="telegram", message_id="1", received_at=NOW)
            await NEW_CLIENT.fetch(session, name="Other Vera", phone="+79990001111", at=NOW)
    assert "INSERT INTO client" in str(raised.value)
    async with db.reading() as session:
        assert await RECEIVED.fetch(session) == []  # rolled back with the turn
        names = (await session.exec(orm_select(Client.name))).all()
    assert names == ["Vera"]
    async with db.transaction(inline=True) as session:  # the pool goes on
        assert (
            await RECORD.execute(session, channel="telegram", message_id="2", received_at=NOW) == 1
        )


async def test_a_query_sees_the_objects_changed_so_far_and_its_objects_are_the_sessions(
    db: Database,
) -> None:
    async with db.transaction(inline=True) as session:
        session.add(Client(name="Gleb", created_at=NOW))  # not flushed yet
        gleb = await CLIENT_NAMED.load_first(session, CLIENT, name="Gleb")
        assert gleb is not None and gleb.id is not None
        same = await session.get(Client, gleb.id)
        assert same is gleb
        again = await CLIENT_NAMED.load_first(session, CLIENT, name="Gleb")
        assert again is gleb
        gleb.locale = "en"  # a change to a loaded object is written by the commit
    async with db.reading() as session:
        stored = (await session.exec(orm_select(Client).where(Client.name == "Gleb"))).one()
    assert stored.locale == "en"
    async with db.transaction(inline=True) as session:
        loaded = await CLIENT_NAMED.load_all(session, CLIENT, name="Gleb")
        assert [client.name for client in loaded] == ["Gleb"]
        assert loaded[0].created_at == NOW
        await session.exec(delete(Client))
        assert await CLIENT_NAMED.load_first(session, CLIENT, name="Gleb") is None


async def test_an_inserted_object_is_the_sessions_with_its_id_and_the_models_defaults(
    db: Database,
) -> None:
    async with db.transaction(inline=True) as session:
        staff = Staff(key="anna", name="Anna")
        session.add(staff)  # pending: written before the insert, which may name it
        client = await session.run_sync(
            CLIENT.insert,
            name="Lev",
            phone="+79990002222",
            favourite_master_id=None,
            created_at=NOW,
        )
        assert staff.id is not None
        assert client.id is not None and await session.get(Client, client.id) is client
        assert (client.phone_verified, client.consent_text, client.completed_visits) == (
            False,
            "",
            0,
        )
        client.favourite_master_id = staff.id  # a change after the insert: the commit writes it
        chat = await session.run_sync(
            CONVERSATION.insert,
            attach=False,
            channel="telegram",
            external_id="77",
            client_id=client.id,
            updated_at=NOW,
        )
        assert chat.id is not None and chat not in session
    async with db.reading() as session:
        stored = await session.get(Client, client.id)
        saved = await session.get(Conversation, chat.id)
    assert stored is not None and stored.favourite_master_id == staff.id
    assert stored.created_at == NOW and stored.phone == "+79990002222"
    assert saved is not None and (saved.flow, saved.data, saved.client_id) == (
        "start",
        {},
        client.id,
    )


async def test_an_insert_refuses_unknown_and_missing_fields_and_a_duplicate(db: Database) -> None:
    async with db.transaction(inline=True) as session:
        with pytest.raises(TypeError, match="no field nickname"):
            await session.run_sync(CLIENT.insert, name="Lev", nickname="L", created_at=NOW)
        with pytest.raises(TypeError, match="name is required"):
            await session.run_sync(CLIENT.insert, created_at=NOW)
        await session.run_sync(CLIENT.insert, name="Lev", phone="+79990003333", created_at=NOW)
    with pytest.raises(IntegrityError):
        async with db.transaction(inline=True) as session:
            await session.run_sync(
                CLIENT.insert, name="Other Lev", phone="+79990003333", created_at=NOW
            )
    async with db.reading() as session:
        names = (await session.exec(orm_select(Client.name))).all()
    assert names == ["Lev"]


def test_an_in_list_given_at_each_run_is_refused_when_the_statement_is_compiled() -> None:
    from sqlalchemy.dialects import sqlite

    expanding = Prepared(
        lambda: select(PROCESSED.c.message_id).where(
            PROCESSED.c.message_id.in_(bindparam("ids", expanding=True))
        )
    )
    with pytest.raises(ValueError, match="IN list"):
        expanding.compiled(sqlite.dialect())
    with pytest.raises(TypeError):
        Prepared()


def _in_greenlet(_sync: Session) -> bool:
    return in_greenlet()


async def test_an_inline_turn_runs_past_sqlalchemys_greenlet_once_it_holds_the_write_lock(
    db: Database,
) -> None:
    """On SQLite, a turn's calls run straight (`run_sync`): the turn holds the write lock
    and SQLite's transaction has begun before its first statement, nothing in it waits.
    Other transactions and PostgreSQL still go through the greenlet; either way the
    statements see each other and the commit keeps them."""
    async with db.transaction(inline=True) as session:
        assert await run_sync(session, _in_greenlet) is not db.is_sqlite
        await RECORD.execute(session, channel="telegram", message_id="1", received_at=NOW)
        assert await run_sync(session, _in_greenlet) is not db.is_sqlite
        await RECORD.execute(session, channel="telegram", message_id="2", received_at=NOW)
        assert await COUNT_OF.fetch_first(session, since=NOW) == (2,)
    if db.is_sqlite:
        assert not db.engine.dialect.write_lock.locked  # type: ignore[attr-defined]
    async with db.transaction() as session:  # statements in a worker thread: the greenlet
        await RECORD.execute(session, channel="whatsapp", message_id="3", received_at=NOW)
        assert await run_sync(session, _in_greenlet)
    async with db.reading() as session:
        assert await COUNT_OF.fetch_first(session, since=NOW) == (3,)
        assert await run_sync(session, _in_greenlet)  # a reader holds no lock


async def test_a_turn_that_waits_for_the_write_lock_waits_in_the_loop_and_both_turns_are_kept(
    db: Database,
) -> None:
    """A second turn's first statement waits for the first turn's commit (in the loop, not
    failing with "database is locked"), then runs its own calls straight as well."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL's turns do not queue for one write lock")
    first_in, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with db.transaction(inline=True) as session:
            await RECORD.execute(session, channel="telegram", message_id="a", received_at=NOW)
            first_in.set()
            await release.wait()
            await RECORD.execute(session, channel="telegram", message_id="b", received_at=NOW)

    async def second() -> None:
        await first_in.wait()
        async with db.transaction(inline=True) as session:
            await RECORD.execute(session, channel="telegram", message_id="c", received_at=NOW)
            assert await COUNT_OF.fetch_first(session, since=NOW) == (3,)

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await first_in.wait()
    await asyncio.sleep(0.05)
    assert not two.done()
    release.set()
    await asyncio.gather(one, two)
    async with db.reading() as session:
        assert [row[0] for row in await RECEIVED.fetch(session)] == ["a", "b", "c"]


async def test_a_turn_leaves_nothing_for_the_garbage_collector(db: Database) -> None:
    """The connection a session's prepared statements remember does not tie the session to
    itself: once the turn is over its session, transaction and objects are freed at once,
    not at the collector's next pass."""
    gc.collect()
    gc.disable()
    try:
        async with db.transaction(inline=True) as session:
            await RECORD.execute(session, channel="telegram", message_id="1", received_at=NOW)
            await run_sync(session, _in_greenlet)
            sync = weakref.ref(session.sync_session)
            transaction = weakref.ref(session.sync_session.get_transaction())
        del session
        assert sync() is None and transaction() is None
    finally:
        gc.enable()
