"""`regulars run`: the bot on every configured channel and the retention engine, until
stopped. Both webhooks (Telegram's and WhatsApp's) share one web server."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import datetime
from pathlib import Path

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.clock import utc_now
from bot.composition import Core, build_core, database_problem
from bot.config import Settings, StartupError
from bot.health import Metrics, add_health_routes
from scheduler.delivery import Delivery
from scheduler.engine import DEFAULT_PACES, Engine, Ticks, start_ticks
from scheduler.sender import Pace
from storage.db import Database, create_engine
from storage.locks import POLLER_LOCK_SPACE

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
    with sole_runner(settings.database_url):
        async with sole_poller(settings):
            await _serve(
                settings,
                stop=stop or asyncio.Event(),
                clock=clock,
                polling_timeout=polling_timeout,
            )


@asynccontextmanager
async def sole_poller(settings: Settings) -> AsyncIterator[None]:
    """On PostgreSQL, one poller per Telegram bot: Telegram hands each update to one
    getUpdates caller, so two pollers would split the chats between them. Replicas in
    webhook mode need no lock. A session-level advisory lock, held on a connection of its
    own while the bot runs; the server drops it when the process dies."""
    token = settings.telegram_bot_token
    url = make_url(settings.database_url)
    if (
        token is None
        or settings.telegram_webhook_url
        or not url.drivername.startswith("postgresql")
    ):
        yield
        return
    head = token.get_secret_value().split(":", 1)[0]  # the bot's id; the secret stays out
    bot_id = int(head) % 2**31 if head.isdigit() else 0
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            taken = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:space, :bot)"),
                {"space": POLLER_LOCK_SPACE, "bot": bot_id},
            )
            if not taken:
                raise StartupError(
                    "another `regulars run` is already polling Telegram for this bot on this "
                    "database; run one poller, or several replicas with TELEGRAM_WEBHOOK_URL"
                )
            await connection.commit()
            yield
    finally:
        await engine.dispose()


async def _serve(
    settings: Settings, *, stop: asyncio.Event, clock: Callable[[], datetime], polling_timeout: int
) -> None:
    telegram = settings.telegram_bot_token is not None
    whatsapp = whatsapp_configured(settings)
    core = await build_core(
        database_url=settings.database_url,
        config_path=settings.business_config,
        background_checkpoints=True,
    )
    # Always served: the webhooks, and GET /healthz and /metrics (polling mode too).
    web_app = web.Application()
    metrics = Metrics()
    core.conversations.observe = metrics.observe_turn
    channels: dict[str, Delivery] = {}
    closers: list[Callable[[], Awaitable[object]]] = []
    # Started only once the web server listens: a port in use leaves nothing half-begun.
    services: list[Callable[[], Awaitable[object]]] = []
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
                lambda: run_telegram(
                    service,
                    default_language=core.config.business.default_locale,
                    stop=stop,
                    polling_timeout=polling_timeout,
                )
            )
        if whatsapp:
            assert web_app is not None
            channels["whatsapp"] = _whatsapp(core, settings, web_app, clock, closers)
            services.append(stop.wait)
        from bot.web import serving

        ticks = start_ticks(_engine(core, channels, clock, settings))
        add_health_routes(
            web_app,
            db=core.db,
            metrics=metrics,
            last_tick=lambda: ticks.last_tick_at,
            clock=clock,
        )
        if core.db.is_sqlite:  # PostgreSQL checkpoints by itself
            services.append(lambda: keep_checkpointing(core.db, stop=stop))
        if settings.backup_dir is not None:
            from bot.backup import keep_backing_up

            folder, keep = settings.backup_dir, settings.backup_keep
            services.append(
                lambda: keep_backing_up(settings.database_url, folder, keep, clock=clock, stop=stop)
            )
        # The engine winds down alongside the channels, so one stop takes about 10 s, not 20.
        engine_stopped = asyncio.create_task(_stop_when(stop, ticks))
        try:
            with settled_heap():
                async with serving(web_app, settings):
                    await asyncio.gather(*(service() for service in services))
        finally:
            stop.set()  # a channel that failed stops the rest too
            await engine_stopped
    finally:
        for close in closers:
            await close()
        await core.close()


CHECKPOINT_EVERY = 10.0  # seconds


async def keep_checkpointing(
    db: Database, *, stop: asyncio.Event, every: float | None = None
) -> None:
    """`regulars run`'s WAL checkpoints, in a worker thread every `every` seconds
    (`CHECKPOINT_EVERY`), so no commit — a turn's on the event loop, the planner's —
    copies and syncs the WAL itself (`storage.db.create_engine`). A failure is logged and
    tried again next time."""
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every or CHECKPOINT_EVERY)
        try:
            await db.checkpoint()
        except (OSError, sqlite3.Error) as error:
            log.warning("WAL checkpoint failed: %s", error)


@contextmanager
def settled_heap() -> Iterator[None]:
    """While the block runs, keep what the built bot holds for good out of the cyclic
    garbage collector.

    Once everything is built — the modules, aiogram's and pydantic's models and
    validators, Babel's locale data, the catalog — the process holds some 280,000 objects
    that live as long as it does. Python's collector walks all of them at every full
    collection, which comes every few thousand updates: about 240 ms on a 2-core machine,
    during which no chat is answered. `gc.freeze` moves them to a generation the collector
    leaves alone (a full collection then takes well under a millisecond); what the turns
    allocate is collected as ever. Afterwards they are handed back, for a caller that goes
    on (the tests, the benchmark)."""
    gc.collect()  # what is garbage already goes first, not into the frozen generation
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def sole_runner(database_url: str) -> Iterator[None]:
    """Hold an exclusive lock on `<db>.lock` while the block runs: two `regulars run` on one
    SQLite file fail each other's turns ("database is locked") and send twice as fast as
    the messengers allow. The kernel drops the lock when the process dies, however."""
    path = sqlite_file(database_url)
    if path is None:
        yield
        return
    lock = path.with_name(path.name + ".lock")
    try:
        handle = lock.open("a")
    except OSError as error:  # no such folder, no right to write there
        raise StartupError(f"cannot use the database {path}: {error.strerror or error}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"another `regulars run` is using {path}; one SQLite database serves one "
                "process, for several replicas use PostgreSQL (DATABASE_URL=postgresql+asyncpg://…)"
            ) from None
        yield


def sqlite_file(database_url: str) -> Path | None:
    """The SQLite file of `database_url`; None for another database or one in memory."""
    try:
        url = make_url(database_url)
    except ArgumentError as error:
        raise database_problem(database_url, error) from None
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database.removeprefix("file:")).resolve()  # "file:…?mode=ro&uri=true"


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
