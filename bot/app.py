"""`regulars run`: the bot on every configured channel and the retention engine, until
stopped. Both webhooks (Telegram's and WhatsApp's) share one web server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web

from bot.clock import utc_now
from bot.composition import Core, build_core
from bot.config import Settings
from scheduler.delivery import Delivery
from scheduler.engine import DEFAULT_PACES, Engine, start_ticks
from scheduler.sender import Pace

log = logging.getLogger(__name__)


class NothingToRun(Exception):
    """No channel is configured."""


def whatsapp_configured(settings: Settings) -> bool:
    return all(
        (
            settings.whatsapp_phone_id,
            settings.whatsapp_token,
            settings.whatsapp_app_secret,
            settings.whatsapp_verify_token,
        )
    )


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
    polling_timeout: int = 30,
) -> None:
    """Migrate, build the core, start the scheduler and serve every configured channel
    until `stop` is set (or the task is cancelled)."""
    telegram = settings.telegram_bot_token is not None
    whatsapp = whatsapp_configured(settings)
    if not telegram and not whatsapp:
        raise NothingToRun(
            "no channel is configured: set TELEGRAM_BOT_TOKEN, or WHATSAPP_PHONE_ID, "
            "WHATSAPP_TOKEN, WHATSAPP_APP_SECRET and WHATSAPP_VERIFY_TOKEN (see .env.example)"
        )
    core = await build_core(
        database_url=settings.database_url, config_path=settings.business_config
    )
    stop = stop or asyncio.Event()
    needs_web = whatsapp or bool(settings.telegram_webhook_url)
    web_app = web.Application() if needs_web else None
    channels: dict[str, Delivery] = {}
    closers: list[Callable[[], Awaitable[object]]] = []
    services: list[Awaitable[object]] = []
    try:
        if telegram:
            from bot.adapters.telegram import create_bot, prepare_telegram, run_telegram
            from bot.adapters.telegram_delivery import TelegramDelivery

            assert settings.telegram_bot_token is not None
            bot = create_bot(
                settings.telegram_bot_token.get_secret_value(), settings.telegram_api_url
            )
            closers.append(bot.session.close)
            service = prepare_telegram(
                core=core, settings=settings, bot=bot, web_app=web_app, clock=clock
            )
            channels["telegram"] = TelegramDelivery(bot)
            services.append(
                run_telegram(
                    service,
                    default_language=core.config.business.default_locale,
                    stop=stop,
                    polling_timeout=polling_timeout,
                )
            )
        if whatsapp:
            assert web_app is not None
            channels["whatsapp"] = _whatsapp(core, settings, web_app, clock, closers)
            services.append(stop.wait())
        from bot.web import serving

        ticks = start_ticks(_engine(core, channels, clock, settings))
        try:
            async with serving(web_app, settings):
                await asyncio.gather(*services)
        finally:
            ticks.shutdown(wait=False)
    finally:
        for close in closers:
            await close()
        await core.close()


def _whatsapp(
    core: Core,
    settings: Settings,
    web_app: web.Application,
    clock: Callable[[], datetime],
    closers: list[Callable[[], Awaitable[object]]],
) -> Delivery:
    import httpx

    from bot.adapters.whatsapp import add_whatsapp_webhook
    from bot.adapters.whatsapp_delivery import WhatsAppDelivery
    from bot.adapters.whatsapp_outbound import HTTP_TIMEOUT, create_whatsapp

    assert settings.whatsapp_phone_id and settings.whatsapp_token
    assert settings.whatsapp_app_secret and settings.whatsapp_verify_token
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
    closers.append(http.aclose)
    client = create_whatsapp(
        phone_id=settings.whatsapp_phone_id,
        token=settings.whatsapp_token.get_secret_value(),
        api_url=settings.whatsapp_api_url,
        http=http,
    )
    add_whatsapp_webhook(
        web_app,
        core=core,
        client=client,
        verify_token=settings.whatsapp_verify_token.get_secret_value(),
        app_secret=settings.whatsapp_app_secret.get_secret_value(),
        clock=clock,
    )
    return WhatsAppDelivery(client, core.config, translators=core.deps.translators)


def _engine(
    core: Core, channels: dict[str, Delivery], clock: Callable[[], datetime], settings: Settings
) -> Engine:
    paces = dict(DEFAULT_PACES)
    paces["whatsapp"] = Pace(
        per_second=settings.whatsapp_messages_per_second,
        per_chat_seconds=DEFAULT_PACES["whatsapp"].per_chat_seconds,
    )
    return core.engine(
        channels=channels, clock=clock, paces={channel: paces[channel] for channel in channels}
    )
