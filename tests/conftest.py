from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from bot.composition import Core, build_core_on
from bot.config import load_business_config
from domain.business import BusinessConfig
from storage.db import Database, create_engine
from testing.chat import ChatClient, Clock, utc
from tests.helpers import MASTER, OWNER

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config() -> BusinessConfig:
    return load_business_config(ROOT / "business.example.toml")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'regulars.db'}"))
    async with database.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
async def core(db: Database, config: BusinessConfig) -> Core:
    return await build_core_on(db=db, config=config)


@pytest.fixture
def clock() -> Clock:
    # Monday 23 November 2026, 09:00 in Moscow.
    return Clock(utc(2026, 11, 23, 6, 0))


@pytest.fixture
def chat(core: Core, clock: Clock) -> ChatClient:
    return ChatClient(core.conversations, clock)


@pytest.fixture
async def shop(db: Database, config: BusinessConfig) -> Core:
    """Artem (owner, chat 7001) and Ilya (master, chat 7002) have Telegram; Marina has not
    joined yet. The shop speaks English, so staff read English."""
    ids = {"artem": int(OWNER), "ilya": int(MASTER)}
    masters = [m.model_copy(update={"telegram_id": ids.get(m.key)}) for m in config.masters]
    business = config.business.model_copy(update={"default_locale": "en"})
    return await build_core_on(
        db=db, config=config.model_copy(update={"masters": masters, "business": business})
    )
