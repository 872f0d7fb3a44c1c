"""Operations: backups of a live SQLite database, restore, GET /healthz and /metrics."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import SQLModel

from bot.app import keep_checkpointing, sole_poller, sole_runner
from bot.backup import BackupError, backup, daily_backup, restore
from bot.composition import Core, build_core_on
from bot.config import Settings, StartupError
from bot.health import Metrics, add_health_routes
from domain.business import BusinessConfig
from storage.db import Database, create_engine, sqlite_url_for
from storage.tables import Client, Outbox, OutboxStatus
from testing.chat import ChatClient, Clock
from testing.databases import new_database_url, postgres_server
from tests.helpers import register


@pytest.fixture
async def sqlite_core(tmp_path: Path, config: BusinessConfig) -> AsyncIterator[Core]:
    """Backups are of SQLite files: these tests use one whatever the suite's backend."""
    db = Database(create_engine(sqlite_url_for(str(tmp_path / "regulars.db"))))
    async with db.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    core = await build_core_on(db=db, config=config)
    yield core
    await core.close()


@pytest.fixture
def chat(core: Core, clock: Clock) -> ChatClient:
    return ChatClient(core.conversations, clock, language="en")


@pytest.fixture
def sqlite_chat(sqlite_core: Core, clock: Clock) -> ChatClient:
    return ChatClient(sqlite_core.conversations, clock, language="en")


