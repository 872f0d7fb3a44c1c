"""The one web server the channels share: Telegram's and WhatsApp's webhooks are routes
on a single aiohttp application, listening on WEB_HOST:WEB_PORT. Each adapter adds its
own routes (`add_telegram_webhook`, `add_whatsapp_webhook`) before it starts."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bot.config import Settings, StartupError

log = logging.getLogger(__name__)


class PathOnlyAccessLog(AbstractAccessLogger):
    """The access log without query strings or client addresses: Meta's handshake carries
    hub.verify_token in the query, and an address is personal data."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('"%s %s" %s %.3fs', request.method, request.path, response.status, time)


@asynccontextmanager
async def serving(web_app: web.Application | None, settings: Settings) -> AsyncIterator[None]:
    """Listen on WEB_HOST:WEB_PORT while the block runs (nothing when there is no app)."""
    if web_app is None:
        yield
        return
    runner = web.AppRunner(web_app, access_log_class=PathOnlyAccessLog)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, settings.web_host, settings.web_port).start()
        except OSError as error:  # the port is taken, or the address is not this host's
            where = f"{settings.web_host}:{settings.web_port}"
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise StartupError(f"cannot listen on {where}: {reason}") from None
        log.info("listening on %s:%s", settings.web_host, settings.web_port)
        yield
    finally:
        await runner.cleanup()
