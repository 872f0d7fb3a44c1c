"""Telegram through aiogram 3. Updates in → channel-neutral events → `Conversations` →
replies out as Bot API calls. What to say is decided in `handlers/`; this module only
translates, and knows Telegram's limits (4096 characters, one keyboard per message)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatType, ContentType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import DeleteMessage, EditMessageText, SendMessage, TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    ErrorEvent,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    TelegramObject,
    Update,
    User,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.adapters import common
from bot.adapters.common import ChatLocks
from bot.clock import Clock, utc_now
from bot.web import serving
from domain.replies import Button, Document, Reply
from handlers.conversation import Conversations
from handlers.events import Choice, Command, Contact, Event, Inbound, Text
from handlers.staff_menu import staff_command_lists
from handlers.turn import Links

if TYPE_CHECKING:
    from bot.composition import Core
    from bot.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhook/telegram"
MESSAGE_LIMIT = 4096  # UTF-16 code units, as Telegram counts them
CONTACT_BUTTON = "📱 Share my phone number"
# The last resort when an update fails before the conversation could answer; no translator
# is at hand here, and the conversation itself answers its own errors in the client's language.
SORRY = "Sorry, something went wrong. Please try again."
KEYBOARD_GONE = "✓"  # carries ReplyKeyboardRemove when the next reply has inline buttons
MAX_RETRY_AFTER = 30  # seconds of flood wait worth sitting out inside one update
DRAIN_SECONDS = 10.0  # how long shutdown waits for updates being handled
FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS = 1.0, 60.0  # Telegram unreachable at start

# Messages a person sends that the bot cannot read: the conversation re-shows its step.
# Service messages (pins, payments, "write access allowed" …) are ignored instead.
UNREADABLE = frozenset(
    {
        ContentType.ANIMATION,
        ContentType.AUDIO,
        ContentType.CHECKLIST,
        ContentType.DICE,
        ContentType.DOCUMENT,
        ContentType.GAME,
        ContentType.LIVE_PHOTO,
        ContentType.LOCATION,
        ContentType.PAID_MEDIA,
        ContentType.PHOTO,
        ContentType.POLL,
        ContentType.STICKER,
        ContentType.STORY,
        ContentType.VENUE,
        ContentType.VIDEO,
        ContentType.VIDEO_NOTE,
        ContentType.VOICE,
    }
)

COMMANDS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("start", "Main menu"),
        ("help", "Help"),
        ("stop", "No more offers"),
        ("mydata", "What you keep about me"),
        ("forget", "Erase my data"),
    ],
    "ru": [
        ("start", "Главное меню"),
        ("help", "Помощь"),
        ("stop", "Не присылать предложения"),
        ("mydata", "Какие мои данные хранятся"),
        ("forget", "Удалить мои данные"),
    ],
}


# --- the bot ---------------------------------------------------------------------------


def create_bot(token: str, api_url: str | None = None, session: BaseSession | None = None) -> Bot:
    """A Bot that sends plain text (nothing a client typed is ever parsed as HTML), through
    a self-hosted Bot API server when `api_url` is given."""
    api = TelegramAPIServer.from_base(api_url) if api_url else None
    if session is None:
        session = AiohttpSession(api=api) if api else AiohttpSession()
    elif api is not None:
        session.api = api
    return Bot(
        token,
        session=session,
        # Previews of the privacy-policy link would bury the consent buttons.
        default=DefaultBotProperties(parse_mode=None, link_preview_is_disabled=True),
    )


async def set_commands(bot: Bot, *, default_language: str = "en") -> None:
    """The command menu in Russian and English; a failure is logged, not fatal."""
    fallback = COMMANDS.get(default_language, COMMANDS["en"])
    menus: list[tuple[str | None, list[tuple[str, str]]]] = [
        *COMMANDS.items(),
        (None, fallback),
    ]
    try:
        for language, commands in menus:
            await bot.set_my_commands(
                [BotCommand(command=name, description=text) for name, text in commands],
                language_code=language,
            )
    except TelegramAPIError as error:
        log.warning("could not set the Telegram command menu: %s", error)


async def set_staff_commands(
    bot: Bot, lists: Sequence[tuple[int, tuple[tuple[str, str], ...]]]
) -> None:
    """Each member of staff sees their role's commands in their own chat."""
    for chat_id, commands in lists:
        try:
            await bot.set_my_commands(
                [BotCommand(command=name, description=text) for name, text in commands],
                scope=BotCommandScopeChat(chat_id=chat_id),
            )
        except TelegramAPIError as error:
            log.warning("could not set the commands of staff chat %s: %s", chat_id, error)


