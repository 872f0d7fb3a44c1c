"""`regulars run`: the bot on every configured channel and the retention engine, until
stopped. Both webhooks (Telegram's and WhatsApp's) share one web server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from aiohttp import web

from bot.composition import Core, build_core
from bot.config import Settings
from scheduler.delivery import Delivery
from scheduler.engine import DEFAULT_PACES, Engine, Ticks, start_ticks
from scheduler.sender import Pace

log = logging.getLogger(__name__)


class NothingToRun(Exception):
    """No channel is configured."""


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        from bot.adapters.telegram import serving

        ticks = start_ticks(_engine(core, channels, clock, settings))
        # The engine winds down alongside the channels, so one stop takes about 10 s, not 20.
        engine_stopped = asyncio.create_task(_stop_when(stop, ticks))
        try:
            async with serving(web_app, settings):
                await asyncio.gather(*services)
        finally:
            stop.set()  # a channel that failed stops the rest too
            await engine_stopped
    finally:
        for close in closers:
            await close()
        await core.close()


async def _stop_when(stop: asyncio.Event, ticks: Ticks) -> None:
    await stop.wait()
    await ticks.stop()


@contextmanager
def stopping_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM (what `docker stop` and `systemctl stop` send) and Ctrl-C set `stop`: the
    bot stops taking updates and finishes the turns and sends in flight, instead of dying
    in the middle of them."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, _on_signal, stop, number)
    try:
        yield
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


def _on_signal(stop: asyncio.Event, number: int) -> None:
    if stop.is_set():
        log.info("%s: already stopping", signal.Signals(number).name)
        return
    log.info("%s: stopping after the work in progress", signal.Signals(number).name)
    stop.set()


def _whatsapp(
    core: Core,
    settings: Settings,
    web_app: web.Application,
    clock: Callable[[], datetime],
    closers: list[Callable[[], Awaitable[object]]],
) -> Delivery:
    import httpx

    from bot.adapters.whatsapp import HTTP_TIMEOUT, add_whatsapp_webhook, create_whatsapp
    from bot.adapters.whatsapp_delivery import WhatsAppDelivery

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
