"""`regulars run`: the bot on every configured channel, until stopped."""

from __future__ import annotations

import asyncio
import logging

from bot.composition import build_core
from bot.config import Settings

log = logging.getLogger(__name__)


class NothingToRun(Exception):
    """No channel is configured."""


async def run(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Migrate, build the core and serve every configured channel until `stop` is set
    (or the task is cancelled)."""
    if settings.telegram_bot_token is None:
        raise NothingToRun("no channel is configured: set TELEGRAM_BOT_TOKEN (see .env.example)")
    core = await build_core(
        database_url=settings.database_url, config_path=settings.business_config
    )
    stop = stop or asyncio.Event()
    try:
        from bot.adapters.telegram import serve_telegram

        await serve_telegram(core=core, settings=settings, stop=stop)
    finally:
        await core.close()
