"""Alembic environment for the tables of storage/tables.py, on the project's async engine.

The database URL is set programmatically by `storage.migrate.alembic_config(url)`; nothing is
read from an ini file or from the environment here. The engine comes from
`storage.db.create_engine`, so migrations run on the bot's SQLite driver with its settings
(WAL, foreign keys, BEGIN IMMEDIATE behind the write lock, another process waited out).

A caller that already holds a (sync) connection may pass it in
`config.attributes["connection"]`; the migrations then run on it and nothing is created or
disposed here (see `storage.migrate.upgrade_connection`).

SQLite specifics:

- Migrations are rendered in batch mode (`render_as_batch=True`): SQLite cannot ALTER most
  things, so batch operations copy the table; on PostgreSQL the same operations are plain
  ALTERs.
- The whole upgrade runs in one transaction (`transactional_ddl=True`): the driver begins it
  with BEGIN IMMEDIATE at its first statement, so SQLite DDL is transactional and a failed
  migration leaves the database as it was.
- Foreign keys are switched off for the duration of the upgrade and checked with
  `PRAGMA foreign_key_check` before the commit (SQLite's documented procedure for altering
  tables). Otherwise a batch migration of a table that other rows refer to (client, staff,
  visit…) fails: dropping the old copy of the table counts as deleting the referenced rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from storage.db import create_engine

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "sqlalchemy.url is not set: build the Alembic config with "
            "storage.migrate.alembic_config(url)"
        )
    return url


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the project's and sqlmodel's column types with their full module path, and
    make the generated revision import that module."""
    if type_ != "type":
        return False
    module = type(obj).__module__
    if module.startswith("storage."):
        autogen_context.imports.add(f"import {module}")
    elif module.startswith("sqlmodel."):
        autogen_context.imports.add("import sqlmodel")
    else:
        return False
    return f"{module}.{obj!r}"


def _options(dialect_name: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "render_as_batch": True,
        "compare_type": True,
        "render_item": render_item,
    }
    if dialect_name == "sqlite":
        options["transactional_ddl"] = True
    return options


def run_migrations_offline() -> None:
    """Emit the migrations as SQL (`alembic upgrade --sql`) instead of running them."""
    url = _url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[bool]:
    """Switch SQLite's foreign keys off for the block; yield whether they were on.

    PRAGMA foreign_keys is a no-op inside a transaction, so it is sent on the DBAPI connection
    (no autobegin) before the migration transaction starts. A connection that is already in a
    transaction is left alone.
    """
    if connection.dialect.name != "sqlite" or connection.in_transaction():
        yield False
        return
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys")
        row = cursor.fetchone()
        was_on = bool(row and row[0])
        if was_on:
            cursor.execute("PRAGMA foreign_keys=OFF")
        try:
            yield was_on
        finally:
            if was_on:
                cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _check_foreign_keys(connection: Connection) -> None:
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        shown = ", ".join(
            f"{table} rowid {rowid} -> {parent}" for table, rowid, parent, _ in violations[:5]
        )
        raise RuntimeError(
            f"the migration left {len(violations)} foreign key violation(s): {shown}"
        )


def do_run_migrations(connection: Connection) -> None:
    """Run the pending migrations on `connection` (sync; called through run_sync)."""
    with _sqlite_foreign_keys_off(connection) as check_foreign_keys:
        context.configure(connection=connection, **_options(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
            if check_foreign_keys:
                _check_foreign_keys(connection)


async def run_async_migrations() -> None:
    """Create the project's engine for the configured URL and run the migrations on it."""
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run the migrations on a shared connection if one was given, else on a new engine."""
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    elif isinstance(connection, AsyncConnection):
        raise TypeError(
            'config.attributes["connection"] must be a sync Connection: call Alembic '
            "through AsyncConnection.run_sync (see storage.migrate.upgrade_connection)"
        )
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
