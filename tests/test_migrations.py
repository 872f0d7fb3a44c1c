"""The Alembic migrations in storage/migrations against the models of storage/tables.py.

`test_migrations_match_the_models` is the one that fails when a table changes without a
migration: add a revision (see storage/migrate.py) or, while no database has been released,
regenerate 0001_initial.py.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from storage.db import create_engine
from storage.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
    upgrade_connection,
)
from testing.databases import new_database_url, postgres_server

MODEL_TABLES = set(SQLModel.metadata.tables)


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the backend under test (PostgreSQL in the PostgreSQL run)."""
    async with new_database_url(tmp_path) as found:
        yield found


async def _run(url: str, fn: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_upgrade_creates_every_table(url: str) -> None:
    await upgrade(url)

    tables = await _run(url, _table_names)
    assert tables == MODEL_TABLES | {"alembic_version"}
    assert await current_revision(url) == head_revision()


async def test_migrations_match_the_models(url: str) -> None:
    await upgrade(url)

    diff = await _run(url, _schema_diff)
    hint = "storage/tables.py and the migrations disagree; add a migration"
    assert diff == [], f"{hint}: {diff!r}"


async def test_upgrade_twice_is_harmless(url: str) -> None:
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO staff (key, name, role, active) VALUES ('a', 'Anna', 'master', true)"
                ),
            )
    finally:
        await engine.dispose()

    await upgrade(url)

    assert await current_revision(url) == head_revision()
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = (await connection.execute(text("SELECT name FROM staff"))).scalars().all()
    finally:
        await engine.dispose()
    assert names == ["Anna"]
    assert await _run(url, _schema_diff) == []


SQLITE_ONLY = pytest.mark.skipif(
    postgres_server() is not None, reason="SQLite's own pragmas and batch mode"
)


@SQLITE_ONLY
async def test_engine_pragmas_after_upgrade(url: str) -> None:
    await upgrade(url)

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            journal_mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
    finally:
        await engine.dispose()
    assert journal_mode == "wal"
    assert foreign_keys == 1


async def test_current_revision_of_an_empty_database(url: str) -> None:
    assert await current_revision(url) is None


async def test_downgrade_to_base_and_back(url: str) -> None:
    await upgrade(url)
    config = alembic_config(url)

    # Alembic's commands are sync and env.py starts its own event loop: run them in a thread.
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await _run(url, _table_names) == {"alembic_version"}
    assert await current_revision(url) is None

    await upgrade(url)
    assert await _run(url, _schema_diff) == []


async def test_upgrade_on_a_shared_connection() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        async with engine.connect() as connection:
            await upgrade_connection(connection)
            assert await connection.run_sync(_table_names) == MODEL_TABLES | {"alembic_version"}
            assert await connection.run_sync(_schema_diff) == []
            # The migration switches foreign keys off for itself only.
            foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
            assert foreign_keys == 1
    finally:
        await engine.dispose()


async def test_upgrade_refuses_an_in_memory_url() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        await upgrade("sqlite+aiosqlite:///:memory:")


LATER_REVISION = """
\"\"\"A later migration, for the tests below.\"\"\"

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
"""

SEED_VISIT = (
    "INSERT INTO staff (id, key, name, role, active) VALUES (1, 'a', 'A', 'master', true)",
    "INSERT INTO service (id, key, name, name_en, duration_minutes, price,"
    " return_interval_days, care_tip, care_tip_en, active)"
    " VALUES (1, 'cut', 'Cut', '', 30, 0, 30, '', '', true)",
    "INSERT INTO client (id, name, locale, source, staff_notes, preference_note, holdout,"
    " created_at) VALUES (1, 'Bob', 'ru', 'telegram', '', '', false, '2026-01-01 10:00:00')",
    "INSERT INTO visit (client_id, master_id, service_id, starts_at, ends_at, status, price,"
    " source, created_at, comment) VALUES (1, 1, 1, '2026-01-02 10:00:00',"
    " '2026-01-02 10:30:00', 'booked', 0, 'telegram', '2026-01-01 10:00:00', '')",
)


async def _migrated_with_a_visit(url: str) -> None:
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in SEED_VISIT:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _upgrade_with_later_revision(url: str, tmp_path: Path, body: str) -> None:
    """Upgrade `url` with a copy of the packaged migrations plus revision 9999 doing `body`."""
    scripts = tmp_path / "migrations"
    shutil.copytree(
        MIGRATIONS_DIR,
        scripts,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    revision = LATER_REVISION.format(head=head_revision(), body=body)
    (scripts / "versions" / "9999_later.py").write_text(revision, encoding="utf-8")
    config = alembic_config(url)
    config.set_main_option("script_location", str(scripts))
    await asyncio.to_thread(command.upgrade, config, "head")


def _client_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("client")}


