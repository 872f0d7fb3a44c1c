"""The composition root: settings in, a working application out. Nothing here runs at
import time; every piece is built by a call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.config import Settings, load_business_config
from bot.i18n import build_translators
from domain.business import BusinessConfig
from handlers.conversation import Conversations
from handlers.turn import Deps
from scheduler.delivery import Delivery
from scheduler.engine import Engine, build_engine
from storage.catalog import load_catalog, sync_catalog
from storage.db import Database, create_engine
from storage.migrate import upgrade

log = logging.getLogger(__name__)


@dataclass
class Core:
    """What every entry point needs: the database, the config and the conversations."""

    db: Database
    config: BusinessConfig
    deps: Deps
    conversations: Conversations

    def engine(
        self, *, channels: Mapping[str, Delivery], clock: Callable[[], datetime], **options: Any
    ) -> Engine:
        """The retention engine on this core's database, configuration and texts."""
        return build_engine(
            db=self.db,
            config=self.config,
            catalog=self.deps.catalog,
            translators=self.deps.translators,
            channels=channels,
            clock=clock,
            **options,
        )

    async def close(self) -> None:
        await self.db.dispose()


async def build_core(*, database_url: str, config_path: Path, migrate: bool = True) -> Core:
    """Load and check the configuration, bring the schema up to date, sync the shop's
    services and masters into it and wire the conversations."""
    config = load_business_config(config_path)
    if migrate:
        await upgrade(database_url)
    db = Database(create_engine(database_url))
    try:
        return await build_core_on(db=db, config=config)
    except BaseException:
        await db.dispose()
        raise


async def build_core_on(*, db: Database, config: BusinessConfig) -> Core:
    """The same, on a database whose schema already exists (tests, simulations)."""
    async with db.transaction() as session:
        await sync_catalog(session, config)
    async with db.reading() as session:
        catalog = await load_catalog(session, config)
    deps = Deps(config=config, catalog=catalog, translators=build_translators(config))
    return Core(db=db, config=config, deps=deps, conversations=Conversations(db=db, deps=deps))


def settings_from(
    *, db: str | None = None, database_url: str | None = None, config: str | None = None
) -> Settings:
    """Settings from the environment, with command-line overrides on top."""
    overrides: dict[str, object] = {}
    if db:
        overrides["database_url"] = f"sqlite+aiosqlite:///{db}"
    elif database_url:
        overrides["database_url"] = database_url
    if config:
        overrides["business_config"] = Path(config)
    return Settings(**overrides)  # type: ignore[arg-type]
