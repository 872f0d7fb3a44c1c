"""The composition root: settings in, a working application out. Nothing here runs at
import time; every piece is built by a call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from bot.config import Settings, StartupError, load_business_config
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


async def build_core(
    *,
    database_url: str,
    config_path: Path,
    migrate: bool = True,
    background_checkpoints: bool = False,
) -> Core:
    """Load and check the configuration, bring the schema up to date, sync the shop's
    services and masters into it and wire the conversations. A database that cannot be
    used is a StartupError, one line for the operator. `background_checkpoints`: the
    caller runs `Database.checkpoint` (see `storage.db.create_engine`)."""
    config = load_business_config(config_path)
    if migrate:
        await upgrade_database(database_url)
    try:
        db = Database(create_engine(database_url, background_checkpoints=background_checkpoints))
    except DATABASE_TROUBLE as error:
        raise database_problem(database_url, error) from None
    try:
        return await build_core_on(db=db, config=config)
    except DATABASE_TROUBLE as error:
        await db.dispose()
        raise database_problem(database_url, error) from None
    except BaseException:
        await db.dispose()
        raise


# A URL SQLAlchemy cannot read, a driver that is not installed, a file that cannot be
# opened or written, a server that does not answer.
DATABASE_TROUBLE = (SQLAlchemyError, OSError, ImportError)


async def upgrade_database(database_url: str) -> None:
    """The Alembic migrations, with a broken database as a StartupError."""
    try:
        await upgrade(database_url)
    except DATABASE_TROUBLE as error:
        raise database_problem(database_url, error) from None


def database_problem(database_url: str, error: BaseException) -> StartupError:
    """The URL without its password and the driver's own words, on one line."""
    if isinstance(error, ArgumentError) and not isinstance(error, NoSuchModuleError):
        return StartupError(
            "DATABASE_URL is not a database URL; use one like sqlite+aiosqlite:///regulars.db "
            "or postgresql+asyncpg://user:password@host/regulars"
        )
    reason = getattr(error, "orig", None) or error
    words = " ".join(str(reason).split()) or type(reason).__name__
    return StartupError(f"cannot use the database {_shown(database_url)}: {words}")


def _shown(database_url: str) -> str:
    try:
        return make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "in DATABASE_URL"


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