# --- updates → events ------------------------------------------------------------------


def event_of(message: Message) -> Event | None:
    """The conversation event a private message means, or None for service messages."""
    if message.text is not None:
        if message.text.startswith("/"):
            return _command(message.text)
        return Text(message.text)
    if message.contact is not None:
        phone = _international(message.contact.phone_number)
        sender = message.from_user.id if message.from_user else None
        # Only the sender's own number is vouched for; a forwarded contact is just digits.
        if message.contact.user_id is not None and message.contact.user_id == sender:
            return Contact(phone)
        return Text(phone)
    if message.content_type in UNREADABLE:
        return Text("")
    return None


def _command(text: str) -> Command:
    head, *rest = text[1:].split(maxsplit=1) or [""]
    name = head.split("@", 1)[0].lower()  # "/start@RegularsBot" in a client's hands
    return Command(name, rest[0].strip() if rest else "")


def _international(phone: str) -> str:
    # Telegram sends "79123456789"; without the "+" it would be read as a local number.
    phone = phone.strip()
    return phone if phone.startswith("+") else f"+{phone}"


# --- replies → Bot API -----------------------------------------------------------------


def inline_keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    return _keyboard(reply.buttons) if reply.buttons else None


@lru_cache(maxsize=4096)
def _keyboard(buttons: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup:
    """Built once per set of buttons: the same keyboards (the menu, the services, a day's
    times) are shown again and again, and pydantic's checks of a dozen buttons cost more
    than the rest of a short turn's rendering. Nothing changes a markup once built."""
    return InlineKeyboardMarkup(
        inline_keyboard=[[_inline_button(b) for b in row] for row in buttons if row]
    )


def _inline_button(button: Button) -> InlineKeyboardButton:
    """A choice answers with its payload; a link (https://, tg://user?id=…) is opened by
    Telegram itself."""
    if button.url is not None:
        return InlineKeyboardButton(text=button.label, url=button.url)
    return InlineKeyboardButton(text=button.label, callback_data=button.payload)


def contact_keyboard(reply: Reply) -> ReplyKeyboardMarkup:
    return _contact_keyboard(reply.contact_button or CONTACT_BUTTON)


@lru_cache(maxsize=64)
def _contact_keyboard(label: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=label, request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text` in pieces Telegram accepts, counted in UTF-16 units as Telegram counts."""
    return common.split_text(text, limit, _utf16_length)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def call(bot: Bot, method: TelegramMethod[T]) -> T:
    """A Bot API call that sits out one short flood wait instead of losing the message."""
    try:
        return await bot(method)
    except TelegramRetryAfter as error:
        if error.retry_after > MAX_RETRY_AFTER:
            raise
        log.warning(
            "Telegram asks to wait %s s before %s", error.retry_after, method.__api_method__
        )
        await asyncio.sleep(error.retry_after)
        return await bot(method)


class TelegramChannel:
    """Runs conversation turns for Telegram chats and renders their replies.

    Updates of one chat are handled one at a time, so replies come out in order even when a
    client taps twice quickly. Which chats were last shown the "share my phone" keyboard is
    remembered in memory only; losing it on restart just leaves that one-time keyboard be."""

    def __init__(self, conversations: Conversations, clock: Clock) -> None:
        self.conversations = conversations
        self.clock = clock
        self._contact_keyboard: set[int] = set()
        self._chats: ChatLocks[int] = ChatLocks()
        self._busy: set[asyncio.Task[Any]] = set()

    async def handle(
        self,
        bot: Bot,
        *,
        chat_id: int,
        user: User,
        event: Event,
        edit: int | None = None,
        update_id: int | None = None,
    ) -> None:
        """One turn: `edit` is the id of the message whose button was pressed; an
        `update_id` handled before (polling that stopped before confirming it, a webhook
        retry) gets no second answer."""
        async with self._chats.one_at_a_time(chat_id):
            inbound = Inbound(
                channel=CHANNEL,
                external_id=str(chat_id),
                event=event,
                received_at=self.clock(),
                display_name=user.full_name or None,
                language=user.language_code,
                message_id=None if update_id is None else str(update_id),
            )
            replies = await self.conversations.handle(inbound)
            await self.deliver(
                bot, chat_id, replies, edit=edit, contact_received=isinstance(event, Contact)
            )

    async def deliver(
        self,
        bot: Bot,
        chat_id: int,
        replies: Sequence[Reply],
        *,
        edit: int | None = None,
        contact_received: bool = False,
    ) -> None:
        asks_contact = any(reply.ask_contact for reply in replies)
        remove_keyboard = not asks_contact and (
            contact_received or chat_id in self._contact_keyboard
        )
        for index, reply in enumerate(replies):
            if reply.ask_contact:
                if reply.buttons:
                    log.warning("a reply asks for a contact and has buttons; buttons dropped")
                await self._send(bot, chat_id, reply.text, contact_keyboard(reply))
                self._contact_keyboard.add(chat_id)
                continue
            editing = (
                index == 0
                and reply.edit
                and edit is not None
                and split_text(reply.text) == [reply.text]
            )
            if remove_keyboard:
                remove_keyboard = False
                self._contact_keyboard.discard(chat_id)
                if not reply.buttons and not editing:
                    await self._send(bot, chat_id, reply.text, ReplyKeyboardRemove())
                    continue
                await self._remove_reply_keyboard(bot, chat_id)
            if reply.commands is not None:
                await set_staff_commands(bot, [(chat_id, reply.commands)])
            if editing and edit is not None and await self._edit(bot, chat_id, edit, reply):
                continue
            await self._send(bot, chat_id, reply.text, inline_keyboard(reply))
            if reply.document is not None:
                await self._send_document(bot, chat_id, reply.document)

    async def _send_document(self, bot: Bot, chat_id: int, document: Document) -> None:
        file = BufferedInputFile(document.data, filename=document.filename)
        try:
            await bot.send_document(chat_id, file)
        except TelegramAPIError as error:
            log.warning("could not send a file to chat %s: %s", chat_id, error)

    async def _send(self, bot: Bot, chat_id: int, text: str, markup: Markup | None) -> None:
        chunks = split_text(text)
        for number, chunk in enumerate(chunks, start=1):
            last = number == len(chunks)
            method = SendMessage(chat_id=chat_id, text=chunk, reply_markup=markup if last else None)
            await call(bot, method)

    async def _edit(self, bot: Bot, chat_id: int, message_id: int, reply: Reply) -> bool:
        """Edit the message in place; False when Telegram refuses and a new one is needed."""
        method = EditMessageText(
            chat_id=chat_id,
            message_id=message_id,
            text=reply.text,
            reply_markup=inline_keyboard(reply),
        )
        try:
            await call(bot, method)
        except TelegramBadRequest as error:
            if "message is not modified" in error.message:
                return True  # the same button pressed twice: it already shows this
            log.info("could not edit message %s (%s); sending a new one", message_id, error)
            return False
        return True

    async def _remove_reply_keyboard(self, bot: Bot, chat_id: int) -> None:
        # A message carries one keyboard: inline buttons or a reply-keyboard change, never
        # both. The removal rides on a throw-away message deleted at once.
        sent = await call(
            bot,
            SendMessage(chat_id=chat_id, text=KEYBOARD_GONE, reply_markup=ReplyKeyboardRemove()),
        )
        with suppress(TelegramAPIError):
            await bot(DeleteMessage(chat_id=chat_id, message_id=sent.message_id))

    async def track(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        """Outer update middleware: remembers updates in progress for a clean shutdown."""
        task = asyncio.current_task()
        if task is not None:
            self._busy.add(task)
        try:
            return await handler(event, data)
        finally:
            if task is not None:
                self._busy.discard(task)

    async def drain(self) -> None:
        """Wait (a while) for updates being handled, so their replies go out before the
        session closes."""
        busy = self._busy - {asyncio.current_task()}
        if busy:
            log.info("waiting for %d Telegram update(s) in progress", len(busy))
            await asyncio.wait(busy, timeout=DRAIN_SECONDS)


# --- the router ------------------------------------------------------------------------


async def on_message(
    message: Message, bot: Bot, channel: TelegramChannel, event_update: Update
) -> None:
    user = message.from_user
    if message.chat.type != ChatType.PRIVATE or user is None or user.is_bot:
        return  # the bot serves clients one to one; groups are not its place
    event = event_of(message)
    if event is None:
        return
    await channel.handle(
        bot, chat_id=message.chat.id, user=user, event=event, update_id=event_update.update_id
    )


async def on_callback(
    callback: CallbackQuery, bot: Bot, channel: TelegramChannel, event_update: Update
) -> None:
    try:
        await callback.answer()  # stop the spinner first; the turn may take a moment
    except TelegramAPIError as error:
        log.info("could not answer a callback query: %s", error)
    message = callback.message
    if message is None or message.chat.type != ChatType.PRIVATE or callback.data is None:
        return
    await channel.handle(
        bot,
        chat_id=message.chat.id,
        user=callback.from_user,
        event=Choice(callback.data),
        edit=message.message_id if isinstance(message, Message) else None,
        update_id=event_update.update_id,
    )


async def on_error(event: ErrorEvent, bot: Bot) -> bool:
    """One failing update must not stop the bot: log it, apologise, carry on."""
    update, error = event.update, event.exception
    if isinstance(error, TelegramForbiddenError):
        log.info("update %s: the client blocked the bot (%s)", update.update_id, error)
        return True
    log.error("update %s failed", update.update_id, exc_info=error)
    chat_id = None
    if update.message is not None and update.message.chat.type == ChatType.PRIVATE:
        chat_id = update.message.chat.id
    elif update.callback_query is not None:
        with suppress(TelegramAPIError):  # it may have been answered already
            await update.callback_query.answer()
        message = update.callback_query.message
        if message is not None and message.chat.type == ChatType.PRIVATE:
            chat_id = message.chat.id
    if chat_id is not None:
        try:
            await bot.send_message(chat_id=chat_id, text=SORRY)
        except Exception as apology_error:  # the apology is best effort
            log.warning("could not apologise for update %s: %s", update.update_id, apology_error)
    return True


def build_dispatcher(conversations: Conversations, *, clock: Clock = utc_now) -> Dispatcher:
    channel = TelegramChannel(conversations, clock)
    dispatcher = Dispatcher(disable_fsm=True, channel=channel)
    router = Router(name="telegram")
    router.message.register(on_message)
    router.callback_query.register(on_callback)
    dispatcher.include_router(router)
    dispatcher.errors.register(on_error)
    dispatcher.update.outer_middleware.register(channel.track)
    return dispatcher


def channel_of(dispatcher: Dispatcher) -> TelegramChannel:
    channel = dispatcher["channel"]
    assert isinstance(channel, TelegramChannel)
    return channel


# --- serving ---------------------------------------------------------------------------


def add_telegram_webhook(
    app: web.Application, dp: Dispatcher, bot: Bot, secret: str | None
) -> None:
    """Serve Telegram's webhook at /webhook/telegram on `app` (which other channels may
    share); requests without the right X-Telegram-Bot-Api-Secret-Token get 401."""
    channel = channel_of(dp)

    async def finish_updates(_app: web.Application) -> None:
        await channel.drain()

    app.on_shutdown.append(finish_updates)  # before the request handler closes the session
    SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret).register(
        app, path=WEBHOOK_PATH
    )
    setup_application(app, dp, bot=bot)


@dataclass
class TelegramService:
    """The bot, its dispatcher and, in webhook mode, its routes on a shared web app."""

    bot: Bot
    dp: Dispatcher
    settings: Settings
    secret: str | None  # the webhook secret; None in polling mode
    links: Links  # filled in with the bot's username once Telegram answers getMe
    # Each staff chat with its role's command list, read when the bot starts.
    staff_commands: Callable[[], Awaitable[list[tuple[int, tuple[tuple[str, str], ...]]]]]


def prepare_telegram(
    *,
    core: Core,
    settings: Settings,
    bot: Bot,
    web_app: web.Application | None,
    clock: Clock = utc_now,
) -> TelegramService:
    """Build the dispatcher and, when TELEGRAM_WEBHOOK_URL is set, add the webhook route to
    `web_app` (shared with other channels; it must not be running yet)."""
    dp = build_dispatcher(core.conversations, clock=clock)
    secret = None
    if settings.telegram_webhook_url:
        if web_app is None:
            raise ValueError("webhook mode needs a web application to serve it")
        secret = webhook_secret(settings)
        add_telegram_webhook(web_app, dp, bot, secret)
    return TelegramService(
        bot=bot,
        dp=dp,
        settings=settings,
        secret=secret,
        links=core.deps.links,
        staff_commands=lambda: staff_command_lists(core.db, core.deps),
    )


async def run_telegram(
    service: TelegramService, *, default_language: str, stop: asyncio.Event, polling_timeout: int
) -> None:
    """Set the command menu, then poll, or register the webhook and wait, until `stop`."""
    bot = service.bot
    me = await patiently(bot.me, "getMe", stop)
    if me is None:
        return  # stopped before Telegram could be reached
    service.links.telegram_username = me.username  # invite and referral links: t.me/<it>
    await set_commands(bot, default_language=default_language)
    await set_staff_commands(bot, await service.staff_commands())
    if service.secret is None:
        await _poll(service.dp, bot, stop=stop, polling_timeout=polling_timeout)
        return
    url = webhook_url(service.settings.telegram_webhook_url or "")
    registered = await patiently(
        lambda: bot.set_webhook(
            url,
            secret_token=service.secret,
            drop_pending_updates=False,
            allowed_updates=service.dp.resolve_used_update_types(),
        ),
        "setWebhook",
        stop,
    )
    if registered is not None:
        log.info("Telegram webhook %s", url)
    await stop.wait()


async def patiently(call: Callable[[], Awaitable[T]], what: str, stop: asyncio.Event) -> T | None:
    """`call` until Telegram answers: a network error or a 5xx at start (Telegram down,
    no network yet after a reboot) is logged and retried after a growing pause, instead of
    ending the bot; None when `stop` comes first."""
    pause = FIRST_RETRY_SECONDS
    while True:
        try:
            return await call()
        except (TelegramNetworkError, TelegramServerError) as error:
            log.warning("Telegram unreachable at %s (%s); retrying in %.0f s", what, error, pause)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
        if stop.is_set():
            return None
        pause = min(pause * 2, LAST_RETRY_SECONDS)


def webhook_secret(settings: Settings) -> str:
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    assert settings.telegram_bot_token is not None
    token = settings.telegram_bot_token.get_secret_value()
    # Stable across restarts and replicas, and reveals nothing about the token.
    log.info("TELEGRAM_WEBHOOK_SECRET is not set; using one derived from the token")
    return hashlib.sha256(b"regulars-telegram-webhook:" + token.encode()).hexdigest()


async def serve_telegram(
    *,
    core: Core,
    settings: Settings,
    stop: asyncio.Event,
    clock: Clock = utc_now,
    polling_timeout: int = 30,
) -> None:
    """Telegram alone until `stop` is set: its own bot, and in webhook mode its own web
    server on WEB_HOST:WEB_PORT. (`regulars run` shares the server with WhatsApp.)"""
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    bot = create_bot(settings.telegram_bot_token.get_secret_value(), settings.telegram_api_url)
    web_app = web.Application() if settings.telegram_webhook_url else None
    service = prepare_telegram(core=core, settings=settings, bot=bot, web_app=web_app, clock=clock)
    try:
        async with serving(web_app, settings):
            await run_telegram(
                service,
                default_language=core.config.business.default_locale,
                stop=stop,
                polling_timeout=polling_timeout,
            )
    finally:
        await bot.session.close()


async def _poll(dp: Dispatcher, bot: Bot, *, stop: asyncio.Event, polling_timeout: int) -> None:
    try:  # a webhook left from an earlier deployment would make getUpdates fail
        deleted = await patiently(
            lambda: bot.delete_webhook(drop_pending_updates=False), "deleteWebhook", stop
        )
    except TelegramAPIError as error:
        log.warning("could not delete the Telegram webhook: %s", error)
    else:
        if deleted is None:
            return
    polling = asyncio.create_task(
        dp.start_polling(
            bot,
            handle_signals=False,  # the shell owns signals and sets `stop`
            close_bot_session=False,  # closed after the updates in progress are done
            polling_timeout=polling_timeout,
        )
    )
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        await _stop_polling(dp, polling)
        await channel_of(dp).drain()
    if not polling.cancelled():
        polling.result()  # polling that ended by itself: its error is the caller's


async def _stop_polling(dp: Dispatcher, polling: asyncio.Task[None]) -> None:
    if polling.done():
        return
    try:
        await dp.stop_polling()
    except RuntimeError:  # asked to stop before polling had started
        polling.cancel()
    await asyncio.wait({polling})


def webhook_url(configured: str) -> str:
    """TELEGRAM_WEBHOOK_URL as given, or with /webhook/telegram added to a bare host."""
    if urlsplit(configured).path in ("", "/"):
        return configured.rstrip("/") + WEBHOOK_PATH
    return configured
