from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.composition import Core, build_core_on
from bot.config import load_business_config
from domain.business import BusinessConfig
from storage.db import Database
from testing.chat import ChatClient, Clock, utc
from testing.databases import fresh_database
from tests.helpers import MASTER, OWNER

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config() -> BusinessConfig:
    return load_business_config(ROOT / "business.example.toml")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """SQLite, or PostgreSQL when REGULARS_TEST_POSTGRES is set (testing/databases.py)."""
    async with fresh_database(tmp_path) as database:
        yield database


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
    """Staff in the chat: Artem (owner, chat OWNER) and Ilya (master, chat MASTER) have
    Telegram; Marina has not joined yet. The shop speaks English, so staff read English."""
    ids = {"artem": int(OWNER), "ilya": int(MASTER)}
    masters = [m.model_copy(update={"telegram_id": ids.get(m.key)}) for m in config.masters]
    business = config.business.model_copy(update={"default_locale": "en"})
    return await build_core_on(
        db=db, config=config.model_copy(update={"masters": masters, "business": business})
    )
