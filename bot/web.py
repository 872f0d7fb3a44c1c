"""The one web server the channels share: Telegram's and WhatsApp's webhooks are routes
on a single aiohttp application, listening on WEB_HOST:WEB_PORT. Each adapter adds its
own routes (`add_telegram_webhook`, `add_whatsapp_webhook`) before it starts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from bot.config import Settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def serving(web_app: web.Application | None, settings: Settings) -> AsyncIterator[None]:
    """Listen on WEB_HOST:WEB_PORT while the block runs (nothing when there is no app)."""
    if web_app is None:
        yield
        return
    runner = web.AppRunner(web_app)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.web_host, settings.web_port).start()
        log.info("listening on %s:%s", settings.web_host, settings.web_port)
        yield
    finally:
        await runner.cleanup()
