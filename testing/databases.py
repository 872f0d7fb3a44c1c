"""The test suite's databases: a SQLite file by default, or a fresh database on a real
PostgreSQL server when REGULARS_TEST_POSTGRES names one (`.ci/postgres` starts it):
`REGULARS_TEST_POSTGRES=postgresql+asyncpg://regulars@127.0.0.1:55432/postgres`."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from storage.db import Database, create_engine, sqlite_url_for

POSTGRES_ENV = "REGULARS_TEST_POSTGRES"


def postgres_server() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


@asynccontextmanager
async def new_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database of the backend under test, dropped afterwards."""
    server = postgres_server()
    if server is None:
        yield sqlite_url_for(str(tmp_path / "regulars.db"))
        return
    async with new_postgres_database(server) as url:
        yield url


@asynccontextmanager
async def new_postgres_database(server: str, prefix: str = "regulars_test") -> AsyncIterator[str]:
    """A fresh, empty database on the PostgreSQL server that `server` (a URL of any of its
    databases) names: its URL, the database dropped afterwards (open connections too)."""
    import asyncpg  # type: ignore[import-untyped]  # the PostgreSQL run only

    admin = make_url(server)
    name = f"{prefix}_{secrets.token_hex(6)}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


@asynccontextmanager
async def fresh_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A database with the whole schema (the models), for one test."""
    async with new_database_url(tmp_path) as url:
        database = Database(create_engine(url))
        async with database.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        try:
            yield database
        finally:
            await database.dispose()