@SQLITE_ONLY
async def test_batch_migration_of_a_referenced_table_keeps_the_rows(
    url: str, tmp_path: Path
) -> None:
    """SQLite batch mode copies the table and drops the old one; with foreign keys on,
    dropping `client` while a visit refers to it fails. env.py switches them off for the
    migration and runs PRAGMA foreign_key_check before committing."""
    await _migrated_with_a_visit(url)

    await _upgrade_with_later_revision(
        url,
        tmp_path,
        # "always": copy the table, as any non-trivial SQLite change does.
        '    with op.batch_alter_table("client", recreate="always") as batch_op:\n'
        '        batch_op.add_column(sa.Column("nickname", sa.String(), nullable=True))',
    )

    assert "nickname" in await _run(url, _client_columns)
    assert await current_revision(url) == "9999"
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            visits = (await connection.execute(text("SELECT count(*) FROM visit"))).scalar_one()
            violations = (await connection.execute(text("PRAGMA foreign_key_check"))).all()
    finally:
        await engine.dispose()
    assert visits == 1
    assert violations == []


@SQLITE_ONLY
async def test_migration_leaving_broken_references_is_rolled_back(url: str, tmp_path: Path) -> None:
    """The whole upgrade is one transaction: a migration that leaves a foreign key
    violation fails and leaves neither its schema change nor its data change behind."""
    await _migrated_with_a_visit(url)

    with pytest.raises(RuntimeError, match="foreign key violation"):
        await _upgrade_with_later_revision(
            url,
            tmp_path,
            '    op.add_column("client", sa.Column("nickname", sa.String(), nullable=True))\n'
            '    op.execute("DELETE FROM client")',
        )

    assert await current_revision(url) == head_revision()
    assert "nickname" not in await _run(url, _client_columns)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            clients = (await connection.execute(text("SELECT count(*) FROM client"))).scalar_one()
    finally:
        await engine.dispose()
    assert clients == 1


SEED_0001_CLIENTS = (
    "INSERT INTO client (id, name, phone, telegram_id, whatsapp_id, locale, source, staff_notes,"
    " preference_note, holdout, created_at, telegram_unreachable_at, last_inbound_whatsapp_at)"
    " VALUES (1, 'Ann', '+79160000001', 5001, '79160000001', 'ru', 'telegram', '', '', false,"
    " '2026-01-01 10:00:00', '2026-02-01 10:00:00', '2026-03-01 10:00:00')",
    "INSERT INTO client (id, name, locale, source, staff_notes, preference_note, holdout,"
    " created_at) VALUES (2, 'Bob', 'ru', 'import', '', '', false, '2026-01-01 10:00:00')",
    # Typed or shared in Telegram: nobody can tell now, so it is only a claim.
    "INSERT INTO client (id, name, phone, telegram_id, locale, source, staff_notes,"
    " preference_note, holdout, created_at) VALUES (3, 'Cid', '+79160000003', 5003, 'ru',"
    " 'telegram', '', '', false, '2026-01-01 10:00:00')",
    "INSERT INTO client (id, name, phone, locale, source, staff_notes, preference_note,"
    " holdout, created_at) VALUES (4, 'Dan', '+79160000004', 'ru', 'import', '', '', false,"
    " '2026-01-01 10:00:00')",
)


async def _sql(url: str, *statements: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            results = [await connection.execute(text(s)) for s in statements]
            return [[_plain(row) for row in r.all()] if r.returns_rows else None for r in results]
    finally:
        await engine.dispose()


def _plain(row: Any) -> tuple[Any, ...]:
    """A raw row as SQLite gives it: PostgreSQL returns timestamps as datetimes."""
    return tuple(v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else v for v in row)


async def test_0002_moves_the_chats_into_client_identity_and_back(url: str) -> None:
    await upgrade(url, "0001")
    await _sql(url, *SEED_0001_CLIENTS)

    await upgrade(url)

    [identities, phones] = await _sql(
        url,
        "SELECT client_id, channel, external_id, verified, last_inbound_at, unreachable_since"
        " FROM client_identity WHERE client_id = 1 ORDER BY channel",
        "SELECT id, phone_verified FROM client ORDER BY id",
    )
    assert [tuple(row) for row in identities] == [
        (1, "telegram", "5001", 1, None, "2026-02-01 10:00:00"),
        (1, "whatsapp", "79160000001", 1, "2026-03-01 10:00:00", None),
    ]
    assert [tuple(row) for row in phones] == [(1, 1), (2, 0), (3, 0), (4, 1)]

    await asyncio.to_thread(command.downgrade, alembic_config(url), "0001")

    [restored] = await _sql(
        url,
        "SELECT telegram_id, whatsapp_id, telegram_unreachable_at, last_inbound_whatsapp_at"
        " FROM client ORDER BY id",
    )
    assert [tuple(row) for row in restored] == [
        (5001, "79160000001", "2026-02-01 10:00:00", "2026-03-01 10:00:00"),
        (None, None, None, None),
        (5003, None, None, None),
        (None, None, None, None),
    ]
