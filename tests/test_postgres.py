"""The conversation tests again on PostgreSQL: the same code path as on SQLite (one SELECT
for the chat, FOR UPDATE OF the conversation, INSERT … ON CONFLICT for message ids, the
master's row locked at Confirm).

Runs when REGULARS_TEST_POSTGRES_URL names a server, e.g.
`postgresql+asyncpg://postgres@127.0.0.1:5432/postgres`; each test gets a database of its
own there, dropped afterwards. Skipped otherwise (`make test` needs no server).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from storage.db import Database, create_engine
from tests.test_booking import *  # noqa: F403  (collected again here, on PostgreSQL)
from tests.test_registration import *  # noqa: F403
from tests.test_telegram import *  # type: ignore[assignment]  # noqa: F403
from tests.test_visits_and_preferences import *  # noqa: F403

SERVER = os.environ.get("REGULARS_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not SERVER, reason="REGULARS_TEST_POSTGRES_URL is not set")

# SQLite's own words, not the bot's: no PostgreSQL twin to test.
SQLITE_ONLY = {"test_a_database_error_says_try_again_and_loses_nothing"}


@pytest.fixture
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    if request.node.originalname in SQLITE_ONLY:
        pytest.skip("renames a table the SQLite way")
    assert SERVER is not None
    server = make_url(SERVER)
    name = f"regulars_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(create_engine(server.set(database=name).render_as_string(False)))
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        yield database
    finally:
        await database.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_these_tests_run_on_postgresql(db: Database) -> None:
    assert db.engine.dialect.name == "postgresql"
    assert not db.is_sqlite