def _clients(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM client ORDER BY id")]
    db.close()
    return names


async def test_a_backup_of_the_live_database_has_every_row(
    sqlite_chat: ChatClient, tmp_path: Path
) -> None:
    await register(sqlite_chat)
    url = sqlite_url_for(str(tmp_path / "regulars.db"))
    copy = backup(url, tmp_path / "backups" / "today.db")  # while the bot's engine is open
    assert _clients(copy) == ["Ivan"]
    with pytest.raises(BackupError, match="cannot be the database itself"):
        backup(url, tmp_path / "regulars.db")


async def test_restore_puts_the_backup_back_and_refuses_a_running_bot(
    sqlite_chat: ChatClient, sqlite_core: Core, tmp_path: Path
) -> None:
    await register(sqlite_chat)
    url = sqlite_url_for(str(tmp_path / "regulars.db"))
    copy = backup(url, tmp_path / "copy.db")
    with sole_runner(url), pytest.raises(BackupError, match="a running bot uses"):
        restore(url, copy)
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    with pytest.raises(BackupError, match="is not a Regulars database backup"):
        restore(url, junk)
    await sqlite_core.close()
    with sqlite3.connect(tmp_path / "regulars.db") as db:
        db.execute("DELETE FROM client_identity")
        db.execute("DELETE FROM conversation")
        db.execute("DELETE FROM client")
    db.close()
    assert _clients(tmp_path / "regulars.db") == []
    restore(url, copy)
    assert _clients(tmp_path / "regulars.db") == ["Ivan"]


async def test_the_daily_backup_is_made_once_a_day_and_rotated(
    sqlite_chat: ChatClient, clock: Clock, tmp_path: Path
) -> None:
    await register(sqlite_chat)
    url = sqlite_url_for(str(tmp_path / "regulars.db"))
    folder = tmp_path / "daily"
    made = []
    for day in range(5):
        now = clock.now + timedelta(days=day)
        made.append(daily_backup(url, folder, 3, now))
        assert daily_backup(url, folder, 3, now + timedelta(hours=1)) is None  # once a day
    assert [p.name for p in sorted(folder.iterdir())] == [
        "regulars-2026-11-25.db",
        "regulars-2026-11-26.db",
        "regulars-2026-11-27.db",
    ]
    assert _clients(folder / "regulars-2026-11-27.db") == ["Ivan"]


def test_backup_tells_a_postgresql_operator_what_to_use(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        backup("postgresql+asyncpg://u@localhost/shop", tmp_path / "x.db")


async def _client_of(core: Core, clock: Clock, last_tick: datetime | None) -> TestClient:
    app = web.Application()
    metrics = Metrics()
    core.conversations.observe = metrics.observe_turn
    add_health_routes(
        app, db=core.db, metrics=metrics, last_tick=lambda: last_tick, clock=lambda: clock.now
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_healthz_says_what_is_wrong(core: Core, clock: Clock) -> None:
    client = await _client_of(core, clock, None)
    try:
        answer = await client.get("/healthz")
        body = await answer.json()
        assert answer.status == 503
        assert (body["database"], body["scheduler"]) == ("ok", "stalled")
    finally:
        await client.close()
    client = await _client_of(core, clock, clock.now - timedelta(seconds=30))
    try:
        answer = await client.get("/healthz")
        body = await answer.json()
        assert answer.status == 200 and body["status"] == "ok"
        assert body["last_successful_send"] is None
    finally:
        await client.close()


async def test_metrics_count_turns_and_messages_by_kind(
    core: Core, chat: ChatClient, clock: Clock
) -> None:
    client = await _client_of(core, clock, clock.now)
    async with core.db.transaction() as session:
        for n, status in enumerate((OutboxStatus.sent, OutboxStatus.sent, OutboxStatus.pending)):
            session.add(
                Outbox(
                    kind="reminder",
                    due_at=clock.now - timedelta(minutes=10),
                    dedupe_key=f"k{n}",
                    status=status,
                    sent_at=clock.now - timedelta(minutes=9) if status == "sent" else None,
                    payload={},
                    created_at=clock.now,
                )
            )
    try:
        await chat.send("/start")
        text = await (await client.get("/metrics")).text()
    finally:
        await client.close()
    assert 'regulars_messages{kind="reminder",status="sent"} 2.0' in text
    assert "regulars_outbox_backlog 1.0" in text
    assert "regulars_send_delay_seconds 60.0" in text
    assert 'regulars_updates_total{channel="telegram"} 1.0' in text
    assert 'regulars_turn_seconds_count{channel="telegram"} 1.0' in text


@pytest.mark.skipif(postgres_server() is None, reason="needs REGULARS_TEST_POSTGRES")
async def test_a_second_poller_on_postgresql_refuses_to_start(tmp_path: Path) -> None:
    async with new_database_url(tmp_path) as url:
        settings = Settings(
            _env_file=None, database_url=url, telegram_bot_token="123456:secret-token"
        )
        async with sole_poller(settings):
            with pytest.raises(StartupError, match="already polling Telegram for this bot"):
                async with sole_poller(settings):
                    pass
            webhook = settings.model_copy(update={"telegram_webhook_url": "https://x/y"})
            async with sole_poller(webhook):  # replicas behind webhooks need no lock
                pass
        async with sole_poller(settings):  # released when the first one stopped
            pass


def rows_in_the_file(path: Path) -> int:
    """The clients the SQLite file itself holds, its WAL left unread: what checkpoints
    have copied into it."""
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as raw:
        return int(raw.execute("SELECT count(*) FROM client").fetchone()[0])


async def test_regulars_run_checkpoints_the_wal_in_the_background_not_in_its_commits(
    tmp_path: Path,
) -> None:
    """Commits leave the WAL's pages in it (no checkpoint inside a turn's or the
    planner's COMMIT); the background checkpoint copies them into the file."""
    path = tmp_path / "regulars.db"
    db = Database(create_engine(sqlite_url_for(str(path)), background_checkpoints=True))
    async with db.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    await db.checkpoint()
    for n in range(300):  # 300 commits: SQLite's own limit of 1,000 pages would checkpoint
        async with db.transaction(inline=True) as session:
            session.add(Client(name=f"c{n}", phone=f"+7999{n:07d}", created_at=NOW))
    assert rows_in_the_file(path) == 0
    stop = asyncio.Event()
    checkpointing = asyncio.create_task(keep_checkpointing(db, stop=stop, every=0.01))
    for _ in range(200):
        if rows_in_the_file(path) == 300:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(checkpointing, 2)
    assert rows_in_the_file(path) == 300
    pages, copied = await db.checkpoint() or (0, -1)
    assert pages == copied > 300
    await db.dispose()


async def test_without_background_checkpoints_sqlite_checkpoints_in_the_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "regulars.db"
    db = Database(create_engine(sqlite_url_for(str(path))))
    async with db.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    for n in range(300):
        async with db.transaction(inline=True) as session:
            session.add(Client(name=f"c{n}", phone=f"+7999{n:07d}", created_at=NOW))
    assert rows_in_the_file(path) > 0
    await db.dispose()
    memory = Database(create_engine("sqlite+aiosqlite:///:memory:"))
    assert await memory.checkpoint() is None  # no WAL there
    await memory.dispose()


NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
