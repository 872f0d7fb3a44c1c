"""Telegram without the network: a session that records Bot API calls, real `Update`
objects, a person who taps buttons, and a fake Bot API server for end-to-end runs."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncGenerator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError, TelegramRetryAfter
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    DeleteWebhook,
    EditMessageText,
    GetMe,
    SendDocument,
    SendMessage,
    SetMyCommands,
    SetWebhook,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    CallbackQuery,
    Chat,
    Contact,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Sticker,
    Update,
    User,
)
from aiogram.types import Document as TelegramDocument
from aiohttp import web

TOKEN = "123456:TEST"
BOT_USER = User(id=123456, is_bot=True, first_name="Regulars", username="regulars_test_bot")
SENT_AT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

Failure = Callable[[TelegramMethod[Any]], Exception]


def bad_request(text: str) -> Failure:
    return lambda method: TelegramBadRequest(method=method, message=f"Bad Request: {text}")


def network_error(text: str = "Connection reset by peer") -> Failure:
    return lambda method: TelegramNetworkError(method=method, message=text)


def retry_after(seconds: int) -> Failure:
    return lambda method: TelegramRetryAfter(
        method=method, message="Flood control exceeded", retry_after=seconds
    )


class RecordingSession(BaseSession):
    """Records every Bot API call as (method name, method) and answers like Telegram would;
    `fail_next` makes the next call (of a kind) raise instead. `record=False` only counts
    the calls (`calls`): a benchmark's process does not keep every message it ever sent."""

    def __init__(self, *, record: bool = True) -> None:
        super().__init__()
        self.record = record
        self.calls = 0
        self.requests: list[tuple[str, TelegramMethod[Any]]] = []
        self.failed: list[tuple[str, TelegramMethod[Any]]] = []
        self.chats: dict[int, dict[int, Message]] = {}  # what each chat shows, by message id
        self._failures: list[tuple[type[TelegramMethod[Any]] | None, Failure]] = []
        self._message_ids = itertools.count(100)

    def fail_next(self, failure: Failure, *, on: type[TelegramMethod[Any]] | None = None) -> None:
        self._failures.append((on, failure))

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def sent(self, *kinds: type[TelegramMethod[Any]]) -> list[Any]:
        return [method for _, method in self.requests if isinstance(method, kinds)]

    async def close(self) -> None:
        pass

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 (BaseSession's signature)
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise AssertionError("the bot does not download files")
        yield b""  # pragma: no cover

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (BaseSession's signature)
    ) -> TelegramType:
        for index, (kind, failure) in enumerate(self._failures):
            if kind is None or isinstance(method, kind):
                del self._failures[index]
                self.failed.append((method.__api_method__, method))
                raise failure(method)
        self.calls += 1
        if self.record:
            self.requests.append((method.__api_method__, method))
        return cast(TelegramType, self._result(method))

    def _result(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, SendMessage):
            return self._show(int(method.chat_id), self.next_message_id(), method)
        if isinstance(method, EditMessageText):
            assert method.chat_id is not None and method.message_id is not None
            return self._show(int(method.chat_id), method.message_id, method)
        if isinstance(method, DeleteMessage):
            self.chats.get(int(method.chat_id), {}).pop(method.message_id, None)
            return True
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, SendDocument):
            return Message(
                message_id=self.next_message_id(),
                date=SENT_AT,
                chat=Chat(id=int(method.chat_id), type="private"),
                from_user=BOT_USER,
                document=TelegramDocument(file_id="f1", file_unique_id="u1"),
            )
        if isinstance(method, AnswerCallbackQuery | SetMyCommands | SetWebhook | DeleteWebhook):
            return True
        raise AssertionError(f"unexpected Bot API call {method.__api_method__}")

    def _show(
        self, chat_id: int, message_id: int, method: SendMessage | EditMessageText
    ) -> Message:
        markup = method.reply_markup
        message = Message(
            message_id=message_id,
            date=SENT_AT,
            chat=Chat(id=chat_id, type="private"),
            from_user=BOT_USER,
            text=method.text,
            reply_markup=markup if isinstance(markup, InlineKeyboardMarkup) else None,
        )
        self.chats.setdefault(chat_id, {})[message_id] = message
        return message


# --- updates ---------------------------------------------------------------------------

_update_ids = itertools.count(1)


def person(
    user_id: int = 1001,
    first_name: str = "Ivan",
    last_name: str | None = None,
    language: str = "en",
) -> User:
    return User(
        id=user_id,
        is_bot=False,
        first_name=first_name,
        last_name=last_name,
        language_code=language,
    )


def private_chat(user: User) -> Chat:
    return Chat(id=user.id, type="private", first_name=user.first_name)


def message_update(
    user: User, message_id: int, *, chat: Chat | None = None, **content: Any
) -> Update:
    """A message from `user`: pass text=…, contact=… or sticker=…"""
    message = Message(
        message_id=message_id,
        date=SENT_AT,
        chat=chat or private_chat(user),
        from_user=user,
        **content,
    )
    return Update(update_id=next(_update_ids), message=message)


def contact_of(user: User, phone: str, *, owner_id: int | None = None) -> Contact:
    """The contact card Telegram sends; `owner_id` defaults to the sender (own number)."""
    return Contact(phone_number=phone, first_name=user.first_name, user_id=owner_id or user.id)


def a_sticker() -> Sticker:
    return Sticker(
        file_id="sticker",
        file_unique_id="sticker",
        type="regular",
        width=512,
        height=512,
        is_animated=False,
        is_video=False,
    )


