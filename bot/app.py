"""`regulars run`: the bot on every configured channel and the retention engine, until
stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bot.composition import Core, build_core
from bot.config import Settings
from scheduler.delivery import Delivery
from scheduler.engine import Engine, build_engine, start_ticks

log = logging.getLogger(__name__)


class NothingToRun(Exception):
    """No channel is configured."""


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
    polling_timeout: int = 30,
) -> None:
    """Migrate, build the core, start the scheduler and serve every configured channel
    until `stop` is set (or the task is cancelled)."""
    if settings.telegram_bot_token is None:
        raise NothingToRun("no channel is configured: set TELEGRAM_BOT_TOKEN (see .env.example)")
    core = await build_core(
        database_url=settings.database_url, config_path=settings.business_config
    )
    stop = stop or asyncio.Event()
    from bot.adapters.telegram import create_bot, serve_telegram
    from bot.adapters.telegram_delivery import TelegramDelivery

    bot = create_bot(settings.telegram_bot_token.get_secret_value(), settings.telegram_api_url)
    channels: dict[str, Delivery] = {"telegram": TelegramDelivery(bot)}
    ticks = start_ticks(_engine(core, channels, clock))
    try:
        await serve_telegram(
            core=core,
            settings=settings,
            stop=stop,
            clock=clock,
            polling_timeout=polling_timeout,
            bot=bot,
        )
    finally:
        ticks.shutdown(wait=False)
        await bot.session.close()
        await core.close()


def _engine(core: Core, channels: dict[str, Delivery], clock: Callable[[], datetime]) -> Engine:
    return build_engine(
        db=core.db,
        config=core.config,
        catalog=core.deps.catalog,
        translators=core.deps.translators,
        channels=channels,
        clock=clock,
    )
