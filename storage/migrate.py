"""Bring a database schema up to date with the Alembic migrations in storage/migrations.

    await upgrade("sqlite+aiosqlite:///regulars.db")        # to the newest revision
    await current_revision("sqlite+aiosqlite:///regulars.db")  # "0001", or None if empty

Alembic's command API is synchronous and the packaged env.py drives the async engine with
`asyncio.run`, so `upgrade` runs the command in a worker thread: it can be awaited from inside
a running event loop. No ini file is involved; the URL is set on the config in code.

A new revision, after changing storage/tables.py (against a database already at head)::

    from alembic import command
    from storage.migrate import alembic_config

    command.revision(
        alembic_config("sqlite+aiosqlite:///dev.db"),
        message="add client.nickname",
        autogenerate=True,
        rev_id="0002",
    )
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _escape(value: str) -> str:
    # Config options go through ConfigParser interpolation: a literal "%" (a URL-encoded
    # password, say) must be doubled.
    return value.replace("%", "%%")


def alembic_config(url: str) -> Config:
    """An Alembic config for the packaged migrations and the database at `url`."""
    config = Config()
    config.set_main_option("script_location", _escape(str(MIGRATIONS_DIR)))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", _escape(url))
    return config


def head_revision() -> str | None:
    """The newest revision of the packaged migrations."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _is_in_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to `revision` to the database at `url` (a no-op when the
    database is already there). Safe to call from inside a running event loop.

    An in-memory SQLite URL is refused: the schema would be created on a connection of its
    own and vanish with it. Use `upgrade_connection` on the connection you keep instead.
    """
    if _is_in_memory_sqlite(url):
        raise ValueError(
            "cannot migrate an in-memory SQLite database by URL; "
            "use storage.migrate.upgrade_connection on its connection"
        )
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


def _upgrade_sync(connection: Connection, revision: str) -> None:
    config = alembic_config(connection.engine.url.render_as_string(hide_password=False))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade_connection(connection: AsyncConnection, revision: str = "head") -> None:
    """Apply the migrations on an existing connection (an in-memory database, a test's
    shared connection). The caller owns the connection and its transaction."""
    await connection.run_sync(_upgrade_sync, revision)


def _current_revision_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at, or None if it has never been migrated."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            # read_only: the engine then begins with a plain BEGIN, not BEGIN IMMEDIATE.
            reader = await connection.execution_options(read_only=True)
            return await reader.run_sync(_current_revision_sync)
    finally:
        await engine.dispose()