def callback_update(user: User, data: str, message: Message) -> Update:
    """A tap on a button with `data` under the bot's `message`."""
    query = CallbackQuery(
        id=f"cq{next(_update_ids)}",
        from_user=user,
        chat_instance="chat-instance",
        message=message,
        data=data,
    )
    return Update(update_id=next(_update_ids), callback_query=query)


def buttons_of(message: Message) -> list[InlineKeyboardButton]:
    markup = message.reply_markup
    if markup is None:
        return []
    return [button for row in markup.inline_keyboard for button in row]


@dataclass
class TelegramPerson:
    """A client in a private chat with the bot, fed through the real dispatcher."""

    dp: Dispatcher
    bot: Bot
    session: RecordingSession
    user: User = field(default_factory=person)

    @property
    def chat(self) -> dict[int, Message]:
        return self.session.chats.get(self.user.id, {})

    async def _feed(self, update: Update) -> list[TelegramMethod[Any]]:
        before = len(self.session.requests)
        await self.dp.feed_update(self.bot, update)
        return [method for _, method in self.session.requests[before:]]

    async def send(self, text: str) -> list[TelegramMethod[Any]]:
        update = message_update(self.user, self.session.next_message_id(), text=text)
        return await self._feed(update)

    async def share_contact(
        self, phone: str, *, owner_id: int | None = None
    ) -> list[TelegramMethod[Any]]:
        contact = contact_of(self.user, phone, owner_id=owner_id)
        return await self._feed(
            message_update(self.user, self.session.next_message_id(), contact=contact)
        )

    async def send_sticker(self) -> list[TelegramMethod[Any]]:
        update = message_update(self.user, self.session.next_message_id(), sticker=a_sticker())
        return await self._feed(update)

    def keyboard_message(self) -> Message:
        """The newest message in the chat that has buttons, as a person would look at it."""
        with_buttons = [m for _, m in sorted(self.chat.items()) if buttons_of(m)]
        assert with_buttons, "no message with buttons in the chat"
        return with_buttons[-1]

    def button(self, label: str, message: Message | None = None) -> InlineKeyboardButton:
        message = message or self.keyboard_message()
        found = [b for b in buttons_of(message) if label in b.text]
        assert found, f"no button {label!r} in {[b.text for b in buttons_of(message)]}"
        return found[0]

    async def click(self, label: str, message: Message | None = None) -> list[TelegramMethod[Any]]:
        message = message or self.keyboard_message()
        data = self.button(label, message).callback_data
        assert data is not None
        return await self.press(data, message)

    async def press(self, data: str, message: Message) -> list[TelegramMethod[Any]]:
        return await self._feed(callback_update(self.user, data, message))


def texts(methods: list[TelegramMethod[Any]]) -> list[str]:
    """What the bot said (sent or edited) in these calls, in order."""
    return [m.text or "" for m in methods if isinstance(m, SendMessage | EditMessageText)]


# --- a fake Bot API server -------------------------------------------------------------


class FakeBotAPI:
    """Just enough of the Bot API over HTTP for `regulars run`: queued updates come out of
    getUpdates once each; what the bot sends is recorded and kept as the chat shows it."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.chats: dict[int, dict[int, dict[str, Any]]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(500)
        self._changed = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_post("/bot{token}/{method}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = {key: _decoded(value) for key, value in (await request.post()).items()}
        if method != "getUpdates":
            self.calls.append((method, params))
        result = await self._result(method, params)
        async with self._changed:
            self._changed.notify_all()
        if result is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found: method not found"},
                status=404,
            )
        return web.json_response({"ok": True, "result": result})

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER.model_dump(exclude_none=True)
        if method == "getUpdates":
            return await self._get_updates(params)
        if method in ("sendMessage", "editMessageText"):
            return self._show(method, params)
        if method == "deleteMessage":
            self.chats.get(int(params["chat_id"]), {}).pop(int(params["message_id"]), None)
            return True
        if method in (
            "deleteWebhook",
            "setWebhook",
            "setMyCommands",
            "answerCallbackQuery",
        ):
            return True
        return None

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0))
        # Long polling, but short: the bot under test should see updates at once and the
        # server should never hold a request for long.
        wait = min(float(params.get("timeout", 0)), 0.3)
        async with self._changed:
            ready = [u for u in self._updates if u["update_id"] >= offset]
            if not ready and wait:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)
                ready = [u for u in self._updates if u["update_id"] >= offset]
        self._updates = ready  # confirmed updates are gone, as in Telegram
        return ready

    def _show(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        if method == "sendMessage":
            message_id = next(self._message_ids)
        else:
            message_id = int(params["message_id"])
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(SENT_AT.timestamp()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER.model_dump(exclude_none=True),
            "text": params["text"],
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self.chats.setdefault(chat_id, {})[message_id] = message
        return message

    async def queue(self, **update: Any) -> None:
        async with self._changed:
            self._updates.append({"update_id": next(self._update_ids), **update})
            self._changed.notify_all()

    async def wait_for(self, condition: Callable[[], bool], seconds: float = 10) -> None:
        async def satisfied() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)

        await asyncio.wait_for(satisfied(), seconds)

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]


def _decoded(value: Any) -> Any:
    # aiogram sends objects (reply_markup, commands) as JSON strings in form fields.
    if isinstance(value, str) and value[:1] in ("{", "["):
        return json.loads(value)
    return value
